package gvisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/initproc"
	"github.com/pybox-dev/pybox/internal/runner"
)

// validPlatform says whether p looks like a runsc platform name:
// [a-z][a-z0-9_-]{0,31}. (Not a regexp: compiling one at package
// initialisation would cost every pybox start.)
func validPlatform(p string) bool {
	if p == "" || len(p) > 32 || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for _, c := range []byte(p) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// trace makes every run print its phase timings to stderr (PYBOX_TRACE=1).
var trace = os.Getenv("PYBOX_TRACE") == "1"

// seq numbers run directories, /etc copies and cgroups of this process.
var seq atomic.Uint64

type gvisorBackend struct {
	runsc    string
	platform string
	dir      string
	noPool   bool
	lay      layout
	cg       cgroup.Info
	cgErr    error

	// bg counts background work: pool fills and the teardown of sandboxes
	// whose Result was returned. It is only added to under mu while not
	// closed (or by work that already holds a count), so Close can wait.
	bg sync.WaitGroup

	mu     sync.Mutex
	closed bool
	// pool holds booted sandboxes per policy key, filling says a goroutine
	// is booting more for a key, pooled counts the sandboxes in pool
	// (pool_linux.go).
	pool    map[string][]*pooled
	filling map[string]bool
	pooled  int
	// fillFailed is when a fill for a key last failed to boot a sandbox.
	fillFailed map[string]time.Time
	// errs are failures of background teardowns, returned by Close.
	errs []error
}

// resolve fills in o's defaults and checks that runsc can be used: it is
// found, we are root (runsc runs rootful; the backend mounts tmpfs), the
// platform name is sane.
func resolve(o Options) (Options, error) {
	if o.Runsc == "" {
		o.Runsc = "runsc"
	}
	if o.Platform == "" {
		o.Platform = DefaultPlatform
	}
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	p, err := exec.LookPath(o.Runsc)
	if err != nil {
		return o, fmt.Errorf("gvisor: runsc not found (%v): install it (apt-get install runsc) or set %s", err, EnvRunsc)
	}
	o.Runsc = p
	if !validPlatform(o.Platform) {
		return o, fmt.Errorf("gvisor: invalid runsc platform %q (%s): want e.g. ptrace or kvm", o.Platform, EnvPlatform)
	}
	if !filepath.IsAbs(o.Dir) {
		return o, fmt.Errorf("gvisor: run directory %q (%s) must be absolute", o.Dir, EnvDir)
	}
	if os.Geteuid() != 0 {
		return o, fmt.Errorf("gvisor: the gvisor backend needs root (euid is %d): it runs runsc rootful and mounts tmpfs", os.Geteuid())
	}
	return o, nil
}

// Available reports whether a backend with options o could be made here,
// without making one: nil when runsc is found and usable by this process.
func Available(o Options) error {
	_, err := resolve(o)
	return err
}

func newFromEnv() (backend.Backend, error) { return New(OptionsFromEnv(os.Getenv)) }

// New returns a gvisor backend. It removes run directories and cgroups
// left by pybox processes that died, and builds the generated /etc shared
// by this backend's runs.
func New(o Options) (backend.Backend, error) {
	o, err := resolve(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("gvisor: %w", err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("gvisor: %w", err)
	}
	if err := cleanupStale(o.Dir); err != nil {
		return nil, fmt.Errorf("gvisor: remove stale run directories: %w", err)
	}
	// The runtime directories the native sandbox binds (its /etc is
	// generated: sharedEtc).
	host := initproc.HostLayout(0)
	b := &gvisorBackend{runsc: o.Runsc, platform: o.Platform, dir: o.Dir, noPool: o.NoPool,
		lay:  layout{binds: host.Binds, symlinks: host.Symlinks},
		pool: map[string][]*pooled{}, filling: map[string]bool{}, fillFailed: map[string]time.Time{}}
	if b.lay.etcDir, err = sharedEtc(o.Dir); err != nil {
		return nil, fmt.Errorf("gvisor: generate /etc: %w", err)
	}
	b.cg, b.cgErr = cgroup.Detect()
	if b.cgErr == nil {
		_ = cgroup.Cleanup()
	}
	return b, nil
}

func (b *gvisorBackend) Name() string { return Name }

// Close makes later runs fail, discards the pooled sandboxes and waits (up
// to ctx) for every background teardown and pool fill, returning their
// failures. Runs in flight go on until they end, and then tear down their
// sandbox before they return. The generated /etc stays: other pybox
// processes share it.
func (b *gvisorBackend) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	drained := b.drainPool()
	b.mu.Unlock()
	for _, sb := range drained {
		b.bg.Add(1) // Close is the only waiter and has not begun waiting
		go func() { defer b.bg.Done(); b.noteErr(sb.destroy()) }()
	}
	done := make(chan struct{})
	go func() { b.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("gvisor: close: %w (sandboxes are still being torn down)", ctx.Err())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	err := errors.Join(b.errs...)
	b.errs = nil
	return err
}

// noteErr keeps the failure of a background teardown for Close.
func (b *gvisorBackend) noteErr(err error) {
	if err == nil {
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, err)
	b.mu.Unlock()
}

// background runs f in the background, counted for Close, or right away
// once the backend is closed (Close may be waiting already).
func (b *gvisorBackend) background(f func()) {
	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.bg.Add(1)
	}
	b.mu.Unlock()
	if closed {
		f()
		return
	}
	go func() { defer b.bg.Done(); f() }()
}

// SetupError is a failure of runsc to start the sandbox.
type SetupError struct{ Msg string }

func (e *SetupError) Error() string { return "gvisor: runsc could not start the sandbox: " + e.Msg }

// run is the state of one execution.
type run struct {
	start time.Time
	req   *api.Request
	hooks backend.Hooks
	res   *api.Result

	mu         sync.Mutex
	timedOut   bool
	outputOver bool
	cancelled  bool
}

func (r *run) set(f *bool) {
	r.mu.Lock()
	*f = true
	r.mu.Unlock()
}

func (b *gvisorBackend) Run(ctx context.Context, req *api.Request, hooks backend.Hooks) (*api.Result, error) {
	start := time.Now()
	r := newRun(start, req, hooks, b.platform)
	err := b.run(ctx, r)
	r.res.Usage.WallMS = time.Since(start).Milliseconds()
	if trace {
		fmt.Fprintf(os.Stderr, "pybox trace: gvisor run took %v\n", time.Since(start).Round(time.Microsecond))
	}
	if err != nil {
		var ie *api.InputError
		if errors.As(err, &ie) {
			r.res.Status = api.StatusInputError
		} else {
			r.res.Status = api.StatusSandboxError
		}
		r.res.Error = err.Error()
		return r.res, err
	}
	return r.res, nil
}

// newRun returns the state of a run that has not started.
func newRun(start time.Time, req *api.Request, hooks backend.Hooks, platform string) *run {
	r := &run{start: start, req: req, hooks: hooks, res: &api.Result{ExitCode: -1}}
	uid := sandboxUID
	r.res.Isolation = api.Isolation{
		Backend:      Name,
		Namespaces:   namespaces,
		UID:          &uid,
		Capabilities: "none",
		NoNewPrivs:   true,
		Seccomp:      "gVisor sentry (platform " + platform + "): the code's system calls never reach the host kernel",
		Network:      api.NetNone,
		Filesystem:   "gVisor gofer: read-only root and binds of /usr and a generated /etc; host tmpfs /work and /tmp",
		Limits: api.Limits{
			TimeoutMS:   req.Timeout.D().Milliseconds(),
			OutputBytes: int64(req.OutputLimit),
			DiskBytes:   int64(req.Disk),
		},
	}
	return r
}

// reset makes r a run that has not started again.
func (r *run) reset(platform string) {
	n := newRun(r.start, r.req, r.hooks, platform)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res = n.res
	r.timedOut, r.outputOver, r.cancelled = false, false, false
}

func (b *gvisorBackend) run(ctx context.Context, r *run) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return errors.New("gvisor: backend closed")
	}
	req := r.req
	argv0, extra, err := guest.Interpreter(req.Python)
	if err != nil {
		return &api.InputError{Field: "python", Msg: err.Error()}
	}
	var frame bytes.Buffer
	if err := runner.WriteFrame(&frame, runner.NewExec(req.Code, req.Globals)); err != nil {
		return err
	}
	key, poolable := b.poolKey(req, argv0, extra)
	if poolable {
		// Top the pool up once this run is over (not during it: boots
		// would compete with it for the CPUs).
		defer b.refill(key, req)
		for {
			sb := b.takePooled(key)
			if sb == nil {
				break
			}
			nothingRan, err := b.exec(ctx, sb, r, frame.Bytes())
			if !nothingRan {
				return err
			}
			// The sandbox died before the runner read a byte of its
			// frame: nothing ran, so another sandbox may run it.
			r.reset(b.platform)
		}
	}
	if trace {
		fmt.Fprintf(os.Stderr, "pybox trace: gvisor cold run (policy poolable: %v)\n", poolable)
	}
	sb, err := b.boot(req, argv0, extra)
	if err != nil {
		return err
	}
	_, err = b.exec(ctx, sb, r, frame.Bytes())
	return err
}

