package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/landlock"
	"github.com/pybox-dev/pybox/internal/seccomp/load"
	"github.com/pybox-dev/pybox/internal/spawn"
)

// newRoot is where the sandbox's root tmpfs is assembled before pivot_root.
// Mounting over /tmp only affects the sandbox's private mount namespace.
const newRoot = "/tmp"

// maxConfig caps the config frame (input files are at most 64 MiB, base64).
const maxConfig = 128 << 20

// state is what the steps share.
type state struct {
	cfg  Config
	ctrl *os.File
	// wmu serialises frames written to ctrl (the supervisor and, in a
	// session, the file server both write).
	wmu     sync.Mutex
	userFDs []int // the user's mount sources (detached trees or O_PATH fds), by index
	ready   Message
	pid     int
	// ahead: this init was started ahead (spawn.ArgAhead; speculate).
	ahead bool
	// nsDone hands over the namespaces startNamespaces made, once:
	// nsJoined says joinNamespaces took them.
	nsDone   chan namespaceFDs
	nsJoined bool
	// execAt is when the interpreter was started (MonoNow), for traces.
	execAt int64
}

// step is one named containment step.
type step struct {
	name string
	fn   func(*state) error
}

// preConfig are the steps that need no config, run before it is read;
// they change nothing the later steps' order depends on (mount-root, which
// needs none either, must come after open-mounts when init opens the
// user's mount sources by path: it mounts over /tmp, where one may be;
// speculate runs it ahead and undoes it then).
var preConfig = []step{
	{"namespaces", startNamespaces},
	{"mount-private", mountPrivate},
	{"json", warmJSON},
}

// warmJSON decodes a config and encodes a message once, so that the real
// ones do not pay for encoding/json's first look at their types (~0.2 ms).
// It is a warm-up only: its result is thrown away, errors included.
func warmJSON(*state) error {
	var c Config
	_ = json.Unmarshal(warmConfig, &c)
	_, _ = json.Marshal(&Message{Type: "ready", Steps: []string{"x"}, Landlock: []string{"x"}})
	return nil
}

var warmConfig = []byte(`{"argv":["x"],"env":["x"],"binds":["/x"],"symlinks":{"x":"y"},"etc_files":["/x"],` +
	`"mounts":[{"host":"/x","guest":"/y"}],"files":[{"name":"x","data":"eA=="}],"disk_bytes":1,` +
	`"collect_files":true,"files_limit":1,"seccomp_filter":"eA==","seccomp_summary":"x","trace":false}`)

// steps run in order; the first failure is reported to the parent with the
// step's name and init exits 255.
var steps = []step{
	{"open-mounts", openUserMounts},
	{"mount-root", mountRoot},
	{"mount-runtime", mountRuntime},
	{"mount-etc", mountEtc},
	{"mount-dev", mountDev},
	{"mount-proc", mountProc},
	{"mount-work", mountWork},
	{"mount-user", mountUser},
	{"write-files", writeFiles},
	{"root-readonly", rootReadOnly},
	{"pivot-root", pivotRoot},
	{"join-namespaces", joinNamespaces},
	{"rlimits", setRlimits},
	{"capabilities", dropBoundingCaps},
	{"landlock", applyLandlock},
	{"seccomp", applySeccomp},
	{"cgroup", awaitCgroup},
	{"exec", startInterpreter},
}

