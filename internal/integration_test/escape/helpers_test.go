package escape

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// hostUIDBase is the host uid the sandbox's root maps to; the code runs as
// hostUIDBase+1000 on the host.
const hostUIDBase = 1_000_000_000

func token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sb is one backend under test.
type sb struct {
	name string
}

var sandbox = sync.OnceValue(func() *pybox.Sandbox { return pybox.New(pybox.Options{}) })

// forkUsed says forkSandbox was created (TestMain closes it).
var forkUsed atomic.Bool

// forkSandbox runs the native backend through its fork server; it returns
// once the template is up, so every run of the suite is a forked one.
var forkSandbox = sync.OnceValue(func() *pybox.Sandbox {
	forkUsed.Store(true)
	s := pybox.New(pybox.Options{ForkServer: true})
	// Both templates: the lean one and the one with numpy.
	deadline := time.Now().Add(60 * time.Second)
	for _, code := range []string{"1", "import numpy"} {
		for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if res, err := s.Run(context.Background(), pybox.Request{Code: code}); err == nil && res.Isolation.ForkServer {
				break
			}
		}
	}
	return s
})

// prologue runs before every piece of hostile code and prints the
// sandbox's pid namespace, so that the host can look for survivors (native
// only: a gVisor sandbox's namespaces live in the sentry, and WASI has no
// /proc).
const prologue = "import os as _pybox_os\n" +
	"try:\n" +
	"    print('PYBOX-PIDNS', _pybox_os.readlink('/proc/self/ns/pid'), flush=True)\n" +
	"except (OSError, AttributeError):\n" +
	"    pass\n" +
	"del _pybox_os\n"

var (
	nsMu sync.Mutex
	// pidNamespaces are the pid namespaces of every native sandbox this
	// package ran, each with the time since boot, in clock ticks, when its
	// run returned (and nothing in it was alive).
	pidNamespaces = map[string]int64{}
)

var pidnsRE = regexp.MustCompile(`PYBOX-PIDNS (pid:\[\d+\])`)

// run runs code with the prologue and returns the Result. err must be nil
// unless the test expects otherwise (it then calls runErr).
func (b *sb) run(t *testing.T, req pybox.Request) *pybox.Result {
	t.Helper()
	res, err := b.runErr(t, req)
	if err != nil {
		t.Fatalf("Run: %v (status %s)", err, res.Status)
	}
	return res
}

func (b *sb) runErr(t *testing.T, req pybox.Request) (*pybox.Result, error) {
	t.Helper()
	return b.runWith(t, context.Background(), req, pybox.RunOptions{})
}

func (b *sb) runWith(t *testing.T, ctx context.Context, req pybox.Request, ro pybox.RunOptions) (*pybox.Result, error) {
	t.Helper()
	req.Backend = b.name
	s := sandbox()
	if b.name == "native-fork" {
		req.Backend, s = "native", forkSandbox()
	}
	req.Code = prologue + req.Code
	if req.Timeout == 0 {
		req.Timeout = pybox.Duration(20 * time.Second)
	}
	res, err := s.RunWith(ctx, req, ro)
	if res == nil {
		t.Fatalf("Run returned a nil Result (err %v)", err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("PYBOX_ESCAPE_VERBOSE") == "1" {
			t.Logf("result: status=%s exit=%d signal=%s error=%q\nstdout:\n%s\nstderr:\n%s",
				res.Status, res.ExitCode, res.Signal, res.Error, clip(res.Stdout), clip(res.Stderr))
		}
	})
	if res.Isolation.Backend != "" && res.Isolation.Backend != req.Backend {
		t.Errorf("isolation.backend = %q, want %q", res.Isolation.Backend, req.Backend)
	}
	if b.name == "native-fork" && err == nil && !res.Isolation.ForkServer {
		t.Errorf("not run by the fork server: %+v", res.Isolation)
	}
	if m := pidnsRE.FindStringSubmatch(res.Stdout); m != nil && (b.name == "native" || b.name == "native-fork") {
		nsMu.Lock()
		pidNamespaces[m[1]] = bootTicks()
		nsMu.Unlock()
		// Run has returned: nothing from that namespace may be alive but,
		// for a fork-server execution, the template's own two processes
		// there (the anchor and the holder of the execution's memory:
		// zygote.py's make_holder), which never run the code and end
		// with the namespace just after (TestForkServerHolder; not
		// checked here, where the namespace's id may be reused by a
		// spare made meanwhile).
		for _, p := range pidsIn(map[string]int64{m[1]: bootTicks()}) {
			if b.name == "native-fork" {
				if templatesOwn(p) {
					continue
				}
				if startTicks(p) == 0 {
					continue // ended while it was looked at: those two end at once
				}
			}
			t.Errorf("ESCAPE: sandbox process outlived Run: %s", describe(p))
		}
	}
	return res, err
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:1500] + fmt.Sprintf("\n...(%d bytes cut)...\n", len(s)-3000) + s[len(s)-1500:]
	}
	return s
}

