package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/cgroup"
	"github.com/pybox-dev/pybox/internal/cgroup/prime"
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/initbin"
	"github.com/pybox-dev/pybox/internal/initproc"
	"github.com/pybox-dev/pybox/internal/runner"
	"github.com/pybox-dev/pybox/internal/seccomp/prebuilt"
	"github.com/pybox-dev/pybox/internal/spawn"
)

// HostUIDBase is the host uid (and gid) that the sandbox's root maps to; the
// code itself runs as uid 1000 inside, HostUIDBase+1000 outside. Neither
// owns anything on the host.
const HostUIDBase = spawn.HostUIDBase

var namespaces = []string{"user", "pid", "mount", "network", "ipc", "uts", "cgroup"}

type nativeBackend struct {
	// fsMu guards the fork-server state.
	fsMu       sync.Mutex
	forkServer bool
	preload    []string
	servers    map[string]*forkServer
	starting   map[string]bool
	// pool holds booted one-shot sandboxes per poolKey, filling says a
	// goroutine is booting more (pool_linux.go).
	pool    map[string][]pooled
	filling map[string]bool
	// fsFailed is when a template last failed to start: no new attempt
	// for the same policy for a while (runs go cold meanwhile).
	fsFailed map[string]time.Time
	closed   bool
	// deletes tracks cgroups being removed after their Result was
	// returned, bg templates booting and pools filling; Close waits for
	// both.
	deletes sync.WaitGroup
	bg      sync.WaitGroup
	// cgPool holds cgroups made ahead for warm runs (cgpool_linux.go).
	cgPool cgPool

	binds    []string
	symlinks map[string]string
	etc      []string
	cg       cgroup.Info
	cgErr    error
}

// warmUp starts, in the background, one-time work of the first cold run,
// so that it overlaps the rest of the set-up: Go's probe of pidfd support
// (os runs it once per process, with a throwaway child, on the first
// FindProcess or StartProcess).
func warmUp() {
	go func() {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Release()
		}
	}()
}

func newBackend() (backend.Backend, error) {
	warmUp()
	b := &nativeBackend{
		servers: map[string]*forkServer{}, starting: map[string]bool{}, fsFailed: map[string]time.Time{},
		pool: map[string][]pooled{}, filling: map[string]bool{},
		preload: preloadDefault}
	// The host's runtime directories and /etc files, which every
	// sandbox's root binds.
	l := initproc.HostLayout(0)
	b.binds, b.symlinks, b.etc = l.Binds, l.Symlinks, l.EtcFiles
	b.cg, b.cgErr = cgroup.Detect()
	if b.cgErr == nil {
		// Groups left by a pybox that crashed mid-run.
		_ = cgroup.Cleanup()
	}
	return b, nil
}

func (b *nativeBackend) Name() string { return Name }
func (b *nativeBackend) Close(ctx context.Context) error {
	b.closeServers()
	return nil
}

// SetupError is a failure to build the sandbox, naming the step.
type SetupError struct {
	Step string
	Err  string
}

func (e *SetupError) Error() string { return "sandbox setup failed at " + e.Step + ": " + e.Err }

// trace makes every run print init's per-step timings to stderr
// (PYBOX_TRACE=1), for profiling the set-up path.
var trace = os.Getenv("PYBOX_TRACE") == "1"