// command builds the runsc command. On cgroup v2 it is started straight
// into the group (CLONE_INTO_CGROUP). On v1 that is impossible, so a shell
// waits on a gate pipe (gateR, its fd 3) until the caller has moved it into
// the group and written to gateW, then execs runsc: runsc, the sentry and
// the gofer are all born inside the group.
func (b *gvisorBackend) command(args []string, cg *cgroup.Group, stdout, stderr *os.File) (cmd *exec.Cmd, gateR, gateW *os.File, err error) {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd = &exec.Cmd{
		Path:        b.runsc,
		Args:        append([]string{"runsc"}, args...),
		Env:         []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: attr,
	}
	if cg == nil {
		return cmd, nil, nil, nil
	}
	if fd, ok := cg.FD(); ok {
		attr.UseCgroupFD = true
		attr.CgroupFD = fd
		return cmd, nil, nil, nil
	}
	gateR, gateW, err = os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd.Path = "/bin/sh"
	cmd.Args = append([]string{"sh", "-c", `read -r _ <&3 || exit 127; exec 3<&-; exec "$0" "$@"`, b.runsc}, args...)
	cmd.ExtraFiles = []*os.File{gateR}
	return cmd, gateR, gateW, nil
}

// forceDelete asks runsc to remove a container whose runsc run was killed
// (only needed without a cgroup, which otherwise kills everything).
func (b *gvisorBackend) forceDelete(d *runDir, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, b.runsc, "--root="+d.state(), "delete", "--force", id).Run()
}