// lines returns the stdout lines that start with prefix+" ", without it.
func lines(res *pybox.Result, prefix string) []string {
	var out []string
	for _, l := range strings.Split(res.Stdout, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// noEscape fails for every stdout line starting with ESCAPED.
func noEscape(t *testing.T, res *pybox.Result) {
	t.Helper()
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(l, "ESCAPED") {
			t.Errorf("ESCAPE: %s", l)
		}
	}
}

func wantStatus(t *testing.T, res *pybox.Result, status string) {
	t.Helper()
	if res.Status != status {
		t.Errorf("status = %q, want %q (error: %s)", res.Status, status, res.Error)
	}
}

// processesIn lists host processes in one of the given pid namespaces that
// started before the namespace's time (clock ticks since boot). Namespace
// ids are inode numbers, reused once a namespace is gone: a process that
// started after its run had returned, when the namespace was empty and so
// dead, is in another namespace with the same id (another test binary's
// sandbox).
func processesIn(ns map[string]int64) []string {
	var out []string
	for _, p := range pidsIn(ns) {
		out = append(out, describe(p))
	}
	return out
}

// pidsIn is processesIn's pids.
func pidsIn(ns map[string]int64) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		l, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns/pid"))
		if err != nil || inOtherPybox(e.Name()) {
			continue
		}
		before, ok := ns[l]
		start := startTicks(e.Name())
		if !ok || start > before || start >= before-1 && madeByTemplate(e.Name(), l) {
			continue
		}
		out = append(out, e.Name())
	}
	return out
}

func describe(pid string) string {
	l, _ := os.Readlink(filepath.Join("/proc", pid, "ns/pid"))
	return fmt.Sprintf("pid %s (%s, state %s, parent %s) cmdline %q", pid, l, status(pid, "State:"), status(pid, "PPid:"), clipCmd(cmdline(pid)))
}

// templatesOwn says whether pid is a fork-server template's own process
// in an execution's pid namespace (its anchor or holder), not the code's:
// its parent is the template (every process the code starts has its
// parent inside the namespace), and it is either in the template's
// cgroups (not the execution's, where the code's process is) or already
// exiting (its memory gone, so no command line; an exiting process shows
// no cgroup of its own any more).
func templatesOwn(pid string) bool {
	ppid := status(pid, "PPid:")
	if ppid == "" || !strings.Contains(cmdline(ppid), "pybox fork-server template") {
		return false
	}
	a, errA := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
	b, errB := os.ReadFile(filepath.Join("/proc", ppid, "cgroup"))
	if errA == nil && errB == nil && string(a) == string(b) {
		return true
	}
	_, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	return err == nil && cmdline(pid) == ""
}

// status is the value of a /proc/<pid>/status field, or "".
func status(pid, field string) string {
	st, _ := os.ReadFile(filepath.Join("/proc", pid, "status"))
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			return f[1]
		}
	}
	return ""
}

// bootTicks is the time since boot in clock ticks (USER_HZ, 100 on Linux).
func bootTicks() int64 {
	b, _ := os.ReadFile("/proc/uptime")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return math.MaxInt64
	}
	sec, _ := strconv.ParseFloat(f[0], 64)
	return int64(sec*100) + 1
}

// startTicks is a process's start time in clock ticks since boot, or 0.
func startTicks(pid string) int64 {
	b, _ := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		// After "pid (comm)": state is field 3, starttime field 22.
		if f := strings.Fields(s[i+1:]); len(f) > 19 {
			n, _ := strconv.ParseInt(f[19], 10, 64)
			return n
		}
	}
	return 0
}

// inOtherPybox says pid sits in a per-run cgroup of another pybox process
// (a concurrently running test binary): pid namespace ids are reused, so
// its namespace may equal one this package used earlier. Sandboxed code
// cannot leave its cgroup (it has its own cgroup namespace and no
// cgroupfs), so this cannot hide a real leftover of ours.
func inOtherPybox(pid string) bool {
	b, _ := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
	own := fmt.Sprintf("/pybox/%d-", os.Getpid())
	return strings.Contains(string(b), "/pybox/") && !strings.Contains(string(b), own)
}