func run() {
	runAt := MonoNow()
	runtime.LockOSThread()
	// Init runs on one P (pybox starts it with GOMAXPROCS=1): sequential
	// but for startNamespaces' thread, whose work is system calls.
	// Nothing but fds 0-4 may reach the interpreter: every other fd this
	// process inherited (from whatever started pybox) and the control
	// socket become close-on-exec.
	if err := unix.CloseRange(FDControl, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		os.Exit(255)
	}
	ctrl := os.NewFile(FDControl, "control")
	s := &state{ctrl: ctrl, ahead: len(os.Args) > 1 && os.Args[1] == spawn.ArgAhead}
	// What needs no config is done before reading it: an init that pybox
	// run started early (internal/spawn/early) waits for it, often ~1 ms.
	preTimes := make([]time.Duration, len(preConfig))
	for i, st := range preConfig {
		if st.name == "json" && s.ahead {
			// The config of an init started ahead is usually read
			// once the interpreter runs, off the run's path.
			continue
		}
		t0 := time.Now()
		if err := st.fn(s); err != nil {
			fail(ctrl, st.name, err)
		}
		preTimes[i] = time.Since(t0)
	}
	waitAt := MonoNow()
	sp := speculate(s)
	if !sp.read {
		if err := ReadFrame(ctrl, maxConfig, &s.cfg); err != nil {
			fail(ctrl, "config", err)
		}
		sp.readAt = MonoNow()
	}
	if s.cfg.Trace {
		for i, st := range preConfig {
			s.ready.Steps = append(s.ready.Steps, fmt.Sprintf("%s=%d", st.name, preTimes[i].Microseconds()))
		}
		s.ready.Steps = append(s.ready.Steps, fmt.Sprintf("config-wait-at=%d config-read-at=%d", waitAt/1e3, sp.readAt/1e3))
		if sp.outcome != "" {
			s.ready.Steps = append(s.ready.Steps, "layout="+sp.outcome)
			s.ready.Steps = append(s.ready.Steps, sp.steps...)
		}
	}
	for _, st := range steps {
		if sp.done[st.name] {
			continue
		}
		t0 := time.Now()
		if err := st.fn(s); err != nil {
			fail(ctrl, st.name, err)
		}
		if s.cfg.Trace {
			s.ready.Steps = append(s.ready.Steps, fmt.Sprintf("%s=%d", st.name, time.Since(t0).Microseconds()))
		}
	}
	if s.cfg.Trace {
		// When this process's Go code began and when it started the
		// interpreter (pybox's trace turns them into a timeline).
		s.ready.Steps = append(s.ready.Steps, fmt.Sprintf("run-at=%d exec-at=%d", runAt/1e3, s.execAt/1e3))
	}
	s.ready.Type = "ready"
	if err := WriteFrame(ctrl, &s.ready); err != nil {
		os.Exit(255)
	}
	// Only the runner needs the protocol pipes now.
	unix.Close(FDRunnerIn)
	unix.Close(FDRunnerOut)
	if s.cfg.Session {
		go serveFiles(s)
	}
	supervise(s)
	os.Exit(0)
}

// layoutSteps are the steps that depend on nothing in the config but its
// Layout: an init whose config has not arrived yet runs them ahead
// (speculate).
var layoutSteps = map[string]bool{
	"mount-root": true, "mount-runtime": true, "mount-etc": true,
	"mount-dev": true, "mount-proc": true, "mount-work": true,
}

// speculation is what speculate did.
type speculation struct {
	// done are the steps run ahead that stand (the config turned out to
	// be what they assumed): run does not run them again.
	done map[string]bool
	// read: speculate read the config (into state.cfg).
	read bool
	// readAt is when the config was read (CLOCK_MONOTONIC, ns).
	readAt int64
	// outcome is "interpreter" (every step ran ahead, up to the
	// interpreter's start, for a config that matched), "kept" (the
	// layout's steps ran ahead for a config with that layout), "undone"
	// (they did not match, or a step failed: the root was detached and
	// is built again from the config) or "" (nothing was run ahead: the
	// config was there).
	outcome string
	// steps are "ahead:name=µs" per step run ahead, for the trace.
	steps []string
}

