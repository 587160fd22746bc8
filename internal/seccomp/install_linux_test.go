package seccomp

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/testing/require"
	"github.com/pybox-dev/pybox/internal/testing/sbtest"
	"github.com/pybox-dev/pybox/internal/testing/victim"
)

// i386Env makes TestMain act as a victim that makes an i386 syscall.
const i386Env = "PYBOX_SECCOMP_I386_VICTIM"

func TestMain(m *testing.M) {
	if os.Getenv(i386Env) == "1" {
		// Without the filter this prints the pid and exits 0.
		r, err := victim.I386Syscall(20) // i386 getpid
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("i386 getpid returned " + strconv.FormatInt(r, 10) + "\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// install installs the filter; call it only inside sbtest.RunInSubprocess.
func install(t *testing.T) Info {
	t.Helper()
	require.True(t, sbtest.InSubprocess(), "Install outside a subprocess")
	info, err := Install(Options{})
	require.NoError(t, err)
	return info
}

// TestInstall_denies calls every denied syscall for real after Install. All
// arguments are -1, which the kernel would reject harmlessly (EBADF, EFAULT,
// EINVAL) if the filter did not deny the call first.
func TestInstall_denies(t *testing.T) {
	require.Seccomp(t)
	sbtest.RunInSubprocess(t, func() {
		// vhangup takes no argument: drop the controlling terminal first.
		_, _ = unix.Setsid()
		install(t)
		a, err := arch.GetInfo("")
		require.NoError(t, err)
		const bad = ^uintptr(0)
		for _, d := range denyList {
			nr, ok := a.SyscallNames[d.name]
			if !ok {
				continue
			}
			want := unix.EPERM
			if d.errno == enosys {
				want = unix.ENOSYS
			}
			_, _, errno := unix.Syscall6(uintptr(nr), bad, bad, bad, bad, bad, bad)
			require.Equal(t, want, errno, "%s", d.name)
		}
	})
}

func TestInstall_arguments(t *testing.T) {
	require.Seccomp(t)
	sbtest.RunInSubprocess(t, func() {
		install(t)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()

		// clone with a CLONE_NEW* flag. CLONE_THREAD without CLONE_SIGHAND
		// makes the kernel reject the call (EINVAL) if the filter did not.
		for _, flag := range []uintptr{unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS,
			unix.CLONE_NEWIPC, unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET} {
			_, _, errno := unix.RawSyscall6(unix.SYS_CLONE, flag|unix.CLONE_THREAD, 0, 0, 0, 0, 0)
			require.Equal(t, unix.EPERM, errno, "clone flag %#x", flag)
		}
		require.ErrorIs(t, unix.Unshare(unix.CLONE_NEWUSER), unix.EPERM)
		require.ErrorIs(t, unix.Unshare(unix.CLONE_FS), unix.EPERM)
		_, _, errno := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
		require.Equal(t, unix.ENOSYS, errno, "clone3")

		// The Go init's own fork+exec still works, but not into namespaces.
		require.NoError(t, exec.Command("/bin/true").Run())
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
		require.ErrorIs(t, cmd.Run(), unix.EPERM)

		// ioctl on a pipe: TIOCSTI is denied before the kernel could say
		// ENOTTY, even with high bits set; TCGETS reaches the kernel.
		var p [2]int
		require.NoError(t, unix.Pipe(p[:]))
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		for _, cmd := range []uint64{unix.TIOCSTI, 1<<32 | unix.TIOCSTI, unix.TIOCLINUX} {
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(p[0]), uintptr(cmd), 0)
			require.Equal(t, unix.EPERM, errno, "ioctl %#x", cmd)
		}
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(p[0]), unix.TCGETS, 0)
		require.Equal(t, unix.ENOTTY, errno, "ioctl TCGETS")

		// personality: only PER_LINUX and the query.
		_, _, errno = unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
		require.Equal(t, unix.Errno(0), errno, "personality query")
		_, _, errno = unix.Syscall(unix.SYS_PERSONALITY, 0, 0, 0)
		require.Equal(t, unix.Errno(0), errno, "personality PER_LINUX")
		_, _, errno = unix.Syscall(unix.SYS_PERSONALITY, 0x0040000, 0, 0) // ADDR_NO_RANDOMIZE
		require.Equal(t, unix.EPERM, errno, "personality ADDR_NO_RANDOMIZE")

		// Multipath TCP, which Landlock's TCP rules miss.
		_, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)
		require.ErrorIs(t, err, unix.EPROTONOSUPPORT, "MPTCP socket")
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		require.NoError(t, err, "TCP socket")
		unix.Close(fd)

		if runtime.GOARCH == "amd64" {
			_, _, errno = unix.Syscall(0x40000000|unix.SYS_GETPID, 0, 0, 0)
			require.Equal(t, unix.ENOSYS, errno, "x32 getpid")
		}
	})
}

