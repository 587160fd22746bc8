package escape

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// dangerousSyscalls calls each syscall through ctypes with realistic
// arguments and prints "RESULT <name> <ret> <errno name>". x86_64 numbers.
const dangerousSyscalls = `
import ctypes, errno, os, signal, struct, time
libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long
def buf(n, data=b""):
    b = ctypes.create_string_buffer(n)
    b.raw = data.ljust(n, b"\0")
    return b

# A sibling to attach to: same uid, so only seccomp stands in the way.
sib = os.fork()
if sib == 0:
    time.sleep(30)
    os._exit(0)

NS_FD = os.open("/proc/self/ns/net", os.O_RDONLY)
ROOT_FD = os.open("/work", os.O_RDONLY)
bpf_attr = buf(128, struct.pack("IIII", 2, 4, 4, 1))            # BPF_MAP_CREATE array
perf_attr = buf(128, struct.pack("IIQQQQQ", 1, 128, 0, 0, 0, 0, 1 | 32 | 64))
uring = buf(120)
handle = buf(136, struct.pack("Ii", 128, 0))
mount_id = ctypes.c_int(0)
clone_args = buf(88, struct.pack("QQQQQ", 0x10000000, 0, 0, 0, signal.SIGCHLD))
iov = buf(16)

calls = [
    ("mount", 165, [b"none", b"/tmp", b"tmpfs", L(0), None]),
    ("umount2", 166, [b"/usr", L(2)]),
    ("unshare-user", 272, [L(0x10000000)]),
    ("unshare-mount", 272, [L(0x00020000)]),
    ("unshare-net", 272, [L(0x40000000)]),
    ("setns", 308, [L(NS_FD), L(0)]),
    ("clone-newuser", 56, [L(0x10000000 | signal.SIGCHLD), None, None, None, None]),
    ("clone3-newuser", 435, [clone_args, L(88)]),
    ("ptrace-traceme", 101, [L(0), L(0), None, None]),
    ("ptrace-attach-sibling", 101, [L(16), L(sib), None, None]),
    ("ptrace-attach-init", 101, [L(16), L(1), None, None]),
    ("process_vm_readv", 310, [L(sib), iov, L(1), iov, L(1), L(0)]),
    ("bpf", 321, [L(0), bpf_attr, L(128)]),
    ("keyctl", 250, [L(0), L(-3), L(1)]),
    ("add_key", 248, [b"user", b"pybox", b"x", L(1), L(-2)]),
    ("perf_event_open", 298, [perf_attr, L(0), L(-1), L(-1), L(0)]),
    ("io_uring_setup", 425, [L(8), uring]),
    ("userfaultfd", 323, [L(1)]),
    ("kexec_load", 246, [L(0), L(0), None, L(0)]),
    ("kexec_file_load", 320, [L(-1), L(-1), L(0), b"", L(0)]),
    ("init_module", 175, [None, L(0), b""]),
    ("finit_module", 313, [L(ROOT_FD), b"", L(0)]),
    ("delete_module", 176, [b"ext4", L(0o4000)]),
    ("reboot", 169, [L(0xfee1dead), L(672274793), L(0), None]),
    ("chroot", 161, [b"/tmp"]),
    ("pivot_root", 155, [b"/tmp", b"/tmp"]),
    ("name_to_handle_at", 303, [L(-100), b"/work", handle, ctypes.byref(mount_id), L(0)]),
    ("open_by_handle_at", 304, [L(ROOT_FD), handle, L(0)]),
    ("fsopen", 430, [b"tmpfs", L(0)]),
    ("open_tree", 428, [L(-100), b"/usr", L(1)]),
    ("swapon", 167, [b"/work/swap", L(0)]),
    ("syslog", 103, [L(3), buf(1024), L(1024)]),
    ("sethostname", 170, [b"evil", L(4)]),
    ("iopl", 172, [L(3)]),
    ("ioperm", 173, [L(0x80), L(1), L(1)]),
    ("acct", 163, [b"/work/acct"]),
]
# Each call runs in its own child, so that one call that works (in gVisor,
# unshare of a user namespace does) cannot lend its effect to the next.
for name, nr, args in calls:
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        ctypes.set_errno(0)
        r = libc.syscall(L(nr), *args)
        e = ctypes.get_errno()
        if r == 0 and name.startswith("clone"):
            os._exit(0)  # the child of a clone that should not have worked
        out = "%d %s" % (r, errno.errorcode.get(e, e) if r < 0 else "-")
        if name == "syslog" and r > 0:
            out += " " + args[1].raw[:r].decode("utf-8", "replace").splitlines()[0].replace(" ", "_")[:60]
        os.write(wfd, out.encode())
        os._exit(0)
    os.close(wfd)
    out = b""
    while True:
        c = os.read(rfd, 4096)
        if not c:
            break
        out += c
    os.close(rfd)
    os.waitpid(pid, 0)
    print("RESULT", name, out.decode() or "no-result", flush=True)
os.kill(sib, signal.SIGKILL)
os.waitpid(sib, 0)
`

