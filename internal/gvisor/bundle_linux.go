package gvisor

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/api"
)

// Identity of the code inside the sandbox (the same as the native backend).
const (
	sandboxUID = 1000
	sandboxGID = 1000
	hostname   = "pybox"
)

// Paths inside the sandbox.
const (
	guestWork = "/work"
	guestTmp  = "/tmp"
	guestChan = "/run/pybox"
	chanOut   = "out"
	// guestStdin is where the runner reads its exec frame: fd 0, a pipe
	// (the runner moves it to fd 100 or more and gives the code /dev/null
	// as stdin).
	guestStdin = "0"
)

// outUnstarted is what the result file holds until the runner opens it
// (with O_TRUNC): still there after the run means the runner never started.
const outUnstarted = "-"

// etcFiles are host files and directories under /etc the runtime may need
// (the native backend's list); those present are copied once per backend
// into a generated /etc, next to passwd, group, hosts and friends.
var etcFiles = []string{
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
	"/etc/alternatives", "/etc/fonts", "/etc/matplotlibrc", "/etc/mime.types",
	"/etc/python3", "/etc/python3.11", "/etc/python3.12", "/etc/python3.13",
	"/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/timezone",
}

// maxEtcBytes bounds what copying etcFiles may read, so a strange host
// cannot make every backend start copy gigabytes.
const maxEtcBytes = 64 << 20

const passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
	"sandbox:x:1000:1000:pybox sandbox:/work:/bin/sh\n" +
	"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"

const group = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"

var generatedEtc = map[string]string{
	"passwd":        passwd,
	"group":         group,
	"hostname":      hostname + "\n",
	"hosts":         "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	"resolv.conf":   "",
	"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
}

// sharedEtc returns the generated /etc under dir, building it when this
// host's etcFiles changed (or on first use). Copying takes tens of
// milliseconds, so it is shared by every pybox process: its name carries a
// hash of the size, mode and mtime of each source entry (a directory's
// mtime changes when entries come or go), it is built in a temporary
// directory and renamed into place, and stale copies are removed.
func sharedEtc(dir string) (string, error) {
	h := fnv.New64a()
	for _, f := range etcFiles {
		if fi, err := os.Lstat(f); err == nil {
			fmt.Fprintf(h, "%s %d %o %d\n", f, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		}
	}
	name := fmt.Sprintf("etc-%016x", h.Sum64())
	final := filepath.Join(dir, name)
	if _, err := os.Stat(filepath.Join(final, "passwd")); err == nil {
		return final, nil
	}
	tmp := filepath.Join(dir, fmt.Sprintf("%d-etc%d", os.Getpid(), seq.Add(1)))
	if err := buildEtc(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(final, "passwd")); serr != nil {
			return "", err
		}
		// Another process won the race; use its copy.
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "etc-") && e.Name() != name {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}
	return final, nil
}

// buildEtc writes the generated /etc into dir (which must not exist).
func buildEtc(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	budget := int64(maxEtcBytes)
	for _, f := range etcFiles {
		if _, ok := generatedEtc[path.Base(f)]; ok {
			continue
		}
		if _, err := os.Lstat(f); err != nil {
			continue
		}
		if err := copyTree(f, filepath.Join(dir, strings.TrimPrefix(f, "/etc/")), &budget); err != nil {
			return fmt.Errorf("copy %s: %w", f, err)
		}
	}
	for name, content := range generatedEtc {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies src to dst: regular files by content, symlinks as
// symlinks, directories recursively; anything else is skipped.
func copyTree(src, dst string, budget *int64) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable parts are left out
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return nil
			}
			return os.Symlink(t, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			if *budget -= fi.Size(); *budget < 0 {
				return errors.New("host /etc files are too large to copy")
			}
			in, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer in.Close()
			out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm()|0o444)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, io.LimitReader(in, fi.Size()))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return nil
	})
}

// runDir is one run's private directory and its mounts.
type runDir struct {
	path   string
	mounts []string // host tmpfs mounts, unmounted by remove
}

func (d *runDir) bundle() string { return filepath.Join(d.path, "bundle") }
func (d *runDir) rootfs() string { return filepath.Join(d.path, "bundle", "rootfs") }
func (d *runDir) state() string  { return filepath.Join(d.path, "state") }
func (d *runDir) work() string   { return filepath.Join(d.path, "work") }
func (d *runDir) tmp() string    { return filepath.Join(d.path, "tmp") }
func (d *runDir) chan_() string  { return filepath.Join(d.path, "chan") }
func (d *runDir) shm() string    { return filepath.Join(d.path, "shm") }
func (d *runDir) dev() string    { return filepath.Join(d.path, "dev") }

