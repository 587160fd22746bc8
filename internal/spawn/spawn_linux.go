package spawn

import (
	"sync"
	"syscall"

	"github.com/pybox-dev/pybox/internal/runner/codecache"
)

// CloneFlags are the namespaces every init starts in; it makes the rest
// of its sandbox's (InitUnshares) itself, first thing.
const CloneFlags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWCGROUP

// InitUnshares are the namespaces an init makes itself as it starts (on
// a thread of its own, while it builds the root; it joins them before
// anything runs in the sandbox). Made by clone, they would be made on the
// thread that starts the init: a new network namespace costs 0.5-0.9 ms
// of kernel time, which pybox run (internal/spawn/early) would spend
// before its own start.
const InitUnshares = syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS

// Options says how to start an init.
type Options struct {
	// Path is the init program.
	Path string
	// Fallback, when set, is tried when Path cannot be executed (see
	// ExecFailed).
	Fallback string
	// RunnerIn, when >= 0, becomes the init's fd 3 (a fork-server
	// template's socket) instead of a new pipe. The caller keeps it.
	RunnerIn int
	// CgroupFD, when >= 0, is a cgroup v2 directory the init starts in.
	CgroupFD int
	// Ahead asks the init to start the interpreter of a default request
	// before its config arrives (initproc's AheadConfig); the PassEnv
	// variables of this process go into its environment for that. The
	// parent must not send it a config that AheadConfig does not match.
	Ahead bool
}

// Init is a started init and the parent's ends of its channels: raw
// descriptors, close-on-exec and non-blocking (ready for os.NewFile), that
// the caller owns; -1 for none.
type Init struct {
	// Pid is the init's process id; the caller reaps it.
	Pid int
	// Path is the program that runs (Options.Path or its Fallback).
	Path string
	// Stdout and Stderr read what the interpreter writes.
	Stdout, Stderr int
	// RunnerIn writes to the runner (-1 when Options.RunnerIn was given);
	// RunnerOut reads its frames.
	RunnerIn, RunnerOut int
	// Control is init's control socket.
	Control int
	// Ahead is Options.Ahead.
	Ahead bool
	// Started is when the clone was made, in Unix nanoseconds (for
	// traces; microsecond resolution).
	Started int64
	// InCgroup says the init started in Options.CgroupFD's group.
	InCgroup bool
	// Code, when set, is the runner code already written to RunnerIn as
	// its first frame (codecache.PreSend, by Early's prepare).
	Code *codecache.Source
}

// Close closes the parent's ends of the channels.
func (in *Init) Close() {
	for _, fd := range []int{in.Stdout, in.Stderr, in.RunnerIn, in.RunnerOut, in.Control} {
		if fd >= 0 {
			syscall.Close(fd)
		}
	}
}

// Error is a failed Start: what failed, and the errno.
type Error struct {
	Op   string
	Path string
	Err  syscall.Errno
}

