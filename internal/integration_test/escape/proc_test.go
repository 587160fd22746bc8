package escape

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func testHostEnvDoesNotLeak(t *testing.T, b *sb) {
	require.Equal(t, sentinelToken, os.Getenv(sentinelEnv))
	res := b.run(t, pybox.Request{Code: `
import os, subprocess
print("ENV", " ".join(sorted(os.environ)), flush=True)
for k, v in os.environ.items():
    if v == sentinel or k == name:
        print("ESCAPED host env visible:", k, flush=True)
try:
    out = subprocess.run(["/usr/bin/env"], capture_output=True, text=True).stdout
except OSError as e:  # WASI: no processes
    out = ""
    print("NOCHILD", e, flush=True)
if sentinel in out:
    print("ESCAPED host env visible to children", flush=True)
`, Globals: globals(t, map[string]any{"sentinel": sentinelToken, "name": sentinelEnv})})
	wantStatus(t, res, pybox.StatusSuccess)
	noEscape(t, res)
	require.NotContains(t, res.Stdout, sentinelEnv)
	// Nor does the init's own environment (GOMAXPROCS=1, native).
	require.NotContains(t, res.Stdout, "GOMAXPROCS")
}

// testNamespaces: the code shares no namespace with the host (the init
// is cloned into some and unshares the others itself: spawn.InitUnshares).
func testNamespaces(t *testing.T, b *sb) {
	nss := []string{"user", "pid", "mnt", "net", "ipc", "uts", "cgroup"}
	res := b.run(t, pybox.Request{Code: `
import os
for ns in names:
    print("NS", ns, os.readlink("/proc/self/ns/" + ns), flush=True)
`, Globals: globals(t, map[string]any{"names": nss})})
	wantStatus(t, res, pybox.StatusSuccess)
	got := lines(res, "NS")
	if len(got) != len(nss) {
		t.Fatalf("namespaces: %q", res.Stdout)
	}
	for i, ns := range nss {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		require.NoError(t, err)
		if got[i] == ns+" "+host {
			t.Errorf("ESCAPE: the code is in the host's %s namespace (%s)", ns, host)
		}
		if !strings.HasPrefix(got[i], ns+" "+ns+":[") {
			t.Errorf("namespace %s: %q", ns, got[i])
		}
	}
}

func testFDsDoNotLeak(t *testing.T, b *sb) {
	// The planted fds really are inherited by a plain child of this process.
	out, err := exec.Command("/bin/ls", "/proc/self/fd").Output()
	require.NoError(t, err)
	require.Contains(t, " "+strings.Join(strings.Fields(string(out)), " ")+" ", " 77 ", "the sentinel fd is not inheritable")
	res := b.run(t, pybox.Request{Code: `
import os, subprocess
def fds():
    out = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            os.fstat(fd)  # the listdir's own fd is closed by now
            out.append((fd, os.readlink("/proc/self/fd/%d" % fd)))
        except OSError:
            pass
    return out
for fd, target in fds():
    print("FD", fd, target, flush=True)
# A child process sees no more than fds 0-2.
r = subprocess.run(["/bin/ls", "/proc/self/fd"], capture_output=True, text=True, close_fds=False)
print("CHILDFDS", " ".join(sorted(r.stdout.split())), flush=True)
`})
	wantStatus(t, res, pybox.StatusSuccess)
	if strings.Contains(res.Stdout, sentinelFDPath) || strings.Contains(res.Stdout, "leaked-fd-") {
		t.Errorf("ESCAPE: a host fd without close-on-exec (%v, %s) is open in the sandbox", sentinelFDs, sentinelFDPath)
	}
	for _, l := range lines(res, "FD") {
		f := strings.Fields(l)
		fd, _ := strconv.Atoi(f[0])
		if fd > 2 && fd < 100 {
			t.Errorf("ESCAPE?: unexpected fd %s open in the sandbox's interpreter (want only 0-2 and the runner's >= 100)", l)
		}
	}
	// ls itself opens one fd (3) to list the directory.
	for _, l := range lines(res, "CHILDFDS") {
		for _, fd := range strings.Fields(l) {
			if n, _ := strconv.Atoi(fd); n > 3 {
				t.Errorf("ESCAPE?: a child process inherited fd %s (children: %s)", fd, l)
			}
		}
	}
}