// processAge is how long ago this process started (for tracing): since
// PYBOX_TRACE_T0 (Unix nanoseconds, set by whatever launched pybox just
// before its exec) when set, else by /proc/self/stat (10 ms ticks).
func processAge() time.Duration {
	if t0, err := strconv.ParseInt(os.Getenv("PYBOX_TRACE_T0"), 10, 64); err == nil {
		return time.Since(time.Unix(0, t0))
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 20 {
		return 0
	}
	var ticks int64
	fmt.Sscan(f[19], &ticks)
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Duration(ts.Nano() - ticks*1e7)
}

// traceTimeline prints when the init was cloned, began its Go code and
// started the interpreter, and when this process took it (adopted or
// started), in µs after this process's start (PYBOX_TRACE_T0 when set):
// the two chains a cold run waits for.
func traceTimeline(steps []string, cloned, took time.Time) {
	age, mono := processAge(), initproc.MonoNow()/1e3
	var runAt, execAt int64
	for _, st := range steps {
		_, _ = fmt.Sscanf(st, "run-at=%d exec-at=%d", &runAt, &execAt)
	}
	if runAt == 0 || execAt == 0 {
		return
	}
	at := func(m int64) int64 { return age.Microseconds() - (mono - m) }
	fmt.Fprintf(os.Stderr, "pybox trace:   timeline (µs after pybox's start): init cloned %d, its Go code began %d, interpreter started %d; pybox took the init %d\n",
		(age - time.Since(cloned)).Microseconds(), at(runAt), at(execAt), (age - time.Since(took)).Microseconds())
}

// lastMigration is when this process last moved a process between v1
// cgroups (a late join, or prime.Migration), in Unix nanoseconds. A
// move within migrationFresh of the previous one does not wait for an RCU
// grace period (measured: 20 ms after one, fast; 50 ms after, slow), so
// no priming is needed then.
var lastMigration atomic.Int64

const migrationFresh = 20 * time.Millisecond

// primeRecent: a priming started this recently still covers a join
// (it waits for the grace period, or just has).
const primeRecent = 50 * time.Millisecond

// runSeq numbers runs for unique cgroup names.
var runSeq atomic.Uint64

// sandbox is one running native sandbox: the init process in its
// namespaces and cgroup, and the parent's ends of its channels. One-shot
// runs and sessions are both built on it.
type sandbox struct {
	req  *api.Request
	proc *os.Process // init
	cg   *cgroup.Group
	// early: init is the one started early (spawn.TakeEarly).
	early bool
	iso   api.Isolation

	ctrl       *os.File
	rinW       *os.File // exec frames to the runner
	routR      *os.File // result and display frames from the runner
	outR, errR *os.File
	closers    []io.Closer

	// ctrlDone is closed when init's control channel ends; waitDone is
	// closed once init has been reaped.
	ctrlDone chan struct{}
	waitDone chan struct{}
	readyCh  chan struct{}
	// joined is closed once init and the interpreter are in the cgroup
	// (at once unless the join is late, see joinLate); joinErr says why
	// they are not.
	joined  chan struct{}
	joinErr error
	// initOutside: init itself is not in the cgroup (late join).
	initOutside bool

	mu             sync.Mutex
	ready          *initproc.Message
	exit           *initproc.Message
	setupErr       *SetupError
	files          []api.OutFile
	filesTruncated bool
	replies        chan initproc.Message
	killed         bool
}

// start builds a sandbox for req and starts its interpreter. On error
// nothing is left running.
func (b *nativeBackend) start(req *api.Request, cfg *initproc.Config) (sb *sandbox, err error) {
	return b.startWith(req, cfg, nil)
}

// startWith is start, with fd3 (when non-nil) handed to the interpreter as
// fd 3 instead of the runner's exec-frame pipe (the fork-server template's
// socket).
func (b *nativeBackend) startWith(req *api.Request, cfg *initproc.Config, fd3 *os.File) (sb *sandbox, err error) {
	sb = &sandbox{req: req, ctrlDone: make(chan struct{}), waitDone: make(chan struct{}),
		readyCh: make(chan struct{}), joined: make(chan struct{}), replies: make(chan initproc.Message, 1)}
	sb.iso = api.Isolation{
		Backend:    Name,
		Namespaces: namespaces,
		Network:    api.NetNone,
		Filesystem: "pivot_root to tmpfs; read-only binds of /usr and runtime files; tmpfs /work and /tmp",
		Limits: api.Limits{
			TimeoutMS:   req.Timeout.D().Milliseconds(),
			OutputBytes: int64(req.OutputLimit),
			DiskBytes:   int64(req.Disk),
		},
	}
	defer func() {
		if err != nil {
			sb.destroy()
		}
	}()

	st0 := time.Now()
	str := func(what string) {
		if trace {
			fmt.Fprintf(os.Stderr, "pybox trace:   start: %s at %dµs\n", what, time.Since(st0).Microseconds())
		}
	}
	// On cgroup v1 an interpreter that runs the runner joins its cgroup
	// late, and init not at all (see joinLate): then the pids limit
	// reserves nothing for init's threads.
	late := b.cgErr == nil && b.cg.Version == "v1" && fd3 == nil && !cfg.Template && procChildren()
	reserve := initproc.InitThreads
	if late {
		reserve = 0
	}
	// adopt makes in this sandbox's init: from then on it is reaped
	// whatever happens (destroy waits for it).
	adopt := func(in *spawn.Init) error {
		// os.FindProcess opens a pidfd: signals and the wait are
		// race-free. Until then nothing can reap init but us.
		p, err := os.FindProcess(in.Pid)
		if err != nil {
			spawn.Discard(in)
			return fmt.Errorf("start sandbox init: %w", err)
		}
		sb.proc = p
		file := func(fd int, name string) *os.File {
			if fd < 0 {
				return nil
			}
			f := os.NewFile(uintptr(fd), name)
			sb.closers = append(sb.closers, f)
			return f
		}
		sb.outR, sb.errR = file(in.Stdout, "stdout"), file(in.Stderr, "stderr")
		sb.rinW, sb.routR = file(in.RunnerIn, "runner-in"), file(in.RunnerOut, "runner-out")
		sb.ctrl = file(in.Control, "control")
		started, startedMono := time.Unix(0, in.Started), initproc.MonoNow()
		cmdStarted := time.Now()
		str("init started")
		go sb.readControl(int(req.FilesLimit), func(m *initproc.Message) {
			if trace {
				fmt.Fprintf(os.Stderr, "pybox trace: early=%v start=%dµs ready after %dµs; steps (µs): %s (start mono %d)\n",
					sb.early, cmdStarted.Sub(started).Microseconds(), time.Since(started).Microseconds(),
					strings.Join(m.Steps, " "), startedMono/1e3)
				traceTimeline(m.Steps, started, cmdStarted)
			}
		})
		go func() { <-sb.ctrlDone; _, _ = sb.proc.Wait(); close(sb.waitDone) }()
		return nil
	}
	// The init: the one pybox started early (internal/spawn/early), if
	// any and this is a plain cold start, else a new one.
	var in *spawn.Init
	if fd3 == nil && !cfg.Template {
		in = spawn.TakeEarly()
		// An early init is not taken when it may already run an
		// interpreter this config does not ask for, or when that
		// interpreter got runner code from another file than this run's
		// (internal/spawn/early's preSend): a new init instead.
		notTaken := ""
		switch {
		case in == nil:
		case in.Ahead && !aheadMatches(cfg, late):
			notTaken = "the config is not a default request's"
		case in.Code != nil && (cfg.RunnerCode == nil || *in.Code != cfg.RunnerSource):
			notTaken = "it got other runner code"
		}
		if notTaken != "" {
			if trace {
				fmt.Fprintf(os.Stderr, "pybox trace:   early init not taken: %s\n", notTaken)
			}
			spawn.Discard(in)
			in = nil
		}
		if in != nil {
			sb.early = true
			if trace {
				if in.Code != nil {
					fmt.Fprintf(os.Stderr, "pybox trace:   early init got the runner code from the early start\n")
				}
				fmt.Fprintf(os.Stderr, "pybox trace:   early init cloned %dµs after process start\n", (processAge() - time.Since(time.Unix(0, in.Started))).Microseconds())
			}
			if err := adopt(in); err != nil {
				return sb, err
			}
		}
	}
	// An early init on the late-join path gets its config first, and the
	// run's groups are made while it builds the sandbox.
	configFirst := in != nil && late
	// primeCgroups: the late join's migration must not wait for an RCU
	// grace period once the interpreter is up: wait for it now, alongside
	// the init's set-up (see prime.Migration), unless a migration of this
	// process was just made (then the kernel's lock is still fast) or a
	// priming is under way (pybox run's early one, internal/spawn/early).
	primeCgroups := func() {
		if b.cgErr != nil || time.Since(time.Unix(0, lastMigration.Load())) <= migrationFresh || time.Duration(prime.Since()) <= primeRecent {
			return
		}
		go func() {
			t0 := time.Now()
			err := prime.Migration()
			if err == nil {
				lastMigration.Store(time.Now().UnixNano())
			}
			if trace {
				fmt.Fprintf(os.Stderr, "pybox trace:   cgroup migration primed in %dµs (%v)\n", time.Since(t0).Microseconds(), err)
			}
		}()
	}
	// makeGroups makes the run's cgroup: memory (+swap), pids, cpu.
	makeGroups := func() error {
		var err error
		if b.cgErr == nil {
			sb.cg, err = cgroup.New(cgroup.RunName(runSeq.Add(1)), cgroup.Limits{
				MemoryBytes: int64(req.Memory), Pids: req.Pids + reserve,
				CPUs: req.CPUs, AllowSwap: req.BestEffort})
		} else {
			err = b.cgErr
		}
		if err != nil {
			sb.cg = nil
			if !req.BestEffort {
				return fmt.Errorf("cgroup limits cannot be enforced: %w (run `pybox doctor`, or set best_effort to run without them)", err)
			}
			sb.iso.Missing = append(sb.iso.Missing, "cgroup: "+err.Error())
			return nil
		}
		sb.iso.Cgroup = sb.cg.Version()
		if late && !configFirst {
			primeCgroups()
		}
		sb.iso.Limits.MemoryBytes = int64(req.Memory)
		sb.iso.Limits.Pids = req.Pids
		sb.iso.Limits.CPUs = req.CPUs
		return nil
	}
	if !configFirst {
		if err := makeGroups(); err != nil {
			return sb, err
		}
		str("cgroup")
	}
	if in == nil {
		o := spawn.Options{Path: initProgram(), RunnerIn: -1, CgroupFD: -1}
		if o.Path != selfExe {
			// The embedded init may not be executable here (say, a
			// noexec cache directory): re-execute pybox then.
			o.Fallback = selfExe
		}
		if fd3 != nil {
			o.RunnerIn = int(fd3.Fd())
			defer fd3.Close()
		}
		if sb.cg != nil {
			if fd, ok := sb.cg.FD(); ok {
				o.CgroupFD = fd
			}
		}
		if in, err = spawn.Start(o); err != nil {
			if errors.Is(err, syscall.EPERM) && os.Geteuid() != 0 {
				return sb, fmt.Errorf("start sandbox init: %w (the sandbox's uid map needs root: run pybox as root, or use the wasm backend; see `pybox doctor`)", err)
			}
			return sb, fmt.Errorf("start sandbox init: %w", err)
		}
		if in.Path != o.Path {
			initFallback.Store(true)
			if trace {
				fmt.Fprintf(os.Stderr, "pybox trace: init %s cannot be executed; re-executing pybox instead\n", o.Path)
			}
		}
		if err := adopt(in); err != nil {
			return sb, err
		}
	}
	// The config first: init builds the sandbox while (on cgroup v1) the
	// process is moved into the cgroup, then waits for "go" before it
	// starts the interpreter; or, with a late join, starts it at once.
	cfg.LateCgroup = late && (sb.cg != nil || configFirst)
	trees, err := mountTrees(cfg.Mounts)
	if err != nil {
		return sb, err
	}
	defer closeAll(trees)
	cfg.MountTrees = trees != nil
	if err := initproc.WriteFrame(sb.ctrl, cfg); err != nil {
		return sb, fmt.Errorf("send config to sandbox init: %w", err)
	}
	if trees != nil {
		if err := sendFDs(sb.ctrl, trees); err != nil {
			return sb, fmt.Errorf("send mount sources to sandbox init: %w", err)
		}
	}
	// The runner's code is the first frame on its input, before any exec
	// frame; the interpreter reads it as soon as it starts (so, on the
	// late-join path, while the join runs).
	sendCode := func() error {
		if cfg.RunnerCode == nil || fd3 != nil || in.Code != nil { // in.Code: sent early
			return nil
		}
		if err := runner.WriteRaw(sb.rinW, cfg.RunnerCode); err != nil {
			return fmt.Errorf("send the runner's code: %w", err)
		}
		return nil
	}
	if cfg.LateCgroup {
		sb.initOutside = true
		if err := sendCode(); err != nil {
			return sb, err
		}
		str("config-sent")
		if configFirst {
			// Priming first: the groups' mkdir then waits behind it for
			// the cgroup mutex, but nothing waits for the mkdir until
			// the interpreter is ready.
			primeCgroups()
			if err := makeGroups(); err != nil {
				return sb, err
			}
			str("cgroup")
		}
		if sb.cg == nil {
			close(sb.joined) // best effort: no group to join
		} else {
			go sb.joinLate()
		}
		return sb, nil
	}
	if sb.cg != nil && !in.InCgroup {
		if err := sb.cg.AddProc(sb.proc.Pid); err != nil {
			return sb, fmt.Errorf("join cgroup: %w", err)
		}
	}
	close(sb.joined)
	str("joined")
	if err := initproc.WriteFrame(sb.ctrl, &initproc.Message{Type: "go"}); err != nil {
		return sb, fmt.Errorf("start sandbox init: %w", err)
	}
	// After "go": a pipe smaller than the code (a user over
	// pipe-user-pages-soft gets one page) must not block before the
	// interpreter exists to read it.
	if err := sendCode(); err != nil {
		return sb, err
	}
	str("config-sent")
	return sb, nil
}

// procChildren says whether /proc/<pid>/task/<tid>/children exists here
// (CONFIG_PROC_CHILDREN), which the late cgroup join needs to find the
// interpreter.
var procChildren = sync.OnceValue(func() bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), os.Getpid()))
	return err == nil
})

