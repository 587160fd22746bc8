// Package forkserver benchmarks warm executions through the fork server
// against cold plain python3 in the same run:
//
//	go test -run XXX -bench . -benchtime 200x ./bench/forkserver
//
// BenchmarkWarm* are one fresh, fully isolated sandbox per execution,
// forked from a template with numpy already imported.
package forkserver

import (
	"context"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
)

func TestMain(m *testing.M) {
	pybox.Init()
	os.Exit(m.Run())
}

// numpySnippet is a typical small numpy cell (its cost is mostly the
// import); numpyHeavy also allocates and multiplies 8 MB arrays.
const (
	numpySnippet = "import numpy as np; a = np.arange(1000, dtype=np.float64); print(float((a * a).mean()))"
	numpyHeavy   = "import numpy as np; a = np.arange(1000000, dtype=np.float64); print(float((a * a).sum()))"
)

func warm(b *testing.B) *pybox.Sandbox {
	sb := pybox.New(pybox.Options{ForkServer: true})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := sb.Run(context.Background(), pybox.Request{Code: "1"})
		if err != nil {
			b.Fatal(err)
		}
		if res.Isolation.ForkServer {
			return sb
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("fork server not ready")
	return nil
}

// p50 reports the median of per-op latencies as a metric.
func p50(b *testing.B, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d) > 0 {
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	}
}

func runWarm(b *testing.B, code string) {
	sb := warm(b)
	defer sb.Close(context.Background())
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		res, err := sb.Run(context.Background(), pybox.Request{Code: code})
		lat = append(lat, time.Since(t))
		if err != nil || res.Status != pybox.StatusSuccess || !res.Isolation.ForkServer {
			b.Fatalf("%v %+v", err, res)
		}
	}
	p50(b, lat)
}

func runPlain(b *testing.B, code string) {
	var lat []time.Duration
	for b.Loop() {
		t := time.Now()
		if out, err := exec.Command("/usr/bin/python3", "-c", code).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
		lat = append(lat, time.Since(t))
	}
	p50(b, lat)
}

func BenchmarkPlainPrint(b *testing.B) { runPlain(b, "print(1)") }
func BenchmarkWarmPrint(b *testing.B)  { runWarm(b, "print(1)") }
func BenchmarkPlainNumpy(b *testing.B) { runPlain(b, numpySnippet) }
func BenchmarkWarmNumpy(b *testing.B)  { runWarm(b, numpySnippet) }

func BenchmarkPlainNumpyHeavy(b *testing.B) { runPlain(b, numpyHeavy) }
func BenchmarkWarmNumpyHeavy(b *testing.B)  { runWarm(b, numpyHeavy) }

// BenchmarkWarmPrintParallel measures sustained throughput: fresh
// sandboxes per second with every guarantee on (see ns/op: 1e9/ns-per-op
// executions per second).
func BenchmarkWarmPrintParallel(b *testing.B) {
	sb := warm(b)
	defer sb.Close(context.Background())
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := sb.Run(context.Background(), pybox.Request{Code: "print(1)"})
			if err != nil || res.Status != pybox.StatusSuccess {
				b.Errorf("%v %+v", err, res)
				return
			}
		}
	})
}

// BenchmarkPlainPrintParallel launches plain python3 two at a time.
func BenchmarkPlainPrintParallel(b *testing.B) {
	b.SetParallelism(1)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := exec.Command("/usr/bin/python3", "-c", "print(1)").Run(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
