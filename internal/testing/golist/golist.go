// Package golist lists a Go package's dependencies with the go command, for
// tests that keep packages with costly initialisers out of a binary (Go runs
// every linked package's initialisers at every start).
package golist

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Deps returns every package the package in the current directory links,
// itself included (go list -deps).
func Deps(t testing.TB) []string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}
