package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

var seq atomic.Uint64

// testGroup makes a real group with l, or skips when the host cannot. It
// checks on cleanup that Delete leaves no directory behind.
func testGroup(t testing.TB, l Limits) *Group {
	t.Helper()
	require.Root(t)
	info, err := Detect()
	require.Feature(t, err == nil, "no cgroups: %v", err)
	p, _ := hostPlan()
	require.Feature(t, p.fatal == "" && len(p.missing) == 0, "cgroups cannot enforce limits here: %v", info.Problems)
	g, err := New(RunName(seq.Add(1)), l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndCheck(t, g) })
	return g
}

func deleteAndCheck(t testing.TB, g *Group) {
	t.Helper()
	if err := g.Delete(); err != nil {
		t.Errorf("Delete: %v", err)
	}
	for _, d := range g.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("after Delete, %s still exists (stat: %v)", d, err)
		}
	}
}

// gated starts sh -c script, held on a stdin line until release is called,
// so that it runs only once it is in the group.
type gated struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	waitErr chan error
}

func startGated(t testing.TB, g *Group, script string) *gated {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "read x; "+script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gp := &gated{cmd: cmd, in: in, out: bufio.NewReader(out), waitErr: make(chan error, 1)}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-gp.waitErr
	})
	if err := g.AddProc(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		go func() { gp.waitErr <- cmd.Wait() }()
		t.Fatal(err)
	}
	io.WriteString(in, "go\n")
	go func() {
		// Read all output before Wait closes the pipe.
		gp.waitErr <- cmd.Wait()
	}()
	return gp
}

func (gp *gated) line(t testing.TB) string {
	t.Helper()
	s, err := gp.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading child output: %v", err)
	}
	return strings.TrimSpace(s)
}

func (gp *gated) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-gp.waitErr:
		gp.waitErr <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("child did not exit")
		return nil
	}
}