// selfExe re-executes pybox as the sandbox init.
const selfExe = "/proc/self/exe"

// initFallback is set once the embedded init failed to start.
var initFallback atomic.Bool

// initProgram is what a sandbox's init executes: the small embedded
// cmd/pybox-init when this build has one (internal/initbin), else pybox
// itself.
func initProgram() string {
	if initFallback.Load() || os.Getenv("PYBOX_INIT") == "self" {
		return selfExe
	}
	d := cacheDir()
	if d == "" {
		return selfExe
	}
	p, err := initbin.Path(filepath.Join(d, "init"))
	if err != nil {
		return selfExe
	}
	return p
}

// joinLate moves the interpreter into the cgroup once init reports it
// started, and closes sb.joined. On cgroup v1 the first move into a
// hierarchy waits for an RCU grace period (2-14 ms on a 2-core machine);
// done this way it overlaps the interpreter's start-up instead of
// delaying it. Nothing of the user's runs before: the runner reads its
// exec frame first, and every writer of exec frames waits for sb.joined.
// What the runner allocates before the move stays charged to the parent's
// memory cgroup (v1 does not move charges): trusted start-up, not the
// user's. Init itself stays in the parent's groups: moving it too (it
// used to be moved first) sometimes held up its fork and exec of the
// interpreter by milliseconds, and it runs nothing of the user's; the
// processes the code starts descend from the interpreter, inside.
func (sb *sandbox) joinLate() {
	defer close(sb.joined)
	if trace {
		t0 := time.Now()
		defer func() {
			fmt.Fprintf(os.Stderr, "pybox trace:   late cgroup join took %dµs (%v)\n", time.Since(t0).Microseconds(), sb.joinErr)
		}()
	}
	fail := func(err error) {
		sb.joinErr = fmt.Errorf("join cgroup: %w", err)
	}
	pid := sb.proc.Pid
	<-sb.readyCh
	sb.mu.Lock()
	ready := sb.ready != nil
	sb.mu.Unlock()
	if !ready {
		fail(errors.New("init ended before starting the interpreter"))
		return
	}
	// Init's one child is the interpreter (init forks from its main
	// thread, which is locked).
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		fail(err)
		return
	}
	kids := strings.Fields(string(b))
	if len(kids) != 1 {
		fail(fmt.Errorf("init has %d children, want the interpreter only", len(kids)))
		return
	}
	child, err := strconv.Atoi(kids[0])
	if err != nil {
		fail(err)
		return
	}
	if err := sb.cg.AddProc(child); err != nil {
		fail(err)
		return
	}
	lastMigration.Store(time.Now().UnixNano())
}

