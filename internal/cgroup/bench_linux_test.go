package cgroup

import (
	"os/exec"
	"testing"
)

// benchSleeper starts a process to move in and out of groups, and a holding
// group to move it back to so that Delete finds each group empty.
func benchSleeper(b *testing.B) (pid int, hold *Group) {
	hold = testGroup(b, Limits{})
	c := exec.Command("/bin/sleep", "1000")
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c.Process.Pid, hold
}

// BenchmarkLifecycle is one run's cgroup work: New + AddProc + Delete. It
// also moves the process back out (one more AddProc) so Delete finds the
// group empty, as it does after a run; subtract BenchmarkAddProc for the
// pure cost.
func BenchmarkLifecycle(b *testing.B) {
	pid, hold := benchSleeper(b)
	l := Limits{MemoryBytes: 512 << 20, Pids: 128, CPUs: 1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g, err := New(RunName(seq.Add(1)), l)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.AddProc(pid); err != nil {
			b.Fatal(err)
		}
		if err := hold.AddProc(pid); err != nil {
			b.Fatal(err)
		}
		if err := g.Delete(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewDelete is New + Delete of an empty group.
func BenchmarkNewDelete(b *testing.B) {
	testGroup(b, Limits{})
	l := Limits{MemoryBytes: 512 << 20, Pids: 128, CPUs: 1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g, err := New(RunName(seq.Add(1)), l)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Delete(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddProc moves a process between two groups.
func BenchmarkAddProc(b *testing.B) {
	pid, hold := benchSleeper(b)
	g := testGroup(b, Limits{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := g.AddProc(pid); err != nil {
			b.Fatal(err)
		}
		if err := hold.AddProc(pid); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/AddProc")
}

// BenchmarkStats reads all counters of a group.
func BenchmarkStats(b *testing.B) {
	g := testGroup(b, Limits{MemoryBytes: 512 << 20, Pids: 128, CPUs: 1})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.Stats(); err != nil {
			b.Fatal(err)
		}
	}
}