// speculate builds the sandbox's root while the config is on its way. An
// init that pybox run started early (internal/spawn/early) waits for its
// config for about 1 ms; the root's mounts, which take 1-2 ms, depend only
// on the layout, which this host's (HostLayout, default disk size) almost
// always is. Before each step it looks for the config; once it is there
// and has the same layout, the steps done are kept and the rest run in
// order (user mounts included when their sources come as detached trees,
// Config.MountTrees). Otherwise (--disk; an interpreter outside /usr;
// user mounts whose sources init opens by path, which the root over /tmp
// could hide; a step that failed) the root is detached, which undoes all
// of it, and run builds it from the config as usual, opening the user's
// mount sources first.
//
// An init started ahead (spawn.ArgAhead: pybox run with a default
// request's command line) goes on past the layout with the whole of
// AheadConfig, through pivot_root (after which there is no way back) and
// every other step, to the interpreter's start, unless the config comes
// first; then it keeps that interpreter only if the config matches
// AheadConfig (AheadMatches), and fails the run otherwise.
func speculate(s *state) (a speculation) {
	if configWaiting() {
		return a
	}
	// An init started ahead goes on past the layout: it starts the
	// interpreter of a default request (AheadConfig) unless the config
	// comes before pivot_root, after which there is no way back.
	var full *Config
	if s.ahead {
		if c, err := AheadConfig(); err == nil {
			full = &c
		}
	}
	var want Layout
	if full != nil {
		want = full.Layout
	} else {
		want = HostLayout(api.DefaultDisk)
	}
	if full != nil {
		s.cfg = *full
	} else {
		s.cfg.Layout = want
	}
	a.done = map[string]bool{}
	var err error
	committed := false
	for _, st := range steps {
		if st.name == "open-mounts" {
			continue
		}
		if !layoutSteps[st.name] && full == nil {
			break
		}
		if !committed && configWaiting() {
			break
		}
		if st.name == "root-readonly" {
			committed = true
		}
		t0 := time.Now()
		if err = st.fn(s); err != nil {
			if committed {
				fail(s.ctrl, st.name, err)
			}
			break
		}
		a.done[st.name] = true
		a.steps = append(a.steps, fmt.Sprintf("ahead:%s=%d", st.name, time.Since(t0).Microseconds()))
	}
	if err == nil {
		s.cfg = Config{}
		if err := ReadFrame(s.ctrl, maxConfig, &s.cfg); err != nil {
			fail(s.ctrl, "config", err)
		}
		a.read, a.readAt = true, MonoNow()
	}
	if committed {
		// The interpreter runs: it is this config's only if the config
		// is a default request's, which the parent promised.
		if !s.cfg.AheadMatches(full) {
			fail(s.ctrl, "ahead", errors.New("the config is not a default request's, whose interpreter this init started ahead"))
		}
		a.outcome = "interpreter"
		return a
	}
	// Short of pivot_root, only the layout's steps stand (an init started
	// ahead ran mount-user and write-files for a config with neither).
	for name := range a.done {
		if !layoutSteps[name] {
			delete(a.done, name)
		}
	}
	if err == nil && s.cfg.Layout.Equal(want) && (len(s.cfg.Mounts) == 0 || s.cfg.MountTrees) {
		if len(a.done) > 0 {
			a.outcome = "kept"
		}
		return a
	}
	a.outcome, a.done = "undone", nil
	if err := unix.Unmount(newRoot, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		fail(s.ctrl, "undo-layout", err)
	}
	if !a.read {
		// A step failed: run reads the config and builds the root
		// again, reporting the failure if it happens again.
		s.cfg = Config{}
	}
	return a
}

