// Package gvisor benchmarks the gvisor backend in one run against the
// native backend, plain python3 and `runsc do` of the same command:
//
//	go test -run - -bench . -benchtime 20x ./bench/gvisor
//
// The target is BenchmarkGVisor* no slower than BenchmarkRunscDo*: pybox
// adds the runner, the cgroup, the bundle and the tmpfs mounts, and must
// still not cost more than runsc's own quick-test path. Set
// PYBOX_RUNSC_PLATFORM to benchmark another platform.
package gvisor

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/gvisor"
)

func TestMain(m *testing.M) {
	pybox.Init() // the native backend re-executes this binary
	os.Exit(m.Run())
}

const (
	printSnippet = "print(1)"
	numpySnippet = "import numpy as np; a = np.arange(1000000, dtype=np.float64); print(float((a * a).sum()))"
)

func plain(b *testing.B, code string) {
	for b.Loop() {
		if out, err := exec.Command("/usr/bin/python3", "-c", code).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

func library(b *testing.B, backend, code string) {
	if backend == gvisor.Name {
		if err := gvisor.Available(gvisor.OptionsFromEnv(os.Getenv)); err != nil {
			b.Skip(err)
		}
	}
	sb := pybox.New(pybox.Options{})
	defer sb.Close(context.Background())
	for b.Loop() {
		res, err := sb.Run(context.Background(), pybox.Request{Backend: backend, Code: code})
		if err != nil || res.Status != pybox.StatusSuccess {
			b.Fatalf("%v: %+v", err, res)
		}
	}
}

// runscDo runs `runsc do python3 -c code` with no network, on the same
// platform as the backend, its state in a temporary --root.
func runscDo(b *testing.B, code string) {
	runsc, err := exec.LookPath("runsc")
	if err != nil {
		b.Skip("runsc not installed")
	}
	platform := os.Getenv(gvisor.EnvPlatform)
	if platform == "" {
		platform = gvisor.DefaultPlatform
	}
	root := b.TempDir()
	for b.Loop() {
		cmd := exec.Command(runsc, "--root="+root, "--network=none", "--platform="+platform, "do", "--quiet", "/usr/bin/python3", "-c", code)
		cmd.Dir = "/"
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

func BenchmarkPlainPythonPrint(b *testing.B) { plain(b, printSnippet) }
func BenchmarkNativePrint(b *testing.B)      { library(b, "native", printSnippet) }
func BenchmarkRunscDoPrint(b *testing.B)     { runscDo(b, printSnippet) }
func BenchmarkGVisorPrint(b *testing.B)      { library(b, gvisor.Name, printSnippet) }

func BenchmarkPlainPythonNumpy(b *testing.B) { plain(b, numpySnippet) }
func BenchmarkNativeNumpy(b *testing.B)      { library(b, "native", numpySnippet) }
func BenchmarkRunscDoNumpy(b *testing.B)     { runscDo(b, numpySnippet) }
func BenchmarkGVisorNumpy(b *testing.B)      { library(b, gvisor.Name, numpySnippet) }
