// Package gvisor benchmarks the gvisor backend in one run against the
// native backend, plain python3 and `runsc do` of the same command:
//
//	go test -run - -bench . -benchtime 20x ./bench/gvisor
//
// BenchmarkGVisorPrint and BenchmarkGVisorNumpy are cold runs (the warm
// pool off): their target is to be no slower than BenchmarkRunscDo*: pybox
// adds the runner, the cgroup, the bundle and the tmpfs mounts, and must
// still not cost more than runsc's own quick-test path.
//
// BenchmarkGVisorWarm* are runs served by the warm pool: before each timed
// run the benchmark waits (timer stopped) for the pool to hold a booted
// sandbox, and it fails if a run was not prebooted. They report the p50
// and p90 of the runs (warm-p50-ms, warm-p90-ms), and that p50 over the
// p50 of plain `python3 -c` of the same code, measured first in the same
// benchmark (x-plain-p50). Target: warm-p50-ms < 10.
//
// Set PYBOX_RUNSC_PLATFORM to benchmark another platform.
package gvisor

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
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
		b.Setenv(gvisor.EnvPool, "0") // cold runs; see BenchmarkGVisorWarm*
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

// warm runs code on a gvisor backend with its pool on, each timed run
// taking a sandbox the pool booted while the timer was stopped.
func warm(b *testing.B, code string) {
	o := gvisor.OptionsFromEnv(os.Getenv)
	if err := gvisor.Available(o); err != nil {
		b.Skip(err)
	}
	o.NoPool = false
	// Plain python3 first, while nothing else runs (later, the pool
	// refills in the background).
	var plainTimes []time.Duration
	for range 10 {
		t0 := time.Now()
		if out, err := exec.Command("/usr/bin/python3", "-c", code).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		plainTimes = append(plainTimes, time.Since(t0))
	}
	be, err := gvisor.New(o)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := be.Close(context.Background()); err != nil {
			b.Error(err)
		}
	}()
	req := api.Request{Backend: gvisor.Name, Code: code}.WithDefaults()
	if err := req.Validate(); err != nil {
		b.Fatal(err)
	}
	run := func() *api.Result {
		r := req
		res, err := be.Run(context.Background(), &r, backend.Hooks{})
		if err != nil || res.Status != api.StatusSuccess {
			b.Fatalf("%v: %+v", err, res)
		}
		return res
	}
	run() // the first run of a policy is cold and starts its pool
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		waitPool(b, be, &req)
		b.StartTimer()
		t0 := time.Now()
		res := run()
		times = append(times, time.Since(t0))
		b.StopTimer()
		if !res.Isolation.Prebooted {
			b.Fatalf("run %d was not served by the pool", i)
		}
		b.StartTimer()
	}
	b.StopTimer()
	p50 := median(times)
	b.ReportMetric(float64(p50.Microseconds())/1000, "warm-p50-ms")
	b.ReportMetric(float64(percentile(times, 90).Microseconds())/1000, "warm-p90-ms")
	b.ReportMetric(float64(p50)/float64(median(plainTimes)), "x-plain-p50")
}

// waitPool waits until the pool holds a sandbox for req, and a little
// more so that the boot's own teardown work is over.
func waitPool(b *testing.B, be backend.Backend, req *api.Request) {
	deadline := time.Now().Add(30 * time.Second)
	for gvisor.Pooled(be, req) < gvisor.PoolSize {
		if time.Now().After(deadline) {
			b.Fatal("the pool did not fill in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
}

func median(ts []time.Duration) time.Duration { return percentile(ts, 50) }

func percentile(ts []time.Duration, p int) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func BenchmarkGVisorWarmPrint(b *testing.B) { warm(b, printSnippet) }
func BenchmarkGVisorWarmNumpy(b *testing.B) { warm(b, numpySnippet) }
