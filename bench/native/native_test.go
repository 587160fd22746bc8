// Package native benchmarks the native backend against plain python3, in
// the same run: `go test -bench . ./bench/native`. Compare the ns/op of
// BenchmarkPlainPython* with BenchmarkLibrary* (see bench/run.sh for the
// CLI comparison with hyperfine).
package native

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/pybox-dev/pybox"
)

func TestMain(m *testing.M) {
	pybox.Init()
	os.Exit(m.Run())
}

const numpySnippet = "import numpy as np; a = np.arange(1000000, dtype=np.float64); print(float((a * a).sum()))"

func plain(b *testing.B, code string) {
	for b.Loop() {
		if out, err := exec.Command("/usr/bin/python3", "-c", code).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

func library(b *testing.B, code string) {
	sb := pybox.New(pybox.Options{})
	defer sb.Close(context.Background())
	for b.Loop() {
		res, err := sb.Run(context.Background(), pybox.Request{Code: code})
		if err != nil || res.Status != pybox.StatusSuccess {
			b.Fatalf("%v: %+v", err, res)
		}
	}
}

func BenchmarkPlainPythonPrint(b *testing.B) { plain(b, "print(1)") }
func BenchmarkLibraryPrint(b *testing.B)     { library(b, "print(1)") }
func BenchmarkPlainPythonNumpy(b *testing.B) { plain(b, numpySnippet) }
func BenchmarkLibraryNumpy(b *testing.B)     { library(b, numpySnippet) }

// BenchmarkLibraryPrintParallel runs sandboxes two at a time (this machine
// has 2 cores), against BenchmarkPlainPythonPrintParallel.
func BenchmarkLibraryPrintParallel(b *testing.B) {
	sb := pybox.New(pybox.Options{})
	defer sb.Close(context.Background())
	b.SetParallelism(1)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res, err := sb.Run(context.Background(), pybox.Request{Code: "print(1)"}); err != nil || res.Status != pybox.StatusSuccess {
				b.Errorf("%v: %+v", err, res)
			}
		}
	})
}

func BenchmarkPlainPythonPrintParallel(b *testing.B) {
	b.SetParallelism(1)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := exec.Command("/usr/bin/python3", "-c", "print(1)").Run(); err != nil {
				b.Error(err)
			}
		}
	})
}