// readChannel reads the runner's result file: whether the runner started
// (it truncates the placeholder) and the frames it wrote, up to byte end
// when end >= 0 (the end of the exit frame that ended the run: a daemon
// thread or child of the code may still have been writing when it was
// killed).
func readChannel(p string, maxFrame int, limit int64, end int64) (started bool, f *guest.Frames) {
	f = &guest.Frames{}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		f.Err = err
		return true, f
	}
	fh := os.NewFile(uintptr(fd), p)
	defer fh.Close()
	var head [len(outUnstarted) + 1]byte
	k, _ := io.ReadFull(fh, head[:])
	if string(head[:k]) == outUnstarted {
		f.Err = errors.New("the runner never started")
		return false, f
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		f.Err = err
		return true, f
	}
	var rd io.Reader = fh
	if end >= 0 {
		rd = io.LimitReader(fh, end)
	}
	f.Read(rd, maxFrame, limit)
	return true, f
}

type finishInput struct {
	started bool
	// exitCode is the runner's exit status, from its exit frame when
	// exitFrame is set, else runsc's exit code (-1 when killed).
	exitCode       int
	exitFrame      bool
	frames         *guest.Frames
	stdout, stderr *guest.Output
	files          []api.OutFile
	filesTruncated bool
	stats          cgroup.Stats
	haveStats      bool
	runscLog       string
}

// runscFailed is runsc's exit code when it fails itself.
const runscFailed = 128

func (b *gvisorBackend) finish(r *run, in finishInput) error {
	res := r.res
	res.Stdout, res.StdoutTruncated = in.stdout.String(), in.stdout.Truncated()
	res.Stderr, res.StderrTruncated = in.stderr.String(), in.stderr.Truncated()
	if in.haveStats {
		res.Usage.PeakMemoryBytes = in.stats.PeakMemoryBytes
		res.Usage.CPUMS = in.stats.CPUNanos / 1e6
	}
	r.mu.Lock()
	timedOut, outputOver, cancelled := r.timedOut, r.outputOver, r.cancelled
	r.mu.Unlock()
	oom := in.haveStats && in.stats.OOMKills > 0
	code := in.exitCode
	// runsc exits with 128+n when the code died of signal n; an exit or
	// result frame means the interpreter went through its normal exit
	// instead.
	signalled := code > runscFailed && code < runscFailed+65 && !in.exitFrame && in.frames.Result == nil

	switch {
	case timedOut:
		res.Status = api.StatusTimeout
		res.Error = fmt.Sprintf("timed out after %s", r.req.Timeout)
	case outputOver:
		res.Status = api.StatusOutputLimit
		res.Error = fmt.Sprintf("output exceeded the %s limit", r.req.OutputLimit)
	case oom:
		res.Status = api.StatusMemoryLimit
		res.Error = fmt.Sprintf("memory limit of %s exceeded", r.req.Memory)
	case cancelled:
		res.Status = api.StatusKilled
		res.Error = "cancelled"
	case in.haveStats && in.stats.PidsLimitHit && in.frames.Result == nil && code != 0:
		// Under ptrace, failed guest forks can leave host stub tasks
		// behind until the host backstop is hit and the sentry dies.
		res.Status = api.StatusKilled
		res.Error = "the sandbox hit its host task limit (gVisor's backstop for the pids limit) and was stopped"
	case !in.started:
		return &SetupError{Msg: runscError(in.exitCode, in.stderr.String(), in.runscLog)}
	case code < 0:
		res.Status = api.StatusKilled
		res.Error = "runsc was killed"
	case signalled:
		res.Signal = unix.SignalName(syscall.Signal(code - runscFailed))
		res.Status = api.StatusKilled
		res.Error = "killed by signal " + res.Signal
	default:
		res.ExitCode = code
		guest.Settle(res, in.frames.Result, in.frames.Err)
	}
	if res.Status == api.StatusSuccess || res.Status == api.StatusRunError {
		res.Files, res.FilesTruncated = in.files, in.filesTruncated
	}
	res.Outputs, res.OutputsTruncated = in.frames.Outputs, in.frames.OutputsTruncated
	return nil
}

// runscError picks the most useful line of runsc's complaint.
func runscError(code int, stderr, log string) string {
	for _, s := range []string{stderr, log} {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		lines := strings.Split(s, "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
	return "runsc exited with code " + strconv.Itoa(code) + " before starting the interpreter"
}
