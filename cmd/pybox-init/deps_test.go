package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoFilterCompiler: the init gets its seccomp filter built by the
// parent; linking the filter compiler would add its package initialisers
// (about 1 ms) to every sandbox start.
func TestNoFilterCompiler(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "go-seccomp-bpf") || p == "github.com/pybox-dev/pybox/internal/seccomp" {
			t.Errorf("pybox-init links %s", p)
		}
	}
}