func sigkilled(err error) bool {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func TestAddProcMovesIntoEveryController(t *testing.T) {
	g := testGroup(t, Limits{MemoryBytes: 256 << 20, Pids: 64, CPUs: 1})
	gp := startGated(t, g, "echo $$; cat /proc/self/cgroup; echo end; exec sleep 100")
	pid := gp.line(t)
	var lines []string
	for l := gp.line(t); l != "end"; l = gp.line(t) {
		lines = append(lines, l)
	}
	want := []string{"memory", "pids", "cpu"}
	if g.Version() == "v2" {
		want = []string{""}
	}
	for _, c := range want {
		found := false
		for _, l := range lines {
			parts := strings.SplitN(l, ":", 3)
			if len(parts) == 3 && (parts[1] == c || strings.Contains(","+parts[1]+",", ","+c+",")) && strings.HasSuffix(parts[2], "/"+g.Name()) {
				found = true
			}
		}
		if !found {
			t.Errorf("pid %s not in group for controller %q: %q", pid, c, lines)
		}
	}
	procs, err := g.procs()
	if err != nil || len(procs) != 1 || strconv.Itoa(procs[0]) != pid {
		t.Errorf("procs = %v, %v; want [%s]", procs, err, pid)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := gp.wait(t); !sigkilled(err) {
		t.Errorf("child exit = %v, want SIGKILL", err)
	}
}

func TestMemoryHogIsOOMKilled(t *testing.T) {
	py := require.Python(t)
	g := testGroup(t, Limits{MemoryBytes: 64 << 20, Pids: 64})
	gp := startGated(t, g, "exec "+py+` -c 'x = b"\x01" * (200 << 20); print("survived")'`)
	if err := gp.wait(t); !sigkilled(err) {
		t.Errorf("hog exit = %v, want SIGKILL", err)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	if st.OOMKills < 1 || !st.MemoryLimitHit {
		t.Errorf("Stats = %+v, want OOMKills >= 1 and MemoryLimitHit", st)
	}
	if st.PeakMemoryBytes <= 0 || st.PeakMemoryBytes > 64<<20 {
		t.Errorf("PeakMemoryBytes = %d, want in (0, 64 MiB]", st.PeakMemoryBytes)
	}
}

func TestForkLoopStopsAtPidsLimit(t *testing.T) {
	py := require.Python(t)
	g := testGroup(t, Limits{MemoryBytes: 512 << 20, Pids: 8})
	gp := startGated(t, g, "exec "+py+` -c '
import os, time
n = 0
while True:
    try:
        pid = os.fork()
    except OSError as e:
        print("blocked", n, e.errno, flush=True)
        break
    if pid == 0:
        time.sleep(100)
        os._exit(0)
    n += 1
time.sleep(100)
'`)
	got := gp.line(t)
	if !strings.HasPrefix(got, "blocked ") {
		t.Fatalf("fork loop said %q", got)
	}
	n, _ := strconv.Atoi(strings.Fields(got)[1])
	if n < 1 || n > 7 {
		t.Errorf("forked %d children, want 1..7 under pids.max=8", n)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if !st.PidsLimitHit {
		t.Errorf("Stats = %+v, want PidsLimitHit", st)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if p, _ := g.procs(); len(p) != 0 {
		t.Errorf("after Kill, procs = %v", p)
	}
}

func TestCPUQuotaLimitsSpinner(t *testing.T) {
	py := require.Python(t)
	g := testGroup(t, Limits{MemoryBytes: 256 << 20, Pids: 16, CPUs: 0.2})
	gp := startGated(t, g, "echo started; exec "+py+` -c 'while True: pass'`)
	gp.line(t)
	start := time.Now()
	time.Sleep(time.Second)
	st, err := g.Stats()
	wall := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cpu %v over %v wall", time.Duration(st.CPUNanos), wall)
	// Quota 0.2 CPU: expect about 0.2 s; unlimited would be about 1 s.
	if st.CPUNanos <= 0 || st.CPUNanos > int64(wall)*6/10 {
		t.Errorf("CPUNanos = %v over %v wall, want well below wall", time.Duration(st.CPUNanos), wall)
	}
}

func TestKillReachesDoubleForkedDaemon(t *testing.T) {
	g := testGroup(t, Limits{MemoryBytes: 256 << 20, Pids: 64, CPUs: 1})
	if p, err := g.procs(); err != nil || len(p) != 0 {
		t.Fatalf("a new group holds %v (%v)", p, err)
	}
	gp := startGated(t, g, "(setsid sh -c 'echo $$; exec sleep 1000' &) ; read y")
	daemon, _ := strconv.Atoi(gp.line(t))
	procs, _ := g.procs()
	if !containsInt(procs, daemon) {
		t.Fatalf("daemon %d not in group: %v", daemon, procs)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if p, _ := g.procs(); len(p) != 0 {
		t.Errorf("after Kill, procs = %v", p)
	}
	if alive(daemon) {
		t.Errorf("daemon %d still running after Kill", daemon)
	}
}

// alive reports a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z' && s[i+2] != 'X'
}

func containsInt(l []int, x int) bool {
	for _, y := range l {
		if y == x {
			return true
		}
	}
	return false
}

func TestDeleteKillsWhatIsLeft(t *testing.T) {
	g := testGroup(t, Limits{MemoryBytes: 256 << 20, Pids: 64, CPUs: 1})
	gp := startGated(t, g, "echo up; exec sleep 1000")
	gp.line(t)
	deleteAndCheck(t, g)
	if err := gp.wait(t); !sigkilled(err) {
		t.Errorf("child exit = %v, want SIGKILL", err)
	}
	if err := g.Delete(); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

func TestConcurrentNewDelete(t *testing.T) {
	testGroup(t, Limits{}) // gate
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := New(RunName(seq.Add(1)), Limits{MemoryBytes: 128 << 20, Pids: 32, CPUs: 0.5})
			if err != nil {
				errs <- err
				return
			}
			sleeper := exec.Command("/bin/sleep", "100")
			if err := sleeper.Start(); err != nil {
				errs <- err
				return
			}
			defer sleeper.Wait()
			defer sleeper.Process.Kill()
			if err := g.AddProc(sleeper.Process.Pid); err != nil {
				errs <- err
			}
			if err := g.Delete(); err != nil {
				errs <- err
			}
			for _, d := range g.Dirs() {
				if _, err := os.Stat(d); !os.IsNotExist(err) {
					errs <- fmt.Errorf("%s left behind", d)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewRejects(t *testing.T) {
	testGroup(t, Limits{})
	tests := []struct {
		name string
		l    Limits
	}{
		{"", Limits{}},
		{"..", Limits{}},
		{"a/b", Limits{}},
		{"ok-name", Limits{MemoryBytes: -1}},
		{"ok-name", Limits{CPUs: -0.5}},
	}
	for _, tc := range tests {
		if g, err := New(tc.name, tc.l); err == nil {
			g.Delete()
			t.Errorf("New(%q, %+v) succeeded", tc.name, tc.l)
		}
	}
	g := testGroup(t, Limits{})
	if _, err := New(g.Name(), Limits{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("New with a taken name: %v", err)
	}
}

func TestCleanupRemovesOnlyDeadOwners(t *testing.T) {
	testGroup(t, Limits{})
	// A dead owner: a pid that exited.
	c := exec.Command("/bin/true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	dead := c.Process.Pid
	stale, err := New(fmt.Sprintf("%d-stale", dead), Limits{Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	gp := startGated(t, stale, "echo up; exec sleep 1000")
	if _, err := gp.out.ReadString('\n'); err != nil {
		// Another process's Cleanup (a test binary running alongside
		// on this host) got to the stale group first: its process is
		// killed, as this Cleanup must do; the checks below still hold.
		t.Logf("the stale group's process ended before this test's Cleanup: %v", err)
	}
	live := testGroup(t, Limits{}) // owned by us
	other, err := New(fmt.Sprintf("%d-other", 1), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer deleteAndCheck(t, other)
	if err := Cleanup(); err != nil {
		t.Fatal(err)
	}
	for _, d := range stale.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("stale %s not removed", d)
		}
	}
	if !sigkilled(gp.wait(t)) {
		t.Error("process in stale group not killed")
	}
	for _, d := range append(live.Dirs(), other.Dirs()...) {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("live group dir %s: %v", d, err)
		}
	}
}

// TestReuse: a v1 group whose run ended cleanly is reused with its peak and
// CPU counters reset; one with a process left, or one that hit a limit, is
// refused and left as it was.
func TestReuse(t *testing.T) {
	py := require.Python(t)
	g := testGroup(t, Limits{MemoryBytes: 256 << 20, Pids: 16})
	if g.Version() != "v1" {
		require.Error(t, g.Reuse(), "Reuse on cgroup v2")
		return
	}
	// Python's own files are read here first, outside the group: page
	// cache is charged to the group that first reads it and stays charged
	// after its processes exit, which would (rightly) make Reuse refuse.
	require.NoError(t, exec.Command(py, "-c", "import time").Run())
	gp := startGated(t, g, "exec "+py+` -c '
import time
x = b"\x01" * (64 << 20)
t = time.process_time()
while time.process_time() - t < 0.2:
    pass
print("done", flush=True)
time.sleep(100)
'`)
	require.Equal(t, "done", gp.line(t))
	require.Error(t, g.Reuse(), "Reuse with a process in the group")
	require.NoError(t, g.Kill())
	gp.wait(t)
	before, err := g.Stats()
	require.NoError(t, err)
	require.True(t, before.PeakMemoryBytes >= 64<<20 && before.CPUNanos >= 150e6, "before: %+v", before)
	// Memory is uncharged as the process's pages are freed: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for g.Reuse() != nil {
		require.True(t, time.Now().Before(deadline), "Reuse kept failing: %v", g.Reuse())
		time.Sleep(10 * time.Millisecond)
	}
	after, err := g.Stats()
	require.NoError(t, err)
	require.True(t, after.PeakMemoryBytes <= maxReuseLeftover && after.CPUNanos < 10e6, "after Reuse: %+v", after)

	// A limit hit is a counter Reuse cannot reset: the group is refused.
	gp = startGated(t, g, "exec "+py+` -c 'x = b"\x01" * (400 << 20)'`)
	if err := gp.wait(t); !sigkilled(err) {
		t.Fatalf("hog exit = %v, want SIGKILL", err)
	}
	require.Error(t, g.Reuse(), "Reuse after an OOM kill")
}

// TestPidsCurrent: the pids counter counts every task of the group, a
// zombie included (which cgroup.procs no longer lists), is read anew
// through its kept fd each time, and is 0 once everything was reaped.
func TestPidsCurrent(t *testing.T) {
	py := require.Python(t)
	g := testGroup(t, Limits{Pids: 16})
	current := func() int64 {
		t.Helper()
		n, err := g.PidsCurrent()
		require.NoError(t, err)
		return n
	}
	require.Equal(t, int64(0), current(), "a new group's pids.current")
	gp := startGated(t, g, "exec "+py+` -c '
import os, sys, time
if os.fork() == 0:
    os._exit(0)
time.sleep(0.2)
print("zombie", flush=True)
sys.stdin.readline()
os.wait()
print("reaped", flush=True)
time.sleep(100)
'`)
	require.Equal(t, "zombie", gp.line(t))
	pids, err := g.procs()
	require.NoError(t, err)
	require.Equal(t, int64(2), current(), "pids.current with a process and its zombie child")
	require.Equal(t, 1, len(pids), "cgroup.procs with a process and its zombie child: %v", pids)
	io.WriteString(gp.in, "\n")
	require.Equal(t, "reaped", gp.line(t))
	require.Equal(t, int64(1), current(), "pids.current once the zombie was reaped")
	require.NoError(t, g.Kill())
	gp.wait(t)
	require.Equal(t, int64(0), current(), "pids.current once everything was reaped")
}