// awaitJoined waits until init and the interpreter are in the cgroup. On
// error the sandbox is killed, with a setup error at step "cgroup".
func (sb *sandbox) awaitJoined() error {
	<-sb.joined
	if sb.joinErr == nil {
		return nil
	}
	sb.mu.Lock()
	if sb.setupErr == nil {
		sb.setupErr = &SetupError{Step: "cgroup", Err: sb.joinErr.Error()}
	}
	sb.mu.Unlock()
	sb.kill()
	return sb.joinErr
}

// readControl dispatches init's frames until the channel ends.
func (sb *sandbox) readControl(filesLimit int, onReady func(*initproc.Message)) {
	defer close(sb.ctrlDone)
	readyClosed := false
	defer func() {
		if !readyClosed {
			close(sb.readyCh)
		}
	}()
	maxFrame := filesLimit + 1<<20
	maxFrame += maxFrame / 3 // base64
	for {
		var m initproc.Message
		if err := initproc.ReadFrame(sb.ctrl, maxFrame, &m); err != nil {
			return
		}
		sb.mu.Lock()
		switch m.Type {
		case "error":
			sb.setupErr = &SetupError{Step: m.Step, Err: m.Error}
			sb.mu.Unlock()
			sb.kill()
			return
		case "ready":
			mm := m
			sb.ready = &mm
			onReady(&mm)
			close(sb.readyCh)
			readyClosed = true
		case "exit":
			mm := m
			sb.exit = &mm
		case "file":
			if m.File != nil {
				sb.files = append(sb.files, *m.File)
			}
			sb.filesTruncated = sb.filesTruncated || m.FilesTruncated
		case "reply":
			select {
			case sb.replies <- m:
			default:
			}
		case "done":
			sb.mu.Unlock()
			return
		}
		sb.mu.Unlock()
	}
}

