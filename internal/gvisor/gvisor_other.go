//go:build !linux

package gvisor

import (
	"fmt"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
)

// New reports that gVisor needs Linux.
func New(o Options) (backend.Backend, error) {
	return nil, fmt.Errorf("gvisor: runsc needs Linux: %w", backend.ErrUnsupported)
}

func newFromEnv() (backend.Backend, error) { return New(Options{}) }

// Available reports why runsc cannot be used here.
func Available(o Options) error {
	return fmt.Errorf("gvisor: runsc needs Linux: %w", backend.ErrUnsupported)
}

// Pooled reports 0: there is no pool without Linux.
func Pooled(be backend.Backend, req *api.Request) int { return 0 }