func (e *Error) Error() string {
	if e.Path != "" {
		return e.Op + " " + e.Path + ": " + e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Start starts an init: a new process in new user (root mapped to
// HostUIDBase, SandboxUID to HostUIDBase+SandboxUID), pid, mount and
// cgroup namespaces (it makes the rest itself, InitUnshares), in its own
// session, killed when its parent thread ends, with GOMAXPROCS=1 as its
// whole environment (and the PassEnv variables for Options.Ahead) and
// only the descriptors above (stdin
// /dev/null). On error nothing is left open or running.
//
// It uses package syscall only, so that package early can call it from a
// package initialiser before os is initialised.
func Start(o Options) (in *Init, err error) {
	in = &Init{Pid: -1, Stdout: -1, Stderr: -1, RunnerIn: -1, RunnerOut: -1, Control: -1}
	var child, parent []int // the init's ends (closed once it started), ours
	defer func() {
		for _, fd := range child {
			syscall.Close(fd)
		}
		if err != nil {
			in.Close()
			in = nil
		}
	}()
	fail := func(op string, e error) (*Init, error) {
		errno, _ := e.(syscall.Errno)
		return in, &Error{Op: op, Err: errno}
	}
	null, e := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if e != nil {
		return fail("open /dev/null", e)
	}
	child = append(child, null)
	// pipe makes a pipe; ours is its read end if read, else its write end.
	pipe := func(ours *int, read bool) (int, error) {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
			return -1, err
		}
		if !read {
			p[0], p[1] = p[1], p[0]
		}
		*ours = p[0]
		parent = append(parent, p[0])
		child = append(child, p[1])
		return p[1], nil
	}
	outW, e := pipe(&in.Stdout, true)
	if e != nil {
		return fail("pipe", e)
	}
	errW, e := pipe(&in.Stderr, true)
	if e != nil {
		return fail("pipe", e)
	}
	rinR := o.RunnerIn
	if rinR < 0 {
		if rinR, e = pipe(&in.RunnerIn, false); e != nil {
			return fail("pipe", e)
		}
	}
	routW, e := pipe(&in.RunnerOut, true)
	if e != nil {
		return fail("pipe", e)
	}
	sp, e := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if e != nil {
		return fail("socketpair", e)
	}
	in.Control = sp[0]
	parent = append(parent, sp[0])
	child = append(child, sp[1])

	idmap := []syscall.SysProcIDMap{
		{ContainerID: 0, HostID: HostUIDBase, Size: 1},
		{ContainerID: SandboxUID, HostID: HostUIDBase + SandboxUID, Size: 1},
	}
	attr := &syscall.SysProcAttr{
		Cloneflags:                 CloneFlags,
		UidMappings:                idmap,
		GidMappings:                idmap,
		GidMappingsEnableSetgroups: true,
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		Pdeathsig:                  syscall.SIGKILL,
		// Its own session: no controlling terminal, so a Ctrl-C typed
		// at pybox (repl, run) never reaches the sandbox directly.
		Setsid: true,
	}
	if o.CgroupFD >= 0 {
		attr.UseCgroupFD = true
		attr.CgroupFD = o.CgroupFD
		in.InCgroup = true
	}
	// One P from the init's start (GOMAXPROCS=1 is the whole host
	// environment it gets): its Go runtime then starts with fewer page
	// faults, and it never stops the world to give a P up (see
	// RATIONALE.md, "Why does an init make its network...").
	argv, env := []string{Arg0}, []string{"GOMAXPROCS=1"}
	if o.Ahead {
		argv = append(argv, ArgAhead)
		for _, k := range PassEnv {
			if v, ok := syscall.Getenv(k); ok {
				env = append(env, k+"="+v)
			}
		}
		in.Ahead = true
	}
	pa := &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{uintptr(null), uintptr(outW), uintptr(errW), uintptr(rinR), uintptr(routW), uintptr(sp[1])},
		Sys:   attr,
	}
	in.Path = o.Path
	in.Started = unixNano()
	in.Pid, e = syscall.ForkExec(o.Path, argv, pa)
	if e != nil && o.Fallback != "" && ExecFailed(e) {
		in.Path = o.Fallback
		in.Started = unixNano()
		in.Pid, e = syscall.ForkExec(o.Fallback, argv, pa)
	}
	if e != nil {
		in.Pid = -1
		errno, _ := e.(syscall.Errno)
		return in, &Error{Op: "fork/exec", Path: in.Path, Err: errno}
	}
	// Ours become non-blocking only now: the init's ends of the pipes
	// are other open file descriptions and stay blocking.
	for _, fd := range parent {
		_ = syscall.SetNonblock(fd, true)
	}
	return in, nil
}

// unixNano is the time of day in nanoseconds. Package time is not
// imported: package early (which imports this one) is then initialised
// right after syscall, before time and the packages initialised after it
// (see early's TestInitialisedEarly).
func unixNano() int64 {
	var tv syscall.Timeval
	_ = syscall.Gettimeofday(&tv)
	return tv.Nano()
}

// ExecFailed says whether a failed Start is the init program's exec
// failing (not, say, clone running out of resources).
func ExecFailed(err error) bool {
	var errno syscall.Errno
	switch e := err.(type) {
	case syscall.Errno:
		errno = e
	case *Error:
		errno = e.Err
	default:
		return false
	}
	switch errno {
	case syscall.ENOENT, syscall.EACCES, syscall.EPERM, syscall.ENOEXEC, syscall.ETXTBSY:
		return true
	}
	return false
}

// CacheDir is where the native backend keeps files between processes
// (compiled runner code, the init program): $PYBOX_CACHE_DIR, else
// /var/cache/pybox for root, else the user's cache dir ($XDG_CACHE_HOME,
// else $HOME/.cache, as os.UserCacheDir); "" if none.
func CacheDir() string {
	if d, _ := syscall.Getenv("PYBOX_CACHE_DIR"); d != "" {
		return d
	}
	if syscall.Geteuid() == 0 {
		return "/var/cache/pybox"
	}
	if d, _ := syscall.Getenv("XDG_CACHE_HOME"); d != "" {
		if d[0] != '/' {
			return ""
		}
		return d + "/pybox"
	}
	if h, _ := syscall.Getenv("HOME"); h != "" {
		return h + "/.cache/pybox"
	}
	return ""
}

var early struct {
	sync.Mutex
	done bool // Early ran, or TakeEarly: no Early from now on
	in   *Init
}

// Early starts an init of the program at path (with Options.Ahead set to
// ahead), for TakeEarly, and says whether it did. Only the first call,
// before any TakeEarly, does anything. prepare, when set, is then called
// with the init; when it returns false the init is killed and reaped, and
// Early reports none.
//
// It starts it on the calling thread, before returning: started from
// another thread while this one went on, the clone turned the caller's
// writes to its memory into copy-on-write faults that flush the other
// CPU's TLB (on a 2-core VM the whole run was 0.3 ms slower and used more
// CPU); on the caller's thread they are only faults that find the page
// already its own, since the init has executed by then.
func Early(path string, ahead bool, prepare func(*Init) bool) bool {
	early.Lock()
	defer early.Unlock()
	if early.done {
		return false
	}
	early.done = true
	early.in, _ = Start(Options{Path: path, RunnerIn: -1, CgroupFD: -1, Ahead: ahead})
	if early.in != nil && prepare != nil && !prepare(early.in) {
		Discard(early.in)
		early.in = nil
	}
	return early.in != nil
}

// Discard kills an init nobody will use and reaps it.
func Discard(in *Init) {
	in.Close()
	_ = syscall.Kill(in.Pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(in.Pid, &ws, 0, nil); err != syscall.EINTR {
			return
		}
	}
}

// TakeEarly returns the init Early started, once; nil when there is none,
// when it failed to start, when it has ended since (it is then reaped), or
// when it was already taken.
func TakeEarly() *Init {
	early.Lock()
	defer early.Unlock()
	early.done = true
	in := early.in
	early.in = nil
	if in != nil {
		var ws syscall.WaitStatus
		if pid, _ := syscall.Wait4(in.Pid, &ws, syscall.WNOHANG, nil); pid == in.Pid {
			in.Close()
			return nil
		}
	}
	return in
}