func testProcShowsOnlySandbox(t *testing.T, b *sb) {
	hostMounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	res := b.run(t, pybox.Request{Code: `
import os
for p in sorted(int(x) for x in os.listdir("/proc") if x.isdigit()):
    try:
        cmd = open("/proc/%d/cmdline" % p, "rb").read().replace(b"\0", b" ").decode()[:80]
    except OSError as e:
        cmd = "<%s>" % e.strerror
    print("PROC", p, cmd, flush=True)
print("HOSTPID", os.path.exists("/proc/%d" % host_pid), flush=True)
for l in open("/proc/self/mountinfo"):
    pre, _, post = l.partition(" - ")
    print("MOUNT", pre.split()[4], post.split()[0], flush=True)
print("NET", " ".join(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]), flush=True)
print("HOSTNAME", os.uname().nodename, flush=True)
`, Globals: globals(t, map[string]any{"host_pid": os.Getpid()})})
	wantStatus(t, res, pybox.StatusSuccess)
	procs := lines(res, "PROC")
	if len(procs) > 4 {
		t.Errorf("ESCAPE: the sandbox sees %d processes, want only its own (init, python): %v", len(procs), procs)
	}
	for _, p := range procs {
		f := strings.SplitN(p, " ", 2)
		if f[0] == "1" {
			continue // the sandbox init
		}
		if len(f) < 2 || !strings.Contains(f[1], "python") {
			t.Errorf("ESCAPE: the sandbox sees a process that is not its own: %s", p)
		}
	}
	if os.Getpid() > 10 {
		require.Equal(t, []string{"False"}, lines(res, "HOSTPID"), "host pid %d visible in the sandbox's /proc", os.Getpid())
	}
	// None of the host's own mount points is visible.
	inside := map[string]string{} // mount point -> type
	for _, m := range lines(res, "MOUNT") {
		point, typ, _ := strings.Cut(m, " ")
		inside[point] = typ
	}
	for _, l := range strings.Split(string(hostMounts), "\n") {
		f := strings.Fields(l)
		if len(f) <= 4 || !(strings.HasPrefix(f[4], "/sys") || strings.HasPrefix(f[4], "/work/") || strings.HasPrefix(f[4], "/var")) {
			continue
		}
		typ, ok := inside[f[4]]
		if b.name == "gvisor" && f[4] == "/sys" && typ == "tmpfs" {
			// runsc always mounts something on /sys: the backend puts an
			// empty mode-0 tmpfs there (read-host-files checks EACCES).
			continue
		}
		if ok {
			t.Errorf("ESCAPE: host mount %s is visible in the sandbox (as %s)", f[4], typ)
		}
	}
	require.Equal(t, []string{"lo"}, lines(res, "NET"), "only loopback exists")
	host, _ := os.Hostname()
	require.NotEqual(t, []string{host}, lines(res, "HOSTNAME"))
}

func testDaemonsDie(t *testing.T, b *sb) {
	marker := "pybox-daemon-" + token()
	res := b.run(t, pybox.Request{Code: `
import os, signal, subprocess, sys
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)
        os.execv("/bin/sleep", [marker, "1000"])
    os._exit(0)
os.waitpid(pid, 0)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", marker],
                 start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
import time
def count():
    n = 0
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and marker.encode() in open("/proc/%s/cmdline" % p, "rb").read():
                n += 1
        except OSError:
            pass
    return n
for _ in range(200):  # the grandchild may not have exec'd yet
    if count() == 2:
        break
    time.sleep(0.01)
print("SPAWNED", count(), flush=True)
`, Globals: globals(t, map[string]any{"marker": marker})})
	wantStatus(t, res, pybox.StatusSuccess)
	require.Equal(t, []string{"2"}, lines(res, "SPAWNED"), "both daemons ran")
	if ps := processesWith(marker); len(ps) > 0 {
		t.Errorf("ESCAPE: daemons outlived the run: %v", ps)
	}
}

// victim starts a host process running as the same host uid as the
// sandbox's code, so that only the namespaces stand between them.
func victim(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "1000")
	uid := uint32(hostUIDBase + 1000)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// alive reports whether the child is still running (not exited, not a
// zombie), without reaping it when it is.
func alive(cmd *exec.Cmd) bool {
	var si unix.Siginfo
	err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &si, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && si.Signo == 0
}

func testSignalsToHost(t *testing.T, b *sb) {
	v := victim(t)
	res := b.run(t, pybox.Request{Code: `
import os, errno, signal
for pid in (victim, test_pid, 1 if False else -victim):
    try:
        os.kill(pid, signal.SIGKILL)
        print("SENT", pid, flush=True)
    except OSError as e:
        print("DENIED kill", pid, errno.errorcode.get(e.errno, e.errno), flush=True)
try:
    fd = os.pidfd_open(victim)
    print("ESCAPED pidfd_open", victim, flush=True)
except OSError as e:
    print("DENIED pidfd_open", errno.errorcode.get(e.errno, e.errno), flush=True)
`, Globals: globals(t, map[string]any{"victim": v.Process.Pid, "test_pid": os.Getpid()})})
	wantStatus(t, res, pybox.StatusSuccess)
	noEscape(t, res)
	require.True(t, alive(v), "ESCAPE: the host victim (pid %d) was killed from the sandbox", v.Process.Pid)
}

func testKillAll(t *testing.T, b *sb) {
	v := victim(t)
	res := b.run(t, pybox.Request{Code: `
import os, signal, subprocess
child = subprocess.Popen(["/bin/sleep", "1000"])
os.kill(-1, signal.SIGKILL)  # every process this uid may signal, but itself
print("CHILD", child.wait(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
`})
	wantStatus(t, res, pybox.StatusKilled)
	require.Equal(t, []string{"-9"}, lines(res, "CHILD"), "kill(-1) reaches the sandbox's own processes")
	require.True(t, alive(v), "ESCAPE: kill(-1) in the sandbox killed host pid %d", v.Process.Pid)
	// The test process itself is obviously alive; so is a fresh run.
	res = b.run(t, pybox.Request{Code: "print('after')"})
	wantStatus(t, res, pybox.StatusSuccess)
}

