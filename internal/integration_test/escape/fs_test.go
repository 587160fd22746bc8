package escape

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// tryRead prints "DENIED <path> <errno>" or "READ <path> <n> <hex prefix>"
// for every path in the global list `paths`.
const tryRead = errName + `
for p in paths:
    try:
        if os.path.isdir(p) and not os.path.islink(p):
            print("READ", p, "dir", sorted(os.listdir(p))[:20], flush=True)
            continue
        with open(p, "rb") as f:
            data = f.read(1 << 16)
        print("READ", p, len(data), data[:64].hex(), flush=True)
        for s in secrets:
            if s.encode() in data:
                print("ESCAPED read a host secret from", p, flush=True)
    except OSError as e:
        print("DENIED", p, errname(e), flush=True)
`

// errName defines errname(e): an exception's errno name, or its type for
// operations that do not exist (WASI has no chmod, symlink, mkfifo, ...).
const errName = `
import os, errno
def errname(e):
    n = getattr(e, "errno", None)
    return errno.errorcode.get(n, n) if n else type(e).__name__
`

func testReadHostFiles(t *testing.T, b *sb) {
	dir := t.TempDir()
	secret := "secret-" + token()
	secretPath := filepath.Join(dir, "secret.txt")
	require.NoError(t, os.WriteFile(secretPath, []byte(secret), 0o644))
	require.NoError(t, os.Chmod(dir, 0o755))
	cwd, _ := os.Getwd()

	mustDeny := []string{
		"/etc/shadow", "/etc/sudoers", "/etc/gshadow", "/root", "/root/.bashrc", "/home",
		secretPath, dir, "/sys", "/sys/kernel", "/sys/fs/cgroup", "/var/log", "/boot",
		cwd, "/proc/kcore", "/proc/1/root/etc/shadow", "/proc/1/cwd", "/proc/1/mem",
		"/proc/sysrq-trigger", "/dev/mem", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/kvm",
		"/run/docker.sock", "/var/run/docker.sock",
	}
	res := b.run(t, pybox.Request{
		Code: tryRead,
		Globals: globals(t, map[string]any{
			"paths":   append(mustDeny, "/proc/1/environ", "/proc/self/environ", "/etc/passwd"),
			"secrets": []string{secret, sentinelToken},
		}),
	})
	wantStatus(t, res, pybox.StatusSuccess)
	noEscape(t, res)
	denied := map[string]bool{}
	for _, l := range lines(res, "DENIED") {
		p, _, _ := strings.Cut(l, " ")
		denied[p] = true
	}
	for _, p := range mustDeny {
		if !denied[p] {
			t.Errorf("ESCAPE: %s was readable in the sandbox", p)
		}
	}
	// The sandbox's /etc/passwd is generated, not the host's.
	host, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	if strings.Contains(res.Stdout, "READ /etc/passwd "+strconv.Itoa(len(host))+" "+hex.EncodeToString(host[:min(64, len(host))])) {
		t.Errorf("ESCAPE: the sandbox read the host's /etc/passwd")
	}
}

func testWriteRuntimeDirs(t *testing.T, b *sb) {
	tok := token()
	name := "pybox-escape-" + tok
	targets := []string{
		"/" + name, "/usr/" + name, "/usr/bin/" + name, "/usr/lib/python3/dist-packages/" + name + ".py",
		"/etc/" + name, "/etc/passwd", "/etc/ld.so.preload", "/proc/" + name, "/dev/" + name,
		"/proc/sys/kernel/core_pattern", "/proc/self/oom_score_adj", "/run/" + name,
	}
	hostPasswd := fileHash(t, "/etc/passwd")
	res := b.run(t, pybox.Request{
		Code: errName + `
for p in targets:
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, b"pwned\n")
        os.close(fd)
        print("ESCAPED wrote", p, flush=True)
    except Exception as e:
        print("DENIED", p, errname(e), flush=True)
for d in ["/", "/usr", "/etc", "/usr/lib"]:
    try:
        os.mkdir(os.path.join(d, name + "-dir"))
        print("ESCAPED mkdir in", d, flush=True)
    except Exception as e:
        print("DENIED mkdir", d, errname(e), flush=True)
try:
    os.chmod("/nonexistent-" + name, 0o777)
    stub = True  # wasi-libc's chmod does nothing and always succeeds
except Exception:
    stub = False
for p in ["/usr/bin/python3", "/etc/hosts"]:
    if stub:
        print("NOOP chmod", p, flush=True)
        continue
    try:
        os.chmod(p, 0o777)
        print("ESCAPED chmod", p, flush=True)
    except Exception as e:
        print("DENIED chmod", p, errname(e), flush=True)
# Own areas stay writable.
for p in ["/work/ok", "/tmp/" + name]:
    open(p, "w").write("ok")
    print("WROTE", p, flush=True)
`,
		Globals: globals(t, map[string]any{"targets": targets, "name": name}),
	})
	wantStatus(t, res, pybox.StatusSuccess)
	noEscape(t, res)
	noop := len(lines(res, "NOOP"))
	if b.name != "wasm" {
		require.Equal(t, 0, noop, "chmod is a real system call here")
	}
	require.Equal(t, len(targets)+4+2, len(lines(res, "DENIED"))+noop, "every write must be denied")
	require.Equal(t, 2, len(lines(res, "WROTE")), "/work and /tmp must be writable")
	// The host is unchanged.
	for _, p := range []string{"/" + name, "/usr/" + name, "/usr/bin/" + name, "/etc/" + name,
		"/usr/lib/python3/dist-packages/" + name + ".py", "/tmp/" + name, "/work/ok", "/" + name + "-dir",
		"/usr/" + name + "-dir", "/etc/" + name + "-dir"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ESCAPE: %s exists on the host (%v)", p, err)
		}
	}
	require.Equal(t, hostPasswd, fileHash(t, "/etc/passwd"), "host /etc/passwd changed")
	if _, err := os.Stat("/etc/ld.so.preload"); err == nil {
		b, _ := os.ReadFile("/etc/ld.so.preload")
		require.NotContains(t, string(b), "pwned")
	}
}