// configWaiting reports whether the config (or anything) can be read from
// the control socket without blocking.
func configWaiting() bool {
	fds := []unix.PollFd{{Fd: FDControl, Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0
	}
}

func fail(ctrl *os.File, stepName string, err error) {
	_ = WriteFrame(ctrl, &Message{Type: "error", Step: stepName, Error: err.Error()})
	os.Exit(255)
}

// openUserMounts gets the user's mount sources: the detached copies the
// parent sends right after the config (Config.MountTrees), or, without
// them, the sources opened here, as an unprivileged host uid.
func openUserMounts(s *state) error {
	if s.cfg.MountTrees {
		return receiveTrees(s)
	}
	for _, m := range s.cfg.Mounts {
		fd, err := unix.Open(m.Host, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err == unix.EACCES {
			// Init is an unprivileged uid on the host (spawn's id map):
			// a source below a directory only root may search (/root, a
			// 0700 temporary directory) is out of its reach.
			return fmt.Errorf("mount source %s: %w: the sandbox's init runs as an unprivileged host uid (%d) and cannot reach it on this kernel (no open_tree); every directory above it must be searchable by others (chmod o+x), or mount a copy from elsewhere", m.Host, err, spawn.HostUIDBase)
		}
		if err != nil {
			return fmt.Errorf("mount source %s: %w", m.Host, err)
		}
		s.userFDs = append(s.userFDs, fd)
	}
	return nil
}

// receiveTrees reads the byte that carries the mount sources' detached
// copies, one per mount, in order.
func receiveTrees(s *state) error {
	n := len(s.cfg.Mounts)
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*n))
	var oobn int
	var err error
	for {
		_, oobn, _, _, err = unix.Recvmsg(FDControl, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("receive mount sources: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return fmt.Errorf("receive mount sources: %w", err)
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fmt.Errorf("receive mount sources: %w", err)
		}
		s.userFDs = append(s.userFDs, fds...)
	}
	if len(s.userFDs) != n {
		return fmt.Errorf("receive mount sources: %d for %d mounts", len(s.userFDs), n)
	}
	return nil
}

// namespaceFDs are the namespaces a thread of the init's made for it
// (startNamespaces), or why it could not.
type namespaceFDs struct {
	fds []int // net, ipc, uts
	err error
}

// startNamespaces has a thread of its own make the namespaces the init
// was not cloned in (spawn.InitUnshares: network, ipc, uts), with the
// hostname set and loopback up, while this thread builds the root: a
// network namespace is 0.5-0.8 ms of kernel time. joinNamespaces moves
// this thread into them before anything runs in the sandbox. Namespaces
// are per thread: the other one ends with its goroutine (locked, never
// unlocked), and nothing of the init's talks to anything outside it.
func startNamespaces(s *state) error {
	s.nsDone = make(chan namespaceFDs, 1)
	go func() {
		runtime.LockOSThread()
		var r namespaceFDs
		defer func() { s.nsDone <- r }()
		if r.err = unix.Unshare(spawn.InitUnshares); r.err != nil {
			r.err = fmt.Errorf("unshare: %w", r.err)
			return
		}
		if r.err = setHostname(s); r.err != nil {
			r.err = fmt.Errorf("hostname: %w", r.err)
			return
		}
		if r.err = loopbackUp(s); r.err != nil {
			r.err = fmt.Errorf("loopback: %w", r.err)
			return
		}
		for _, ns := range []string{"net", "ipc", "uts"} {
			fd, err := unix.Open("/proc/thread-self/ns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				r.err = fmt.Errorf("open %s namespace: %w", ns, err)
				return
			}
			r.fds = append(r.fds, fd)
		}
	}()
	return nil
}

// joinNamespaces moves this thread, from which the interpreter is
// started, into the namespaces startNamespaces made.
func joinNamespaces(s *state) error {
	if s.nsJoined {
		return nil
	}
	s.nsJoined = true
	r := <-s.nsDone
	defer func() {
		for _, fd := range r.fds {
			unix.Close(fd)
		}
	}()
	if r.err != nil {
		return r.err
	}
	for i, t := range []int{unix.CLONE_NEWNET, unix.CLONE_NEWIPC, unix.CLONE_NEWUTS} {
		if err := unix.Setns(r.fds[i], t); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
	}
	return nil
}

func mountPrivate(*state) error {
	// Nothing we mount may propagate back to the host.
	return unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, "")
}

func mountRoot(*state) error {
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,nr_inodes=4096,mode=0755"); err != nil {
		return err
	}
	for _, d := range []string{"etc", "dev", "proc", "work", "tmp", "run"} {
		if err := os.Mkdir(filepath.Join(newRoot, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// bindRO bind-mounts src onto dst (which must exist) read-only, nosuid,
// nodev, keeping the flags the kernel locks in a user namespace.
func bindRO(src, dst string, rw bool) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	return remountRO(dst, rw)
}

// remountRO makes the mount at dst read-only (unless rw), nosuid and
// nodev, keeping the flags the kernel locks in a user namespace.
func remountRO(dst string, rw bool) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV)
	if !rw {
		flags |= unix.MS_RDONLY
	}
	for _, f := range []struct{ st, ms int64 }{
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
		{unix.ST_RDONLY, unix.MS_RDONLY},
	} {
		if st.Flags&f.st != 0 {
			flags |= uintptr(f.ms)
		}
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", dst, err)
	}
	return nil
}

