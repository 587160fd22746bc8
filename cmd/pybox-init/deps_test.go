package main

import (
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/golist"
)

// TestNoFilterCompiler: the init gets its seccomp filter built by the
// parent; linking the filter compiler would add its package initialisers
// (about 1 ms) to every sandbox start.
func TestNoFilterCompiler(t *testing.T) {
	for _, p := range golist.Deps(t) {
		if strings.Contains(p, "go-seccomp-bpf") || p == "github.com/pybox-dev/pybox/internal/seccomp" {
			t.Errorf("pybox-init links %s", p)
		}
	}
}