func fileHash(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func testSymlinksInOutputFiles(t *testing.T, b *sb) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	secret := "secret-" + token()
	secretPath := filepath.Join(dir, "secret.txt")
	require.NoError(t, os.WriteFile(secretPath, []byte(secret), 0o644))
	hostPasswd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)

	res := b.run(t, pybox.Request{
		CollectFiles: true,
		Code: errName + `
os.mkdir("d")
for what, f in [("symlink", lambda: os.symlink("/etc/passwd", "out_passwd")),
                ("symlink", lambda: os.symlink(secret_path, "out_secret")),
                ("symlink", lambda: os.symlink("/proc/1/environ", "out_environ")),
                ("symlink", lambda: os.symlink("/", "rootdir")),
                ("symlink", lambda: os.symlink("../../../../etc", "climb")),
                ("symlink", lambda: os.symlink("/etc/hostname", "d/host")),
                ("mkfifo", lambda: os.mkfifo("fifo"))]:
    try:
        f()
    except Exception as e:  # WASI has neither
        print("DENIED", what, errname(e), flush=True)
for src in ["/etc/passwd", "/usr/bin/python3", "/proc/self/environ"]:
    try:
        os.link(src, "hl_" + os.path.basename(src))
        print("LINKED", src, flush=True)
    except Exception as e:
        print("DENIED link", src, errname(e), flush=True)
with open("ok.txt", "w") as f:
    f.write("regular file")
`,
		Globals: globals(t, map[string]any{"secret_path": secretPath}),
	})
	wantStatus(t, res, pybox.StatusSuccess)
	names := map[string]bool{}
	for _, f := range res.Files {
		names[f.Name] = true
		if strings.Contains(string(f.Data), secret) {
			t.Errorf("ESCAPE: collected file %q holds the host secret", f.Name)
		}
		if bytes.Equal(f.Data, hostPasswd) {
			t.Errorf("ESCAPE: collected file %q is the host's /etc/passwd", f.Name)
		}
		if strings.Contains(string(f.Data), sentinelToken) {
			t.Errorf("ESCAPE: collected file %q holds the host environment", f.Name)
		}
		if filepath.IsAbs(f.Name) || strings.Contains(f.Name, "..") {
			t.Errorf("collected file name %q is not a clean relative path", f.Name)
		}
	}
	require.True(t, names["ok.txt"], "regular files are collected: %v", names)
	for _, n := range []string{"out_passwd", "out_secret", "out_environ", "d/host", "fifo"} {
		if names[n] {
			t.Errorf("symlink or fifo %q was collected as a file", n)
		}
	}
	for n := range names {
		if strings.HasPrefix(n, "rootdir/") || strings.HasPrefix(n, "climb/") {
			t.Errorf("ESCAPE: collection followed a directory symlink: %q", n)
		}
	}
	// Hard links to files outside /work cannot exist (other filesystems);
	// if one did, it must still not carry host content (checked above).
	t.Logf("link attempts: %v / %v", lines(res, "DENIED"), lines(res, "LINKED"))
}

