package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoCostlyInitialisers: Go runs the package initialisers of everything
// linked into pybox on every start, a one-shot `pybox run` included. These
// cost a cold start about 1.5 ms between them and are kept out: the
// Prometheus client (internal/metrics writes the text format instead) and
// the seccomp filter compiler (internal/seccomp/prebuilt holds the
// filters, built by `go generate`).
func TestNoCostlyInitialisers(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("filters are prebuilt for amd64 and arm64 only")
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "prometheus/client_golang") || strings.Contains(p, "go-seccomp-bpf") ||
			p == "github.com/pybox-dev/pybox/internal/seccomp" {
			t.Errorf("pybox links %s", p)
		}
	}
}