// syscallWant is what one call of dangerousSyscalls gets on each backend
// that can make it: an errno name, or "ok" when the call works there and
// why that is safe.
type syscallWant struct {
	native, gvisor string
	why            string // for an "ok"
}

// syscallWants: on native the seccomp filter answers EPERM (ENOSYS for
// clone3, so that glibc falls back to clone): anything else means the call
// reached the kernel proper. Under gVisor the calls never reach the host
// kernel: the sentry implements, emulates or refuses each one itself
// (runsc 20221219, Debian 12; a newer runsc may answer differently).
var syscallWants = map[string]syscallWant{
	"mount":                 {"EPERM", "EPERM", ""},
	"umount2":               {"EPERM", "EPERM", ""},
	"unshare-user":          {"EPERM", "ok", "the sentry implements user namespaces: the new one, and any capability in it, exist only inside the sentry"},
	"unshare-mount":         {"EPERM", "ok", "the sentry lets an unprivileged task unshare its mount namespace; mounting in it still fails (mount: EPERM), and it is the sentry's own table, not the host's"},
	"unshare-net":           {"EPERM", "EPERM", ""},
	"setns":                 {"EPERM", "ENOTSUP", ""},
	"clone-newuser":         {"EPERM", "ok", "as unshare-user: a child in a user namespace inside the sentry"},
	"clone3-newuser":        {"ENOSYS", "ENOSYS", ""},
	"ptrace-traceme":        {"EPERM", "ok", "the sentry implements ptrace between its own tasks; no host process can be traced"},
	"ptrace-attach-sibling": {"EPERM", "EPERM", ""},
	"ptrace-attach-init":    {"EPERM", "EPERM", ""},
	"process_vm_readv":      {"EPERM", "ENOSYS", ""},
	"bpf":                   {"EPERM", "EPERM", ""},
	"keyctl":                {"EPERM", "EACCES", ""},
	"add_key":               {"EPERM", "EACCES", ""},
	"perf_event_open":       {"EPERM", "ENODEV", ""},
	"io_uring_setup":        {"EPERM", "ok", "the sentry has its own io_uring; the host kernel's is never reached"},
	"userfaultfd":           {"EPERM", "ENOSYS", ""},
	"kexec_load":            {"EPERM", "EPERM", ""},
	"kexec_file_load":       {"EPERM", "EPERM", ""},
	"init_module":           {"EPERM", "EPERM", ""},
	"finit_module":          {"EPERM", "EPERM", ""},
	"delete_module":         {"EPERM", "EPERM", ""},
	"reboot":                {"EPERM", "EPERM", ""},
	"chroot":                {"EPERM", "EPERM", ""},
	"pivot_root":            {"EPERM", "EPERM", ""},
	"name_to_handle_at":     {"EPERM", "ENOTSUP", ""},
	"open_by_handle_at":     {"EPERM", "ENOTSUP", ""},
	"fsopen":                {"EPERM", "ENOSYS", ""},
	"open_tree":             {"EPERM", "ENOSYS", ""},
	"swapon":                {"EPERM", "EPERM", ""},
	"syslog":                {"EPERM", "ok", "the sentry returns its own synthetic boot log, never the host's (checked: it starts with gVisor's banner)"},
	"sethostname":           {"EPERM", "EPERM", ""},
	"iopl":                  {"EPERM", "EPERM", ""},
	"ioperm":                {"EPERM", "EPERM", ""},
	"acct":                  {"EPERM", "EPERM", ""},
}

func testDangerousSyscalls(t *testing.T, b *sb) {
	require.Feature(t, runtime.GOARCH == "amd64", "the syscall numbers are for x86_64, this is %s", runtime.GOARCH)
	hostname, _ := os.Hostname()
	res := b.run(t, pybox.Request{Code: dangerousSyscalls})
	wantStatus(t, res, pybox.StatusSuccess)
	got := lines(res, "RESULT")
	require.Equal(t, len(syscallWants), len(got), "one result per syscall")
	for _, l := range got {
		f := strings.Fields(l)
		name, ret, errno := f[0], f[1], ""
		if len(f) > 2 {
			errno = f[2]
		}
		w, ok := syscallWants[name]
		if !ok {
			t.Errorf("no expectation for %s", name)
			continue
		}
		want := w.native
		if b.name == "gvisor" {
			want = w.gvisor
		}
		if want == "ok" {
			if strings.HasPrefix(ret, "-") {
				t.Errorf("%s failed with %s; the table says it works on %s (%s): update syscallWants", name, errno, b.name, w.why)
			}
			if name == "syslog" && (len(f) < 4 || !strings.Contains(f[3], "gVisor")) {
				t.Errorf("ESCAPE?: syslog under gVisor returned %q, not the sentry's own log", strings.Join(f[3:], " "))
			}
			continue
		}
		if !strings.HasPrefix(ret, "-") {
			t.Errorf("ESCAPE: %s succeeded (returned %s)", name, ret)
			continue
		}
		if errno != want {
			t.Errorf("%s failed with %s, want %s on %s", name, errno, want, b.name)
		}
	}
	// The calls that change the host, had they worked.
	now, _ := os.Hostname()
	require.Equal(t, hostname, now, "ESCAPE: the host's hostname changed")
}