// TestInstall_allThreads checks that TSYNC put every thread of the Go
// process, including ones started before Install, under the filter.
func TestInstall_allThreads(t *testing.T) {
	require.Seccomp(t)
	sbtest.RunInSubprocess(t, func() {
		// Start a few OS threads before Install.
		release := make(chan struct{})
		for range 4 {
			go func() {
				runtime.LockOSThread()
				<-release
			}()
		}
		install(t)
		tasks, err := filepath.Glob("/proc/self/task/*/status")
		require.NoError(t, err)
		require.True(t, len(tasks) > 4, "only %d threads", len(tasks))
		for _, status := range tasks {
			b, err := os.ReadFile(status)
			require.NoError(t, err)
			require.Contains(t, string(b), "Seccomp:\t2\n", status)
			require.Contains(t, string(b), "NoNewPrivs:\t1\n", status)
		}
		close(release)
	})
}

// TestInstall_foreignArch execs a victim under the filter (which execve
// keeps) that makes an i386 syscall: the kernel must kill it with SIGSYS.
// Some kernels have no i386 entry to attack: int $0x80 faults in a PVM
// guest (the victim crashes with or without a filter), and returns ENOSYS
// without IA32 emulation. There the victim is run without the filter too,
// to show it, and under the filter must not get its syscall made either
// (the filter's own check of the architecture is tested on its program,
// build_linux_test.go).
func TestInstall_foreignArch(t *testing.T) {
	require.Seccomp(t)
	require.Feature(t, runtime.GOARCH == "amd64", "needs amd64")
	victimRun := func() (string, error) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), i386Env+"=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// made: the victim's output says its i386 getpid returned a pid.
	made := func(out string) bool {
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(out, "i386 getpid returned ")))
		return strings.HasPrefix(out, "i386 getpid returned ") && err == nil && n > 0
	}
	// What the kernel does with the call when nothing filters it.
	bare, bareErr := victimRun()
	noEntry := bareErr != nil || !made(bare)
	if noEntry {
		t.Logf("this kernel makes no i386 syscall even unfiltered (%v): %.200s", bareErr, bare)
	}
	sbtest.RunInSubprocess(t, func() {
		install(t)
		out, err := victimRun()
		var exitErr *exec.ExitError
		require.True(t, errors.As(err, &exitErr), "victim survived: %v: %s", err, out)
		if noEntry {
			require.False(t, made(out), "the i386 syscall was made: %s", out)
			return
		}
		ws := exitErr.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled(), "victim exited with %v: %s", err, out)
		require.Equal(t, syscall.SIGSYS, ws.Signal())
	})
}

// TestInstall_python runs CPython under the filter: threads (glibc tries
// clone3 first, then falls back to clone), subprocess and fork.
func TestInstall_python(t *testing.T) {
	require.Seccomp(t)
	py := require.Python(t)
	script := `
import os, subprocess, threading
t = threading.Thread(target=lambda: None); t.start(); t.join()
assert subprocess.run(["/bin/true"]).returncode == 0
pid = os.fork()
if pid == 0:
    os._exit(7)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
print("ok")
`
	sbtest.RunInSubprocess(t, func() {
		install(t)
		out, err := exec.Command(py, "-c", script).CombinedOutput()
		require.NoError(t, err, string(out))
		require.Equal(t, "ok", strings.TrimSpace(string(out)))
	})
}

func TestInstall_numpy(t *testing.T) {
	require.Seccomp(t)
	py := require.Python(t)
	require.PythonModule(t, "numpy")
	sbtest.RunInSubprocess(t, func() {
		install(t)
		out, err := exec.Command(py, "-c", "import numpy; print(numpy.arange(3).sum())").CombinedOutput()
		require.NoError(t, err, string(out))
		require.Equal(t, "3", strings.TrimSpace(string(out)))
	})
}
