package spawn

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

// TestMain makes the test binary a stand-in init when started as one: it
// reports what it was given, echoes the runner pipe and waits for the
// control socket to close.
func TestMain(m *testing.M) {
	if len(os.Args) > 0 && os.Args[0] == Arg0 {
		fakeInit()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fakeInit() {
	// Descriptors 0-5 and what they are (an init closes any others it
	// inherits itself: this one does not care).
	var fds []string
	for fd := range 6 {
		t, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		t, _, _ = strings.Cut(t, ":")
		fds = append(fds, t)
	}
	host, _ := os.Hostname()
	fmt.Fprintf(os.Stdout, "pid=%d uid=%d gid=%d env=%q sid=%v fds=%s host=%s\n", os.Getpid(), os.Getuid(), os.Getgid(),
		os.Environ(), mustSid() == os.Getpid(), strings.Join(fds, ","), host)
	fmt.Fprint(os.Stderr, "stderr works")
	os.Stdout.Close()
	os.Stderr.Close()
	b, _ := io.ReadAll(os.NewFile(FDRunnerIn, "in"))
	rout := os.NewFile(FDRunnerOut, "out")
	rout.Write(b)
	rout.Close()
	io.Copy(io.Discard, os.NewFile(FDControl, "control"))
}

func mustSid() int {
	sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
	return int(sid)
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestStart starts an init and checks what it gets: namespaces, the id
// maps, its session, an environment of GOMAXPROCS=1 alone (one P from its
// start), descriptors 0-5 only; and
// what the parent gets: non-blocking, close-on-exec ends that work.
func TestStart(t *testing.T) {
	require.Root(t)
	require.UserNS(t)
	before := openFDs(t)
	in, err := Start(Options{Path: "/proc/self/exe", RunnerIn: -1, CgroupFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	if in.Path != "/proc/self/exe" || in.InCgroup || in.Started == 0 {
		t.Errorf("Init = %+v", in)
	}
	for _, fd := range []int{in.Stdout, in.Stderr, in.RunnerIn, in.RunnerOut, in.Control} {
		fl, err := fcntl(fd, syscall.F_GETFL)
		if err != nil || fl&syscall.O_NONBLOCK == 0 {
			t.Errorf("fd %d: flags %#x, %v: want non-blocking", fd, fl, err)
		}
		if fdfl, err := fcntl(fd, syscall.F_GETFD); err != nil || fdfl&syscall.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: not close-on-exec (%#x, %v)", fd, fdfl, err)
		}
	}
	// The namespaces it is cloned in (it unshares the rest itself,
	// InitUnshares: the escape suite's "namespaces" case checks them).
	for _, ns := range []string{"user", "pid", "mnt", "cgroup"} {
		ours, _ := os.Readlink("/proc/self/ns/" + ns)
		theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", in.Pid, ns))
		if err != nil || ours == theirs {
			t.Errorf("%s namespace: ours %s, init's %s (%v)", ns, ours, theirs, err)
		}
	}
	for _, f := range []string{"uid_map", "gid_map"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", in.Pid, f))
		got := strings.Fields(string(b))
		want := []string{"0", strconv.Itoa(HostUIDBase), "1", strconv.Itoa(SandboxUID), strconv.Itoa(HostUIDBase + SandboxUID), "1"}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s = %q (%v), want %q", f, got, err, want)
		}
	}
	stdout, stderr := os.NewFile(uintptr(in.Stdout), "stdout"), os.NewFile(uintptr(in.Stderr), "stderr")
	rin, rout := os.NewFile(uintptr(in.RunnerIn), "rin"), os.NewFile(uintptr(in.RunnerOut), "rout")
	ctrl := os.NewFile(uintptr(in.Control), "control")
	out, _ := io.ReadAll(stdout)
	errOut, _ := io.ReadAll(stderr)
	if want := "pid=1 uid=0 gid=0 env=[\"GOMAXPROCS=1\"] sid=true fds=/dev/null,pipe,pipe,pipe,pipe,socket host="; !strings.HasPrefix(string(out), want) {
		t.Errorf("init reported %q, want %q...", out, want)
	}
	if string(errOut) != "stderr works" {
		t.Errorf("stderr: %q", errOut)
	}
	rin.Write([]byte("frame"))
	rin.Close()
	if b, _ := io.ReadAll(rout); string(b) != "frame" {
		t.Errorf("runner pipes: %q", b)
	}
	ctrl.Close()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(in.Pid, &ws, 0, nil); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("init: %v, %v", ws, err)
	}
	for _, f := range []*os.File{stdout, stderr, rout} {
		f.Close()
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}

// TestStartFails: a program that cannot be executed is an error that
// leaves nothing open, unless a fallback runs instead.
func TestStartFails(t *testing.T) {
	require.Root(t)
	require.UserNS(t)
	before := openFDs(t)
	_, err := Start(Options{Path: "/nonexistent/init", RunnerIn: -1, CgroupFD: -1})
	if err == nil || !ExecFailed(err) || !strings.Contains(err.Error(), "/nonexistent/init") {
		t.Fatalf("Start of a missing program: %v (ExecFailed %v)", err, ExecFailed(err))
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after a failed start", before, after)
	}
	in, err := Start(Options{Path: "/nonexistent/init", Fallback: "/proc/self/exe", RunnerIn: -1, CgroupFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	if in.Path != "/proc/self/exe" {
		t.Errorf("Path = %q, want the fallback", in.Path)
	}
	in.Close()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(in.Pid, &ws, 0, nil); err != nil {
		t.Error(err)
	}
	if ExecFailed(syscall.EAGAIN) || ExecFailed(io.EOF) {
		t.Error("ExecFailed of a clone's EAGAIN or of another error")
	}
}

// TestEarly: TakeEarly hands over Early's init once, and Early does
// nothing once TakeEarly was called.
func TestEarly(t *testing.T) {
	require.Root(t)
	require.UserNS(t)
	Early("/proc/self/exe", false, nil)
	in := TakeEarly()
	if in == nil {
		t.Fatal("TakeEarly after Early: nil")
	}
	if again := TakeEarly(); again != nil {
		t.Error("TakeEarly handed the init over twice")
	}
	in.Close()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(in.Pid, &ws, 0, nil); err != nil {
		t.Error(err)
	}
	Early("/proc/self/exe", false, nil)
	if in := TakeEarly(); in != nil {
		t.Error("Early started an init after TakeEarly")
	}
}

// TestTakeEarlyDead: an early init that ended before it was taken is
// reaped and not handed over (the caller starts a new one).
func TestTakeEarlyDead(t *testing.T) {
	require.Root(t)
	require.UserNS(t)
	early.Lock()
	early.done = false // as if fresh (TestEarly ran first)
	early.Unlock()
	before := openFDs(t)
	if !Early("/bin/true", false, nil) {
		t.Fatal("Early(/bin/true) did not start")
	}
	pid := early.in.Pid
	for range 200 { // /bin/true exits at once; wait until it is a zombie
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if strings.Contains(string(b), ") Z ") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if in := TakeEarly(); in != nil {
		t.Errorf("TakeEarly handed over an init that had ended: %+v", in)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("the ended init %d was not reaped", pid)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}

func fcntl(fd, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// TestEarlyPrepareRefuses: an init whose prepare fails is killed and
// reaped, and not handed over.
func TestEarlyPrepareRefuses(t *testing.T) {
	require.Root(t)
	require.UserNS(t)
	early.Lock()
	early.done, early.in = false, nil // as if fresh
	early.Unlock()
	before := openFDs(t)
	pid := -1
	if Early("/proc/self/exe", false, func(in *Init) bool { pid = in.Pid; return false }) {
		t.Fatal("Early reported an init that prepare refused")
	}
	if pid <= 0 {
		t.Fatal("prepare was not called")
	}
	if in := TakeEarly(); in != nil {
		t.Errorf("TakeEarly handed over a refused init: %+v", in)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("the refused init %d was not reaped", pid)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}