// kill stops the whole sandbox: every process in its cgroup, and init,
// whose death ends the pid namespace.
func (sb *sandbox) kill() {
	sb.mu.Lock()
	sb.killed = true
	sb.mu.Unlock()
	if sb.cg != nil {
		_ = sb.cg.Kill()
	}
	if sb.proc != nil {
		_ = sb.proc.Kill()
	}
}

// destroy kills the sandbox if needed, reaps init and releases everything.
func (sb *sandbox) destroy() {
	if sb.proc != nil {
		sb.kill()
		if sb.initOutside && sb.cg != nil {
			// Init is not in the cgroup: remove the group while init
			// finishes exiting (its mount namespace's teardown waits for
			// an RCU grace period) rather than after.
			deleted := make(chan struct{})
			go func() { defer close(deleted); _ = sb.cg.Delete() }()
			<-sb.waitDone
			<-deleted
		} else {
			<-sb.waitDone
		}
	}
	for _, c := range sb.closers {
		c.Close()
	}
	if sb.cg != nil {
		_ = sb.cg.Delete()
	}
}

// stats reads the cgroup's usage and OOM counters.
func (sb *sandbox) stats() (cgroup.Stats, bool) {
	if sb.cg == nil {
		return cgroup.Stats{}, false
	}
	st, err := sb.cg.Stats()
	return st, err == nil
}

