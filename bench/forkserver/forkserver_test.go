// Package forkserver benchmarks warm executions through the fork server
// against cold plain python3 in the same run:
//
//	go test -run XXX -bench . -benchtime 200x ./bench/forkserver
//
// BenchmarkWarm* are one fresh, fully isolated sandbox per execution,
// forked from a template: for code that names numpy, one with numpy
// already imported; otherwise the policy's lean template.
package forkserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
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
	// Both templates of the policy: the lean one (code that names no
	// preloaded module) and the one with numpy.
	deadline := time.Now().Add(60 * time.Second)
	for _, code := range []string{"1", "import numpy"} {
		for {
			if time.Now().After(deadline) {
				b.Fatal("fork server not ready")
			}
			res, err := sb.Run(context.Background(), pybox.Request{Code: code})
			if err != nil {
				b.Fatal(err)
			}
			if res.Isolation.ForkServer {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return sb
}

// p50 reports the median of per-op latencies as a metric.
func p50(b *testing.B, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d) > 0 {
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	}
}

func runWarm(b *testing.B, code string) { runSpaced(b, code, 0) }

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

// BenchmarkWarmPrintSpaced is BenchmarkWarmPrint with 10 ms of idle time
// between executions (not timed), as between an agent's tool calls: the
// template prepares the next child in that time.
func BenchmarkWarmPrintSpaced(b *testing.B) { runSpaced(b, "print(1)", 10*time.Millisecond) }

// BenchmarkWarmNumpySpaced is BenchmarkWarmNumpy with the same idle time.
func BenchmarkWarmNumpySpaced(b *testing.B) { runSpaced(b, numpySnippet, 10*time.Millisecond) }

// BenchmarkWarmPrintIdle leaves 200 ms between executions, long enough for
// the kernel's state of a cgroup move to go cold (see RATIONALE.md,
// prepared spares). It takes 0.2 s per op: run it on its own,
//
//	go test -run XXX -bench WarmPrintIdle -benchtime 50x ./bench/forkserver
func BenchmarkWarmPrintIdle(b *testing.B) { runSpaced(b, "print(1)", 200*time.Millisecond) }

// BenchmarkWarmNumpyIdle is BenchmarkWarmPrintIdle for the numpy snippet.
func BenchmarkWarmNumpyIdle(b *testing.B) { runSpaced(b, numpySnippet, 200*time.Millisecond) }

// BenchmarkWarmRaiseSpaced is BenchmarkWarmPrintSpaced for code that
// raises: the run's error is the formatted traceback.
func BenchmarkWarmRaiseSpaced(b *testing.B) { runSpaced(b, "x = 1\nx / 0", 10*time.Millisecond) }

// runSpaced runs code warm, leaving gap (not timed) before each run.
func runSpaced(b *testing.B, code string, gap time.Duration) {
	sb := warm(b)
	defer sb.Close(context.Background())
	var lat []time.Duration
	for b.Loop() {
		if gap > 0 {
			b.StopTimer()
			time.Sleep(gap)
			b.StartTimer()
		}
		t := time.Now()
		res, err := sb.Run(context.Background(), pybox.Request{Code: code})
		lat = append(lat, time.Since(t))
		if err != nil || !res.Isolation.ForkServer || res.Status != pybox.StatusSuccess &&
			!(res.Status == pybox.StatusRunError && strings.Contains(res.Error, "ZeroDivisionError")) {
			b.Fatalf("%v %+v", err, res)
		}
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
// executions per second), with two requests in flight per CPU (a request
// also waits on the template and the supervisor). cpu-ms/op is the
// machine's busy CPU time per execution (every process: run it on a
// quiet machine).
func BenchmarkWarmPrintParallel(b *testing.B) {
	sb := warm(b)
	defer sb.Close(context.Background())
	b.SetParallelism(2)
	b.ResetTimer()
	t0 := busyCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := sb.Run(context.Background(), pybox.Request{Code: "print(1)"})
			if err != nil || res.Status != pybox.StatusSuccess {
				b.Errorf("%v %+v", err, res)
				return
			}
		}
	})
	cpuPerOp(b, t0)
}

// BenchmarkPlainPrintParallel launches plain python3 one at a time per
// CPU (two at a time here), with the same cpu-ms/op.
func BenchmarkPlainPrintParallel(b *testing.B) {
	b.SetParallelism(1)
	t0 := busyCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := exec.Command("/usr/bin/python3", "-c", "print(1)").Run(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpuPerOp(b, t0)
}

// busyCPU is the machine's CPU time spent so far on anything but idling,
// over every CPU (/proc/stat, in clock ticks of 10 ms).
func busyCPU(b *testing.B) time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		b.Fatalf("/proc/stat: %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %q", line)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// cpuPerOp reports the busy CPU time since t0 per op.
func cpuPerOp(b *testing.B, t0 time.Duration) {
	b.ReportMetric(float64((busyCPU(b)-t0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// loopCode times, from inside Python, loops that make and drop an int per
// turn: their speed depends on the state the runner leaves CPython's
// allocator in (see the runner's _settle_pools), not on start-up.
const loopCode = `import time
def loop():
    t = time.perf_counter()
    s = sum(range(3000000))
    return (time.perf_counter() - t) * 1e3
print(loop())`

// BenchmarkLoopPlain, BenchmarkLoopCold and BenchmarkLoopWarm report the
// p50 of loopCode's own timing (loop-ms) under plain python3 -c, a cold
// sandbox and a fork-server child: the three should match.
func BenchmarkLoopPlain(b *testing.B) {
	runLoop(b, func() (string, error) {
		out, err := exec.Command("/usr/bin/python3", "-c", loopCode).Output()
		return string(out), err
	})
}

func BenchmarkLoopCold(b *testing.B) {
	sb := pybox.New(pybox.Options{})
	defer sb.Close(context.Background())
	runLoop(b, func() (string, error) {
		res, err := sb.Run(context.Background(), pybox.Request{Code: loopCode})
		if err == nil && res.Status != pybox.StatusSuccess {
			err = fmt.Errorf("%s: %s", res.Status, res.Error)
		}
		return res.Stdout, err
	})
}

func BenchmarkLoopWarm(b *testing.B) {
	sb := warm(b)
	defer sb.Close(context.Background())
	runLoop(b, func() (string, error) {
		res, err := sb.Run(context.Background(), pybox.Request{Code: loopCode})
		if err == nil && (res.Status != pybox.StatusSuccess || !res.Isolation.ForkServer) {
			err = fmt.Errorf("%s (fork server %v): %s", res.Status, res.Isolation.ForkServer, res.Error)
		}
		return res.Stdout, err
	})
}

func runLoop(b *testing.B, run func() (string, error)) {
	var ms []float64
	for b.Loop() {
		out, err := run()
		if err != nil {
			b.Fatal(err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if err != nil {
			b.Fatalf("loop output %q: %v", out, err)
		}
		ms = append(ms, v)
	}
	sort.Float64s(ms)
	b.ReportMetric(ms[len(ms)/2], "loop-ms")
}
