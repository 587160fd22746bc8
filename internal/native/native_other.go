//go:build !linux

package native

import "github.com/pybox-dev/pybox/internal/backend"

func newBackend() (backend.Backend, error) { return nil, backend.ErrUnsupported }