// mkTarget creates the mount point for src at dst: a directory or an
// empty file, with parents.
func mkTarget(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if fi.IsDir() {
		if err := os.Mkdir(dst, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		return nil
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func mountRuntime(s *state) error {
	for _, b := range s.cfg.Binds {
		dst := filepath.Join(newRoot, b)
		if err := mkTarget(b, dst); err != nil {
			return err
		}
		if err := bindRO(b, dst, false); err != nil {
			return err
		}
	}
	for name, target := range s.cfg.Symlinks {
		if err := os.Symlink(target, filepath.Join(newRoot, name)); err != nil {
			return err
		}
	}
	return nil
}

const passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
	"sandbox:x:1000:1000:pybox sandbox:/work:/bin/sh\n" +
	"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"

const group = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"

func mountEtc(s *state) error {
	etc := filepath.Join(newRoot, "etc")
	gen := map[string]string{
		"passwd":        passwd,
		"group":         group,
		"hostname":      Hostname + "\n",
		"hosts":         "127.0.0.1\tlocalhost " + Hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"resolv.conf":   "",
		"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
	}
	for name, content := range gen {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, f := range s.cfg.EtcFiles {
		if _, ok := gen[path.Base(f)]; ok {
			continue
		}
		dst := filepath.Join(newRoot, f)
		if err := mkTarget(f, dst); err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return err
		}
		if err := bindRO(f, dst, false); err != nil {
			return err
		}
	}
	return nil
}

func mountDev(s *state) error {
	dev := filepath.Join(newRoot, "dev")
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755"); err != nil {
		return err
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		dst := filepath.Join(dev, d)
		if err := os.WriteFile(dst, nil, 0o666); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+d, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", d, err)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		fmt.Sprintf("size=%d,mode=1777", s.cfg.DiskBytes)); err != nil {
		return err
	}
	return unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755")
}

func mountProc(*state) error {
	// Must happen before the host's /proc is detached: the kernel only
	// allows a new proc mount while a fully visible one exists.
	return unix.Mount("proc", filepath.Join(newRoot, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

func mountWork(s *state) error {
	opts := fmt.Sprintf("size=%d,mode=0755,uid=%d,gid=%d", s.cfg.DiskBytes, SandboxUID, SandboxGID)
	if err := unix.Mount("tmpfs", filepath.Join(newRoot, "work"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return err
	}
	return unix.Mount("tmpfs", filepath.Join(newRoot, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV,
		fmt.Sprintf("size=%d,mode=1777", s.cfg.DiskBytes))
}

func mountUser(s *state) error {
	for i, m := range s.cfg.Mounts {
		src := fmt.Sprintf("/proc/self/fd/%d", s.userFDs[i])
		dst := filepath.Join(newRoot, m.Guest)
		if err := mkTarget(src, dst); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Guest, err)
		}
		var err error
		if s.cfg.MountTrees {
			err = moveTree(s.userFDs[i], dst, m.RW)
		} else {
			err = bindRO(src, dst, m.RW)
		}
		if err != nil {
			return fmt.Errorf("mount %s: %w", m.Host, err)
		}
		unix.Close(s.userFDs[i])
	}
	return nil
}

// moveTree moves a detached mount tree (open_tree OPEN_TREE_CLONE) onto
// dst (which must exist), then makes it read-only (unless rw), nosuid and
// nodev, as bindRO does.
func moveTree(fd int, dst string, rw bool) error {
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return remountRO(dst, rw)
}

func writeFiles(s *state) error {
	root, err := os.OpenRoot(filepath.Join(newRoot, "work"))
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range s.cfg.Files {
		if dir := path.Dir(f.Name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
			if err := chownTree(root, dir); err != nil {
				return err
			}
		}
		mode := fs.FileMode(f.Mode)
		if mode == 0 {
			mode = 0o644
		}
		fh, err := root.OpenFile(f.Name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		_, err = fh.Write(f.Data)
		if err == nil {
			err = fh.Chown(SandboxUID, SandboxGID)
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	s.cfg.Files = nil // let the GC have the bytes
	return nil
}

func chownTree(root *os.Root, dir string) error {
	for d := dir; d != "." && d != "/"; d = path.Dir(d) {
		if err := root.Lchown(d, SandboxUID, SandboxGID); err != nil {
			return err
		}
	}
	return nil
}

func rootReadOnly(*state) error {
	return unix.Mount("", newRoot, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "size=4m,nr_inodes=4096,mode=0755")
}

func pivotRoot(*state) error {
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root under the new one; the
	// detach then removes every host mount from view (runc does the same).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	// Mount namespaces made later (by a fork server's children) must
	// not propagate mounts back here.
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	return unix.Chdir("/work")
}

func setHostname(*state) error { return unix.Sethostname([]byte(Hostname)) }

func loopbackUp(*state) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func setRlimits(s *state) error {
	for _, l := range []struct {
		res int
		val uint64
	}{
		{unix.RLIMIT_CORE, 0},
		{unix.RLIMIT_NOFILE, 1024},
		// A file larger than the disk cap cannot exist anyway; the limit
		// turns a runaway write into EFBIG instead of filling tmpfs.
		{unix.RLIMIT_FSIZE, uint64(s.cfg.DiskBytes)},
		{unix.RLIMIT_MSGQUEUE, 0},
	} {
		if err := unix.Setrlimit(l.res, &unix.Rlimit{Cur: l.val, Max: l.val}); err != nil {
			return fmt.Errorf("rlimit %d: %w", l.res, err)
		}
	}
	return nil
}

// dropBoundingCaps empties the capability bounding set and sets
// no_new_privs, so nothing executed later can ever regain a capability.
//
// Both are per-thread attributes. Init's main goroutine is locked to its OS
// thread and forks the interpreter from it, so the interpreter inherits
// them; this works in cgo binaries too, where syscall.AllThreadsSyscall is
// unavailable. Init keeps its own effective capabilities (needed to switch
// the interpreter to the sandbox uid and to reap and kill); the interpreter
// gets none: it runs as a non-zero uid.
func dropBoundingCaps(s *state) error {
	if s.cfg.Template {
		// The template must keep its capabilities to build its
		// children's sandboxes; the children drop the bounding set.
		return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	}
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return nil
}

func applyLandlock(s *state) error {
	if s.cfg.Template {
		// Landlock would forbid the template's per-child mounts; each
		// child restricts itself after them.
		return nil
	}
	// The whole root is pybox's own construction (a read-only tmpfs of
	// read-only binds, /proc, /dev), so all of it may be read; writes are
	// allowed only below the writable directories.
	ro := []string{"/"}
	rw := []string{"/work", "/tmp", "/dev/shm"}
	for _, m := range s.cfg.Mounts {
		if m.RW {
			rw = append(rw, m.Guest)
		} else {
			ro = append(ro, m.Guest)
		}
	}
	info, err := landlock.Restrict(landlock.Config{
		RO:         ro,
		RW:         rw,
		RWFiles:    []string{"/dev/null", "/dev/zero", "/dev/full"},
		DenyNet:    true,
		Scope:      true,
		ThisThread: true,
		BestEffort: s.cfg.BestEffort,
	})
	if err != nil {
		return err
	}
	s.ready.LandlockABI = info.ABI
	s.ready.Landlock = info.Enforced
	for _, m := range info.Missing {
		s.ready.Missing = append(s.ready.Missing, "landlock "+m)
	}
	return nil
}

func applySeccomp(s *state) error {
	err := errors.New("seccomp: the parent sent no filter")
	if len(s.cfg.SeccompFilter) > 0 {
		err = load.Filter(s.cfg.SeccompFilter)
	}
	if err != nil {
		if s.cfg.BestEffort {
			s.ready.Missing = append(s.ready.Missing, "seccomp: "+err.Error())
			return nil
		}
		return err
	}
	s.ready.Seccomp = s.cfg.SeccompSummary
	return nil
}

// awaitCgroup waits for the parent's word that this process is in the
// run's cgroup (on cgroup v1 the parent moves it after it started, which
// can take milliseconds: the steps above overlap with that). The
// interpreter must be forked inside the cgroup, unless the parent moves
// it too (Config.LateCgroup) before it sends the exec frame.
func awaitCgroup(s *state) error {
	if s.cfg.LateCgroup {
		return nil
	}
	var m Message
	if err := ReadFrame(s.ctrl, 1<<10, &m); err != nil {
		return fmt.Errorf("wait for the cgroup: %w", err)
	}
	if m.Type != "go" {
		return fmt.Errorf("wait for the cgroup: unexpected %q", m.Type)
	}
	return nil
}

func startInterpreter(s *state) error {
	sys := &syscall.SysProcAttr{
		Setsid:     true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: SandboxUID, Gid: SandboxGID, Groups: []uint32{}},
	}
	if s.cfg.Template {
		sys.Credential = nil // uid 0 in the sandbox's user namespace
	}
	pid, err := syscall.ForkExec(s.cfg.Argv[0], s.cfg.Argv, &syscall.ProcAttr{
		Dir:   "/work",
		Env:   s.cfg.Env,
		Files: []uintptr{0, 1, 2, FDRunnerIn, FDRunnerOut},
		Sys:   sys,
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", s.cfg.Argv[0], err)
	}
	s.pid = pid
	s.execAt = MonoNow()
	return nil
}

// supervise reaps every process until the interpreter ends, then kills
// whatever it left behind (pid 1 of the namespace reaps them all), collects
// the output files and reports to the parent.
func supervise(s *state) {
	var exit Message
	exit.Type = "exit"
	for {
		var ws unix.WaitStatus
		var ru unix.Rusage
		pid, err := unix.Wait4(-1, &ws, 0, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			exit.Note = "wait: " + err.Error()
			break
		}
		if pid != s.pid {
			continue
		}
		switch {
		case ws.Exited():
			exit.ExitCode = ws.ExitStatus()
		case ws.Signaled():
			exit.ExitCode = -1
			exit.Signal = int(ws.Signal())
		}
		exit.CPUMS = (ru.Utime.Nano() + ru.Stime.Nano()) / 1e6
		exit.MaxRSS = ru.Maxrss * 1024
		break
	}
	// Kill everything else in the namespace (daemons included) before
	// touching /work, so nothing can race the collection.
	_ = unix.Kill(-1, unix.SIGKILL)
	for {
		if _, err := unix.Wait4(-1, nil, 0, nil); err == unix.ECHILD {
			break
		}
	}
	if err := s.send(&exit); err != nil {
		return
	}
	if s.cfg.CollectFiles {
		collect(s)
	}
	_ = s.send(&Message{Type: "done"})
	// The parent's pipes and control channel end now, not once this
	// process's exit has torn down its address space (which comes first
	// in an exit, and which the parent need not wait for to report).
	unix.Close(1)
	unix.Close(2)
	s.wmu.Lock()
	_ = s.ctrl.Close()
	s.wmu.Unlock()
}

// collect sends every regular file under /work, never following symlinks,
// up to the files limit.
func collect(s *state) {
	truncated := guest.Collect("/work", s.cfg.FilesLimit, func(f api.OutFile) error {
		return s.send(&Message{Type: "file", File: &f})
	})
	if truncated {
		_ = s.send(&Message{Type: "file", FilesTruncated: true})
	}
}

func (s *state) send(m *Message) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return WriteFrame(s.ctrl, m)
}

// serveFiles answers a session's file requests until the control channel
// closes. Paths are resolved inside /work with os.Root, so symlinks the
// code planted cannot lead outside it. It runs on another OS thread than
// the restricted main one, as the parent's trusted agent.
func serveFiles(s *state) {
	root, err := os.OpenRoot("/work")
	if err != nil {
		return
	}
	defer root.Close()
	for {
		var req Request
		if err := ReadFrame(s.ctrl, maxConfig, &req); err != nil {
			return
		}
		reply := Message{Type: "reply"}
		var err error
		switch req.Type {
		case "put-file":
			err = putFile(root, req.File)
		case "get-file":
			reply.File, err = getFile(root, req.Name, req.Max)
		default:
			err = fmt.Errorf("unknown request %q", req.Type)
		}
		if err != nil {
			reply.Error = err.Error()
		}
		if s.send(&reply) != nil {
			return
		}
	}
}

func putFile(root *os.Root, f *api.File) error {
	if f == nil {
		return fmt.Errorf("no file")
	}
	if dir := path.Dir(f.Name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := chownTree(root, dir); err != nil {
			return err
		}
	}
	mode := fs.FileMode(f.Mode)
	if mode == 0 {
		mode = 0o644
	}
	fh, err := root.OpenFile(f.Name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|unix.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	_, err = fh.Write(f.Data)
	if err == nil {
		err = fh.Chown(SandboxUID, SandboxGID)
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

func getFile(root *os.Root, name string, max int64) (*api.OutFile, error) {
	fh, err := root.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, over the %d byte limit", name, fi.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s grew over the %d byte limit", name, max)
	}
	return &api.OutFile{Name: name, Size: int64(len(data)), Mode: uint32(fi.Mode().Perm()), Data: data}, nil
}