// madeByTemplate says whether pid's parent is a fork-server template in
// another pid namespace than ns. processesIn ignores such a process when
// it started as the run ended: it is the anchor or the child of a pid
// namespace the template made then (a spare), which got a namespace id
// the run had just freed (ids are reused). Every other process of a run
// has its parent inside the run's namespace; a run's own anchor or child
// that outlived it started earlier and still counts.
func madeByTemplate(pid, ns string) bool {
	ppid := status(pid, "PPid:")
	if ppid == "" {
		return false
	}
	pns, err := os.Readlink(filepath.Join("/proc", ppid, "ns/pid"))
	return err == nil && pns != ns && strings.Contains(cmdline(ppid), "pybox fork-server template")
}

func cmdline(pid string) string {
	b, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

func clipCmd(c string) string {
	if len(c) > 100 {
		return c[:100] + "..."
	}
	return c
}

// processesWith lists host processes whose command line contains s.
func processesWith(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	self := fmt.Sprint(os.Getpid())
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' || e.Name() == self {
			continue
		}
		if c := cmdline(e.Name()); strings.Contains(c, s) {
			out = append(out, fmt.Sprintf("pid %s cmdline %q", e.Name(), clipCmd(c)))
		}
	}
	return out
}

// sandboxProcesses lists host processes in any pid namespace this package's
// sandboxes used.
func sandboxProcesses() []string {
	nsMu.Lock()
	ns := map[string]int64{}
	for k, v := range pidNamespaces {
		ns[k] = v
	}
	nsMu.Unlock()
	return processesIn(ns)
}

// pyboxCgroupDirs are the directories where pybox creates per-run cgroups
// for this process: <hierarchy>/<own cgroup>/pybox and <hierarchy>/pybox.
func pyboxCgroupDirs() []string {
	own := map[string]string{} // controller list -> own path
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 {
			own[f[1]] = f[2]
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var dirs []string
	for _, l := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		point := f[4]
		dirs = append(dirs, filepath.Join(point, "pybox"))
		for ctrls, p := range own {
			if (g[0] == "cgroup2" && ctrls == "") || (ctrls != "" && hasAnyOpt(g[2], strings.Split(ctrls, ","))) {
				dirs = append(dirs, filepath.Join(point, p, "pybox"))
			}
		}
	}
	return dirs
}

func hasAnyOpt(opts string, want []string) bool {
	for _, o := range strings.Split(opts, ",") {
		for _, w := range want {
			if o == w {
				return true
			}
		}
	}
	return false
}

// runCgroups lists the per-run groups under a pybox parent directory.
func runCgroups(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// ownGroup reports whether a per-run group may belong to this process: its
// name starts with this process's pid, or is an old-style "run-<id>".
func ownGroup(dir string) bool {
	b := filepath.Base(dir)
	return strings.HasPrefix(b, fmt.Sprintf("%d-", os.Getpid())) || strings.HasPrefix(b, "run-")
}

// leftoverCgroups lists run-* cgroups that hold no live process of another
// (concurrent) pybox user and do not go away within a grace period.
func leftoverCgroups() []string {
	suspects := func() []string {
		var out []string
		seen := map[string]bool{}
		for _, d := range pyboxCgroupDirs() {
			for _, m := range runCgroups(d) {
				if seen[m] {
					continue
				}
				seen[m] = true
				// Groups are named "<supervisor pid>-<seq>" (or "run-<id>").
				// Only this process's groups can be its leftovers: pid
				// namespace ids are reused, so matching processes in other
				// test binaries' groups against ours gives false alarms.
				foreign := !ownGroup(m)
				if !foreign {
					out = append(out, m)
				}
			}
		}
		return out
	}
	s := suspects()
	// Another package's run may be between mkdir and its first process,
	// or between its last process and rmdir: give it time.
	for i := 0; i < 20 && len(s) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
		s = suspects()
	}
	return s
}

// tcpListener listens on addr (127.0.0.1:0 or [::1]:0) and returns the
// port and a function that counts connections waiting to be accepted.
func tcpListener(t *testing.T, network, addr string) (int, func() int) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	sc, err := l.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)
	return l.Addr().(*net.TCPAddr).Port, func() int { return drainAccept(t, sc) }
}

// drainAccept accepts, without blocking, every connection already queued.
func drainAccept(t *testing.T, sc syscall.RawConn) int {
	n := 0
	err := sc.Control(func(fd uintptr) {
		for {
			nfd, _, err := unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err != nil {
				return
			}
			unix.Close(nfd)
			n++
		}
	})
	require.NoError(t, err)
	return n
}

// abstractListener listens on the abstract unix socket name (without the
// leading NUL) and returns a function that counts queued connections.
func abstractListener(t *testing.T, name string) func() int {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + name, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	sc, err := l.SyscallConn()
	require.NoError(t, err)
	return func() int { return drainAccept(t, sc) }
}

// globals encodes a Request.Globals object.
func globals(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}