// isolation is what was in force, once init reported ready.
func (sb *sandbox) isolation() api.Isolation {
	iso := sb.iso
	iso.Missing = append([]string(nil), sb.iso.Missing...)
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if r := sb.ready; r != nil {
		uid := initproc.SandboxUID
		iso.UID = &uid
		iso.Capabilities = "none"
		iso.NoNewPrivs = true
		iso.LandlockABI = r.LandlockABI
		iso.Landlock = r.Landlock
		iso.Seccomp = r.Seccomp
		iso.Missing = append(iso.Missing, r.Missing...)
	}
	return iso
}

// limitFlags records which limit ended an execution. Set by the parent
// only.
type limitFlags struct {
	mu         sync.Mutex
	timedOut   bool
	outputOver bool
	cancelled  bool
}

func (f *limitFlags) set(p *bool) {
	f.mu.Lock()
	*p = true
	f.mu.Unlock()
}

func (f *limitFlags) get() (timedOut, outputOver, cancelled bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timedOut, f.outputOver, f.cancelled
}

// Run executes one request in a fresh sandbox.
func (b *nativeBackend) Run(ctx context.Context, req *api.Request, hooks backend.Hooks) (*api.Result, error) {
	begin := time.Now()
	res := &api.Result{ExitCode: -1, Isolation: api.Isolation{Backend: Name}}
	var err error
	if fs := b.warm(req); fs != nil {
		err = b.runWarm(ctx, fs, req, hooks, res)
		if errors.Is(err, errForkFailed) {
			// The template is broken (and now replaced); nothing ran.
			res = &api.Result{ExitCode: -1, Isolation: api.Isolation{Backend: Name}}
			err = b.runOnce(ctx, req, hooks, res)
		}
	} else {
		err = b.runOnce(ctx, req, hooks, res)
	}
	res.Usage.WallMS = time.Since(begin).Milliseconds()
	if err != nil {
		res.Status = api.StatusSandboxError
		res.Error = err.Error()
		var ie *api.InputError
		if errors.As(err, &ie) {
			res.Status = api.StatusInputError
		}
		return res, err
	}
	return res, nil
}

func (b *nativeBackend) runOnce(ctx context.Context, req *api.Request, hooks backend.Hooks, res *api.Result) error {
	if trace {
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "pybox trace: cold run begins %dµs after process start\n", processAge().Microseconds())
		defer func() { fmt.Fprintf(os.Stderr, "pybox trace: cold run took %dµs\n", time.Since(t0).Microseconds()) }()
	}
	cfg, err := b.config(req)
	if err != nil {
		return err
	}
	t0 := time.Now()
	tr := func(what string) {
		if trace {
			fmt.Fprintf(os.Stderr, "pybox trace: %s at %dµs\n", what, time.Since(t0).Microseconds())
		}
	}
	sb := b.takePooled(req)
	if sb == nil {
		if sb, err = b.start(req, cfg); err != nil {
			res.Isolation = sb.iso
			return err
		}
	}
	tr("started")
	defer func() { sb.destroy(); tr("destroyed") }()

	// Feed the runner its one exec frame; EOF afterwards ends it.
	go func() {
		if sb.awaitJoined() != nil {
			sb.rinW.Close()
			return
		}
		_ = runner.WriteFrame(sb.rinW, runner.NewExec(req.Code, req.Globals))
		sb.rinW.Close()
	}()

	var flags limitFlags
	var wg sync.WaitGroup
	var stdout, stderr guest.Output
	limit := int64(req.OutputLimit)
	over := func() { flags.set(&flags.outputOver); sb.kill() }
	wg.Add(3)
	go func() { defer wg.Done(); stdout.Read(sb.outR, limit, hooks.Stdout, over) }()
	go func() { defer wg.Done(); stderr.Read(sb.errR, limit, hooks.Stderr, over) }()
	var frames guest.Frames
	go func() { defer wg.Done(); frames.Read(sb.routR, int(limit)*2+1<<20, limit) }()

	timer := time.NewTimer(req.Timeout.D())
	defer timer.Stop()
	select {
	case <-sb.ctrlDone:
	case <-timer.C:
		flags.set(&flags.timedOut)
		sb.kill()
	case <-ctx.Done():
		flags.set(&flags.cancelled)
		sb.kill()
	}
	tr("ctrl-done")
	// Init has exited or been killed, and with it everything in its pid
	// namespace: the pipes end once the last writer is gone. Its reaping
	// (after its mount namespace's teardown) is destroy's business.
	wg.Wait()
	tr("streams")

	st, haveStats := sb.stats()
	res.Isolation = sb.isolation()
	sb.mu.Lock()
	in := outcome{
		ready: sb.ready, exit: sb.exit, setupErr: sb.setupErr,
		frames: &frames, stdout: &stdout, stderr: &stderr,
		stats: st, haveStats: haveStats,
	}
	files, filesTruncated := sb.files, sb.filesTruncated
	sb.mu.Unlock()
	in.timedOut, in.outputOver, in.cancelled = flags.get()
	if err := settle(req, res, in); err != nil {
		return err
	}
	if res.Status == api.StatusSuccess || res.Status == api.StatusRunError {
		res.Files, res.FilesTruncated = files, filesTruncated
	}
	return nil
}