func testCredentials(t *testing.T, b *sb) {
	res := b.run(t, pybox.Request{Code: `
import os, errno
print("IDS", os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups(), flush=True)
for name, f in [("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                ("setgroups", lambda: os.setgroups([0])), ("seteuid", lambda: os.seteuid(0)),
                ("setresuid", lambda: os.setresuid(0, 0, 0))]:
    try:
        f()
        print("ESCAPED", name, os.getuid(), flush=True)
    except OSError as e:
        print("DENIED", name, errno.errorcode.get(e.errno, e.errno), flush=True)
for l in open("/proc/self/status"):
    k, _, v = l.partition(":")
    if k.startswith("Cap") or k in ("NoNewPrivs", "Seccomp", "Seccomp_filters"):
        print("STATUS", k, v.strip(), flush=True)
st = os.statvfs("/usr")
print("NOSUID", bool(st.f_flag & os.ST_NOSUID), flush=True)
import ctypes
print("NNP", ctypes.CDLL(None).prctl(39, 0, 0, 0, 0), flush=True)  # PR_GET_NO_NEW_PRIVS
`})
	wantStatus(t, res, pybox.StatusSuccess)
	noEscape(t, res)
	require.Equal(t, []string{"1000 1000 1000 1000 []"}, lines(res, "IDS"))
	require.Equal(t, 5, len(lines(res, "DENIED")))
	status := map[string]string{}
	for _, l := range lines(res, "STATUS") {
		k, v, _ := strings.Cut(l, " ")
		status[k] = v
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if v, ok := status[k]; ok || b.name == "native" {
			// gVisor 20221219's /proc/self/status has no CapAmb line.
			require.Equal(t, "0000000000000000", v, "%s", k)
		}
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd"} {
		require.True(t, status[k] != "", "/proc/self/status has no %s line", k)
	}
	if b.name == "native" {
		require.Equal(t, "1", status["NoNewPrivs"])
		// Under gVisor the code's syscalls are served by the sentry, which
		// reports no seccomp mode: its own host filter is runsc's.
		require.Equal(t, "2", status["Seccomp"])
	} else if v, ok := status["NoNewPrivs"]; ok {
		require.Equal(t, "1", v, "NoNewPrivs")
	}
	require.Equal(t, []string{"1"}, lines(res, "NNP"), "no_new_privs (prctl)")
	if b.name == "native" {
		// gVisor's statfs does not report nosuid (the spec asks for it);
		// no_new_privs, checked above, makes exec ignore setuid bits.
		require.Equal(t, []string{"True"}, lines(res, "NOSUID"))
	}
	iso := res.Isolation
	require.Equal(t, "none", iso.Capabilities)
	require.True(t, iso.NoNewPrivs)
	require.NotEqual(t, "", iso.Seccomp)
	require.NotNil(t, iso.UID)
	require.Equal(t, 1000, *iso.UID)
}

func testLandlock(t *testing.T, b *sb) {
	require.Landlock(t, 1)
	res := b.run(t, pybox.Request{Code: `
import os, socket, errno
# Inside the sandbox's own network namespace, TCP bind is still denied
# (Landlock ABI >= 4).
s = socket.socket()
try:
    s.bind(("127.0.0.1", 0))
    print("BIND allowed", flush=True)
except OSError as e:
    print("BIND", errno.errorcode.get(e.errno, e.errno), flush=True)
`})
	wantStatus(t, res, pybox.StatusSuccess)
	iso := res.Isolation
	if iso.LandlockABI <= 0 {
		t.Errorf("isolation.landlock_abi = %d on a host with Landlock ABI %d", iso.LandlockABI, require.LandlockABI())
	}
	require.True(t, len(iso.Landlock) > 0, "isolation.landlock lists the enforced rule kinds")
	if require.LandlockABI() >= 4 {
		require.Equal(t, []string{"EACCES"}, lines(res, "BIND"), "Landlock denies TCP bind")
	}
}

func testCancelKillsEverything(t *testing.T, b *sb) {
	marker := "pybox-cancel-" + token()
	ctx, cancel := context.WithCancel(t.Context())
	res, _ := b.runWith(t, ctx, pybox.Request{Code: `
import os, subprocess, time
try:
    subprocess.Popen([marker, "1000"], executable="/bin/sleep")
except OSError as e:  # WASI: no processes
    print("NOCHILD", e, flush=True)
print("READY", flush=True)
time.sleep(1000)
`, Globals: globals(t, map[string]any{"marker": marker})}, pybox.RunOptions{
		Stdout: func(b []byte) {
			if strings.Contains(string(b), "READY") {
				cancel()
			}
		},
	})
	wantStatus(t, res, pybox.StatusKilled)
	if ps := processesWith(marker); len(ps) > 0 {
		t.Errorf("ESCAPE: processes outlived a cancelled run: %v", ps)
	}
}