// devNodes are the only device files of the sandbox's /dev, as in the
// native backend. runsc's own /dev would also hold fuse, net/tun and tty
// (more sentry code within the code's reach), so /dev is instead a host
// directory holding these nodes, bound read-write (gVisor refuses writes to
// a device on a read-only mount). A device node on a gofer mount is only a
// key: the sentry serves its own implementation of that major:minor and
// never opens the host device (a node for a device the sentry does not
// implement, such as 1:11 kmsg, fails with EPERM).
var devNodes = []struct {
	name         string
	major, minor uint32
}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}}

// devLinks are /dev's symlinks, as in the native backend.
var devLinks = map[string]string{
	"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
}

// makeDev fills dir (root-owned, 0755: the sandbox user cannot add to it)
// with the device nodes, the symlinks and the mount points runsc and the
// spec need (pts for runsc's devpts, shm for the capped /dev/shm).
func makeDev(dir string) error {
	for _, n := range devNodes {
		p := filepath.Join(dir, n.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		if err := unix.Chmod(p, 0o666); err != nil { // not narrowed by the umask
			return err
		}
	}
	for name, target := range devLinks {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for _, sub := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// makeRunDir creates dir with the bundle skeleton and mounts the size-capped
// tmpfs for /work, /tmp and the protocol channel.
func makeRunDir(dir string, disk, chanBytes int64) (*runDir, error) {
	d := &runDir{path: dir}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	// The run directory (0700) keeps host users out; inside it the root
	// must be traversable by the sandbox user.
	for _, sub := range []string{d.rootfs(), d.state(), d.work(), d.tmp(), d.shm(), d.chan_(), d.dev()} {
		if err := os.MkdirAll(sub, 0o755); err != nil {
			d.remove()
			return nil, err
		}
	}
	if err := makeDev(d.dev()); err != nil {
		d.remove()
		return nil, fmt.Errorf("/dev: %w", err)
	}
	for _, m := range []struct {
		dir, opts string
	}{
		{d.work(), fmt.Sprintf("size=%d,mode=0755,uid=%d,gid=%d", disk, sandboxUID, sandboxGID)},
		{d.tmp(), fmt.Sprintf("size=%d,mode=1777", disk)},
		{d.shm(), fmt.Sprintf("size=%d,mode=1777", disk)},
		{d.chan_(), fmt.Sprintf("size=%d,mode=0755", chanBytes)},
	} {
		if err := unix.Mount("tmpfs", m.dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, m.opts); err != nil {
			d.remove()
			return nil, fmt.Errorf("mount tmpfs on %s: %w", m.dir, err)
		}
		d.mounts = append(d.mounts, m.dir)
	}
	return d, nil
}

// remove unmounts the run's tmpfs and deletes the directory. Every process
// that could use them must be dead.
func (d *runDir) remove() error {
	var errs []error
	for i := len(d.mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(d.mounts[i], unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", d.mounts[i], err))
		}
	}
	d.mounts = nil
	if len(errs) == 0 {
		errs = append(errs, os.RemoveAll(d.path))
	}
	return errors.Join(errs...)
}

// writeChannel writes the placeholder result file (owned by the sandbox
// user, which the runner truncates). The directory stays root's (0755):
// the code cannot replace the file.
func (d *runDir) writeChannel() error {
	out := filepath.Join(d.chan_(), chanOut)
	if err := os.WriteFile(out, []byte(outUnstarted), 0o600); err != nil {
		return err
	}
	return os.Chown(out, sandboxUID, sandboxGID)
}

// layout is what the rootfs and the spec need from the backend.
type layout struct {
	binds    []string          // host dirs bound read-only at the same path
	symlinks map[string]string // top-level symlinks, e.g. lib -> usr/lib
	etcDir   string            // generated /etc
}

// makeRootfs creates the mount points and symlinks of the read-only root.
func makeRootfs(root string, lay *layout, mounts []api.Mount) error {
	dirs := []string{"proc", "dev", "sys", "etc", "work", "tmp", "run/pybox"}
	for _, b := range lay.binds {
		dirs = append(dirs, strings.TrimPrefix(b, "/"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	for name, target := range lay.symlinks {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			return err
		}
	}
	for _, m := range mounts {
		fi, err := os.Stat(m.Host)
		if err != nil {
			return &api.InputError{Field: "mounts", Msg: err.Error()}
		}
		dst := filepath.Join(root, filepath.Clean("/"+m.Guest))
		if fi.IsDir() {
			err = os.MkdirAll(dst, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("mount point %s: %w", m.Guest, err)
		}
	}
	return nil
}

// specInput is everything the OCI config depends on.
type specInput struct {
	args   []string
	env    []string
	disk   int64
	pids   int
	lay    *layout
	extra  string // interpreter prefix to bind, if outside /usr
	mounts []api.Mount
	d      *runDir
}

// makeSpec builds the OCI runtime config of one run.
func makeSpec(in specInput) *specs.Spec {
	ro := []string{"rbind", "ro", "nosuid", "nodev"}
	rw := []string{"rbind", "rw", "nosuid", "nodev"}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		// runsc always mounts something at /sys (its own sysfs, synthetic
		// but describing CPUs and memory); native has no /sys at all. An
		// empty read-only tmpfs with mode 0 shows nothing, not even a
		// listing: the code gets EACCES.
		{Destination: "/sys", Type: "tmpfs", Source: "none", Options: []string{"ro", "nosuid", "nodev", "noexec", "mode=0"}},
		// The minimal /dev (see devNodes); it must come before /dev/shm.
		{Destination: "/dev", Type: "bind", Source: in.d.dev(), Options: []string{"rbind", "rw", "nosuid", "noexec"}},
	}
	binds := append([]string{}, in.lay.binds...)
	if in.extra != "" {
		binds = append(binds, in.extra)
	}
	for _, b := range binds {
		ms = append(ms, specs.Mount{Destination: b, Type: "bind", Source: b, Options: ro})
	}
	ms = append(ms,
		specs.Mount{Destination: "/etc", Type: "bind", Source: in.lay.etcDir, Options: ro},
		specs.Mount{Destination: guestWork, Type: "bind", Source: in.d.work(), Options: rw},
		specs.Mount{Destination: guestTmp, Type: "bind", Source: in.d.tmp(), Options: rw},
		// gVisor's tmpfs ignores size=, so /dev/shm is a capped host tmpfs.
		specs.Mount{Destination: "/dev/shm", Type: "bind", Source: in.d.shm(), Options: []string{"rbind", "rw", "nosuid", "nodev", "noexec"}},
		specs.Mount{Destination: guestChan, Type: "bind", Source: in.d.chan_(), Options: rw},
	)
	for _, m := range in.mounts {
		o := ro
		if m.RW {
			o = rw
		}
		ms = append(ms, specs.Mount{Destination: filepath.Clean(m.Guest), Type: "bind", Source: m.Host, Options: o})
	}
	var none []string
	rl := func(typ string, v uint64) specs.POSIXRlimit { return specs.POSIXRlimit{Type: typ, Hard: v, Soft: v} }
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: sandboxUID, GID: sandboxGID},
			Args: in.args,
			Env:  in.env,
			Cwd:  guestWork,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: none, Effective: none, Permitted: none, Inheritable: none, Ambient: none,
			},
			Rlimits: []specs.POSIXRlimit{
				rl("RLIMIT_CORE", 0),
				rl("RLIMIT_NPROC", uint64(in.pids)),
				rl("RLIMIT_NOFILE", 1024),
				rl("RLIMIT_FSIZE", uint64(in.disk)),
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: hostname,
		Mounts:   ms,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
		},
	}
}

// namespaces are the namespaces the spec asks for (implemented by the
// sentry, which itself runs in new host namespaces).
var namespaces = []string{"pid", "network", "ipc", "uts", "mount"}

// cleanupStale removes run directories under dir left by pybox processes
// that died mid-run: "<pid>-…" entries whose pid is gone. Their mounts are
// detached first.
func cleanupStale(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var stale []string
	for _, e := range ents {
		if staleName(e.Name()) {
			stale = append(stale, filepath.Join(dir, e.Name()))
		}
	}
	if len(stale) == 0 {
		return nil
	}
	mps, err := mountPoints()
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range stale {
		d := &runDir{path: s}
		for _, mp := range mps {
			if strings.HasPrefix(mp, s+"/") {
				d.mounts = append(d.mounts, mp)
			}
		}
		errs = append(errs, d.remove())
	}
	return errors.Join(errs...)
}

// staleName reports whether name is "<pid>-…" for a pid that is neither
// this process nor alive.
func staleName(name string) bool {
	s, _, ok := strings.Cut(name, "-")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return unix.Kill(pid, 0) == unix.ESRCH
}

// mountPoints lists this mount namespace's mount points, shortest first
// (so remove, which goes backwards, unmounts the deepest first).
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			mps = append(mps, unescapeMount(fields[4]))
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) < len(mps[j]) })
	return mps, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