// outcome is everything the parent observed about one execution.
type outcome struct {
	ready, exit                     *initproc.Message
	setupErr                        *SetupError
	frames                          *guest.Frames
	stdout, stderr                  *guest.Output
	stats                           cgroup.Stats
	haveStats                       bool
	timedOut, outputOver, cancelled bool
	// session says this was one execution of a session, whose
	// interpreter normally stays alive (so there is no exit frame).
	session bool
}

// settle fills res from what the parent observed. Limits first: they are
// the parent's own observations and cannot be forged from inside.
func settle(req *api.Request, res *api.Result, in outcome) error {
	res.Stdout, res.StdoutTruncated = in.stdout.String(), in.stdout.Truncated()
	res.Stderr, res.StderrTruncated = in.stderr.String(), in.stderr.Truncated()
	if in.haveStats {
		res.Usage.PeakMemoryBytes = in.stats.PeakMemoryBytes
		res.Usage.CPUMS = in.stats.CPUNanos / 1e6
	}
	if in.exit != nil && res.Usage.CPUMS == 0 {
		res.Usage.CPUMS = in.exit.CPUMS
	}
	if in.exit != nil {
		res.ExitCode = in.exit.ExitCode
		if in.exit.Signal != 0 {
			res.Signal = unix.SignalName(syscall.Signal(in.exit.Signal))
		}
	}
	if in.frames != nil {
		res.Outputs, res.OutputsTruncated = in.frames.Outputs, in.frames.OutputsTruncated
	}
	oom := in.haveStats && in.stats.OOMKills > 0
	switch {
	case in.timedOut:
		res.Status = api.StatusTimeout
		res.Error = fmt.Sprintf("timed out after %s", req.Timeout)
	case in.outputOver:
		res.Status = api.StatusOutputLimit
		res.Error = fmt.Sprintf("output exceeded the %s limit", req.OutputLimit)
	case oom:
		res.Status = api.StatusMemoryLimit
		res.Error = fmt.Sprintf("memory limit of %s exceeded", req.Memory)
	case in.cancelled:
		res.Status = api.StatusKilled
		res.Error = "cancelled"
	case in.setupErr != nil && in.setupErr.Step == "open-mounts" && strings.HasPrefix(in.setupErr.Err, "mount source "):
		// A mount source the sandbox's init cannot open by path
		// (config checked that it exists): the request's fault.
		return &api.InputError{Field: "mounts", Msg: in.setupErr.Err}
	case in.setupErr != nil:
		return in.setupErr
	case in.ready == nil:
		return errors.New("sandbox init ended before starting the interpreter")
	case in.exit == nil && !in.session:
		res.Status = api.StatusKilled
		res.Error = "sandbox init was killed"
	case in.exit != nil && in.exit.Signal != 0:
		res.Status = api.StatusKilled
		res.Error = "killed by signal " + res.Signal
	default:
		fromRunner(res, in)
	}
	return nil
}

// fromRunner sets the status of an execution whose interpreter exited
// normally (or, in a session, finished the execution), from its exit code
// and the runner's result frame.
func fromRunner(res *api.Result, in outcome) {
	var m *runner.Message
	var ferr error
	if in.frames != nil {
		m, ferr = in.frames.Result, in.frames.Err
	}
	if m != nil && m.ExitCode != nil && in.exit == nil {
		res.ExitCode = *m.ExitCode
	}
	if in.exit == nil && m != nil && m.ExitCode == nil {
		// A session execution that did not exit the interpreter.
		res.ExitCode = 0
		if !m.OK {
			res.ExitCode = 1
		}
	}
	guest.Settle(res, m, ferr)
}

