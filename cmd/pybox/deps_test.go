package main

import (
	"runtime"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/golist"
)

// TestNoCostlyInitialisers: Go runs the package initialisers of everything
// linked into pybox on every start, a one-shot `pybox run` included. These
// cost a cold start about 1.5 ms between them and are kept out: the
// Prometheus client (internal/metrics writes the text format instead) and
// the seccomp filter compiler (internal/seccomp/prebuilt holds the
// filters, built by `go generate`).
func TestNoCostlyInitialisers(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("filters are prebuilt for amd64 and arm64 only")
	}
	for _, p := range golist.Deps(t) {
		if strings.Contains(p, "prometheus/client_golang") || strings.Contains(p, "go-seccomp-bpf") ||
			p == "github.com/pybox-dev/pybox/internal/seccomp" {
			t.Errorf("pybox links %s", p)
		}
	}
}