func testInputNamesWithDotDot(t *testing.T, b *sb) {
	tok := token()
	for _, name := range []string{
		"../" + tok, "a/../../" + tok, "..", "/etc/" + tok, "/" + tok, "a/../..", "sub/../../../" + tok,
		"a\x00b", `..\` + tok, "",
	} {
		t.Run(strings.NewReplacer("/", "_", "\x00", "NUL").Replace(name), func(t *testing.T) {
			res, err := sandbox().Run(t.Context(), pybox.Request{
				Backend: b.name,
				Code:    "print('RAN')",
				Files:   []pybox.File{{Name: name, Data: []byte("x")}},
			})
			require.Error(t, err)
			require.ErrorIs(t, err, pybox.ErrInvalid)
			require.Equal(t, pybox.StatusInputError, res.Status)
			require.NotContains(t, res.Stdout, "RAN")
		})
	}
	for _, m := range []pybox.Mount{
		{Host: "/etc", Guest: "/work/../etc"},
		{Host: "/etc", Guest: "/"},
		{Host: "/etc", Guest: "/proc"},
		{Host: "/etc", Guest: "relative"},
		{Host: "etc", Guest: "/data"},
	} {
		res, err := sandbox().Run(t.Context(), pybox.Request{
			Backend: b.name, Code: "print('RAN')", Mounts: []pybox.Mount{m},
		})
		if err == nil || res.Status != pybox.StatusInputError {
			t.Errorf("mount %+v: err %v, status %s; want an input error", m, err, res.Status)
		}
	}
	if _, err := os.Lstat(filepath.Join(os.TempDir(), tok)); err == nil {
		t.Errorf("ESCAPE: an input file landed in the host's temp dir")
	}
}

func testDiskFill(t *testing.T, b *sb) {
	const disk = 8 << 20
	tok := token()
	dirs := []string{"/work", "/tmp", "/dev/shm"}
	if b.name == "wasm" {
		dirs = dirs[:2] // no /dev in WASI
	}
	res := b.run(t, pybox.Request{
		Disk:   disk,
		Memory: 256 << 20,
		Code: `
import os, errno
chunk = b"\xab" * (1 << 20)
for d in dirs:
    total = 0
    err = "none"
    try:
        for i in range(64):
            with open(os.path.join(d, "%s-%d" % (tok, i)), "wb") as f:
                while True:
                    n = f.write(chunk)
                    f.flush()
                    total += n
                    if f.tell() >= 4 << 20:
                        break
    except OSError as e:
        err = errno.errorcode.get(e.errno, e.errno)
    print("FILLED", d, err, total, flush=True)
`,
		Globals: globals(t, map[string]any{"tok": tok, "dirs": dirs}),
	})
	wantStatus(t, res, pybox.StatusSuccess)
	got := lines(res, "FILLED")
	require.Equal(t, len(dirs), len(got), "one line per filesystem")
	for _, l := range got {
		f := strings.Fields(l)
		require.Equal(t, 3, len(f))
		// wazero's WASI preview 1 has no ENOSPC: the wasm backend's
		// quota answers EIO (internal/wasm/quotafs.go).
		if f[1] != "ENOSPC" && f[1] != "EFBIG" && (b.name != "wasm" || f[1] != "EIO") {
			t.Errorf("%s: filling stopped with %s, want ENOSPC", f[0], f[1])
		}
		n, err := strconv.Atoi(f[2])
		require.NoError(t, err)
		if n > disk {
			t.Errorf("ESCAPE: wrote %d bytes to %s, over the %d byte cap", n, f[0], disk)
		}
	}
	ms, _ := filepath.Glob(filepath.Join(os.TempDir(), tok+"*"))
	require.Equal(t, 0, len(ms), "nothing lands in the host's temp dir")
	ms, _ = filepath.Glob(filepath.Join("/dev/shm", tok+"*"))
	require.Equal(t, 0, len(ms), "nothing lands in the host's /dev/shm")
}

func testDevices(t *testing.T, b *sb) {
	res := b.run(t, pybox.Request{Code: `
import os, stat, errno
print("DEV", " ".join(sorted(os.listdir("/dev"))), flush=True)
for p, kind, dev in [("/work/mem", stat.S_IFCHR, os.makedev(1, 1)),
                     ("/tmp/sda", stat.S_IFBLK, os.makedev(8, 0)),
                     ("/dev/shm/kmsg", stat.S_IFCHR, os.makedev(1, 11))]:
    try:
        os.mknod(p, kind | 0o666, dev)
        print("ESCAPED mknod", p, flush=True)
    except OSError as e:
        print("DENIED mknod", p, errno.errorcode.get(e.errno, e.errno), flush=True)
with open("/dev/null", "w") as f:
    f.write("ok")
print("RANDOM", len(open("/dev/urandom", "rb").read(16)), flush=True)
`})
	wantStatus(t, res, pybox.StatusSuccess)
	noEscape(t, res)
	devs := lines(res, "DEV")
	require.Equal(t, 1, len(devs))
	allowed := map[string]bool{
		"null": true, "zero": true, "full": true, "random": true, "urandom": true, "shm": true,
		"fd": true, "stdin": true, "stdout": true, "stderr": true, "pts": true, "ptmx": true,
	}
	for _, d := range strings.Fields(devs[0]) {
		if !allowed[d] {
			t.Errorf("ESCAPE: unexpected device /dev/%s in the sandbox", d)
		}
	}
	require.Equal(t, 3, len(lines(res, "DENIED")))
	require.Equal(t, []string{"16"}, lines(res, "RANDOM"))
}