// aheadInterpreter is the interpreter an init started ahead runs
// (initproc.AheadConfig); "" if none.
var aheadInterpreter = sync.OnceValue(func() string {
	if a, err := initproc.AheadConfig(); err == nil {
		return a.Argv[0]
	}
	return ""
})

// aheadMatches says whether cfg, sent to an early init with the late
// join (LateCgroup) that late says, is the default request's config that an
// init started ahead assumed (initproc.AheadConfig).
func aheadMatches(cfg *initproc.Config, late bool) bool {
	a, err := initproc.AheadConfig()
	if err != nil {
		return false
	}
	c := *cfg
	c.LateCgroup = late
	return c.AheadMatches(&a)
}

// mountTrees makes a detached copy of each user mount's source
// (open_tree OPEN_TREE_CLONE), for init to move into place
// (initproc.Config.MountTrees). pybox makes them with its own rights: init
// runs as an unprivileged host uid, which cannot reach a source below a
// directory only root may search (/root, a 0700 temporary directory), and
// a bind of a descriptor pybox opened would be refused (the kernel binds
// only mounts of the caller's mount namespace; a detached copy belongs to
// none). nil, nil: there are no mounts, or the kernel has no open_tree
// (before 5.2), and init opens the sources itself.
func mountTrees(mounts []api.Mount) ([]int, error) {
	var fds []int
	for _, m := range mounts {
		fd, err := unix.OpenTree(unix.AT_FDCWD, m.Host, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err == unix.ENOSYS && len(fds) == 0 {
			return nil, nil
		}
		if err != nil {
			closeAll(fds)
			return nil, &api.InputError{Field: "mounts", Msg: fmt.Sprintf("mount source %s: %v", m.Host, err)}
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// sendFDs sends fds over the control socket: one byte carrying them all.
func sendFDs(ctrl *os.File, fds []int) error {
	rc, err := ctrl.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), []byte{0}, unix.UnixRights(fds...), nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return err
	}
	return serr
}

func (b *nativeBackend) config(req *api.Request) (*initproc.Config, error) {
	argv0, extra, err := guest.Interpreter(req.Python)
	if err != nil {
		return nil, &api.InputError{Field: "python", Msg: err.Error()}
	}
	binds := b.binds
	if extra != "" {
		binds = append(append([]string{}, binds...), extra)
	}
	env := guest.Environ(req)
	for _, m := range req.Mounts {
		if _, err := os.Stat(m.Host); err != nil {
			return nil, &api.InputError{Field: "mounts", Msg: err.Error()}
		}
	}
	filter := defaultFilter()
	if filter.err != nil && !req.BestEffort {
		return nil, fmt.Errorf("seccomp filter: %w", filter.err)
	}
	argv := runner.Args(argv0, fmt.Sprint(initproc.FDRunnerIn), fmt.Sprint(initproc.FDRunnerOut))
	code, src := runnerCode(argv0)
	if code != nil && argv0 == aheadInterpreter() {
		indexAhead(argv0, src)
	}
	if code != nil {
		argv = runner.BootArgs(argv0, fmt.Sprint(initproc.FDRunnerIn), fmt.Sprint(initproc.FDRunnerOut))
	}
	return &initproc.Config{
		Argv:         argv,
		RunnerCode:   code,
		RunnerSource: src,
		Env:          env,
		Layout:       initproc.Layout{Binds: binds, Symlinks: b.symlinks, EtcFiles: b.etc, DiskBytes: int64(req.Disk)},
		Mounts:       req.Mounts,
		Files:        req.Files,
		CollectFiles: req.CollectFiles,
		FilesLimit:   int64(req.FilesLimit),
		BestEffort:   req.BestEffort,
		Trace:        trace,

		SeccompFilter:  filter.raw,
		SeccompSummary: filter.summary,
	}, nil
}

// builtFilter is a seccomp filter for init, prebuilt (internal/seccomp/
// prebuilt) and copied once per process; init installs it as is (see
// initproc.Config.SeccompFilter).
type builtFilter struct {
	raw     []byte
	summary string
	err     error
}

func getFilter(k prebuilt.Kind) builtFilter {
	f, err := prebuilt.Get(k)
	return builtFilter{f.Raw, f.Summary, err}
}

// defaultFilter is every sandbox's filter; templateFilter a fork-server
// template's, which still allows initproc.TemplateAllow; childFilter what
// each fork-server child stacks on it.
var (
	defaultFilter  = sync.OnceValue(func() builtFilter { return getFilter(prebuilt.Default) })
	templateFilter = sync.OnceValue(func() builtFilter { return getFilter(prebuilt.Template) })
	childFilter    = sync.OnceValue(func() builtFilter { return getFilter(prebuilt.Child) })
)
