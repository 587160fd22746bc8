// Package wasm benchmarks the wasm backend: warm runs from its pool of
// started interpreters, and a cold one-shot `pybox run --backend wasm`
// against the plainest wazero run of the same python.wasm (plainwazero),
// both measured in the same run.
//
//	go test -run '^$' -bench . -benchtime 40x ./bench/wasm/
package wasm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/wasm"
)

func needWasm(b *testing.B) string {
	dir, err := wasm.FindDir()
	if err != nil {
		b.Skipf("python.wasm is not built (make python-wasm): %v", err)
	}
	return dir
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkWarm times Run of print(1) when a started interpreter is ready
// (the pool is refilled, untimed, between iterations). Each run still gets a
// fresh interpreter.
func BenchmarkWarm(b *testing.B) {
	needWasm(b)
	be, err := wasm.New()
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close(context.Background())
	ctx := context.Background()
	req := api.Request{Code: "print(1)", Backend: wasm.Name}.WithDefaults()
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := be.WaitPool(ctx); err != nil {
			b.Fatal(err)
		}
		r := req
		b.StartTimer()
		t := time.Now()
		res, err := be.Run(ctx, &r, backend.Hooks{})
		times = append(times, time.Since(t))
		if err != nil || res.Status != api.StatusSuccess || res.Stdout != "1\n" {
			b.Fatalf("run: %v %+v", err, res)
		}
	}
	b.ReportMetric(ms(median(times)), "p50-ms")
}

// BenchmarkBackToBack times Run of print(1) in a tight loop: the pool cannot
// keep up, so this is the sustained one-at-a-time rate.
func BenchmarkBackToBack(b *testing.B) {
	needWasm(b)
	be, err := wasm.New()
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close(context.Background())
	ctx := context.Background()
	req := api.Request{Code: "print(1)", Backend: wasm.Name}.WithDefaults()
	if err := be.WaitPool(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req
		if res, err := be.Run(ctx, &r, backend.Hooks{}); err != nil || res.Status != api.StatusSuccess {
			b.Fatalf("run: %v %+v", err, res)
		}
	}
}

// BenchmarkColdCLI runs `pybox run --backend wasm -c 'print(1)'` and
// plainwazero alternately as new processes (warm compilation caches for
// both) and reports both medians and their ratio.
func BenchmarkColdCLI(b *testing.B) {
	dir := needWasm(b)
	if runtime.GOOS == "windows" {
		b.Skip("process benchmark written for unix")
	}
	tmp := b.TempDir()
	pybox := filepath.Join(tmp, "pybox")
	plain := filepath.Join(tmp, "plainwazero")
	for bin, pkg := range map[string]string{pybox: "github.com/pybox-dev/pybox/cmd/pybox", plain: "github.com/pybox-dev/pybox/bench/wasm/plainwazero"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	cache := filepath.Join(tmp, "cache")
	env := append(os.Environ(), wasm.EnvDir+"="+dir, wasm.EnvCache+"="+cache)
	cmds := []*exec.Cmd{
		exec.Command(pybox, "run", "--backend", "wasm", "-c", "print(1)"),
		exec.Command(plain, dir, cache, "print(1)"),
	}
	runOne := func(i int) time.Duration {
		c := exec.Command(cmds[i].Path, cmds[i].Args[1:]...)
		c.Env = env
		t := time.Now()
		out, err := c.CombinedOutput()
		d := time.Since(t)
		if err != nil || string(out) != "1\n" {
			b.Fatalf("%s: %v: %q", c.Path, err, out)
		}
		return d
	}
	runOne(0) // fill the compilation cache (shared by both)
	runOne(1)
	var tp, tw []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tp = append(tp, runOne(0))
		tw = append(tw, runOne(1))
	}
	mp, mw := median(tp), median(tw)
	b.ReportMetric(ms(mp), "pybox-ms")
	b.ReportMetric(ms(mw), "plain-wazero-ms")
	b.ReportMetric(float64(mp)/float64(mw), "ratio")
}
