package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/cgroup"
	"github.com/pybox-dev/pybox/internal/initproc"
	"github.com/pybox-dev/pybox/internal/runner"
)

// HostUIDBase is the host uid (and gid) that the sandbox's root maps to; the
// code itself runs as uid 1000 inside, HostUIDBase+1000 outside. Neither
// owns anything on the host.
const HostUIDBase = 1_000_000_000

const cloneFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID |
	unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP

var namespaces = []string{"user", "pid", "mount", "network", "ipc", "uts", "cgroup"}

// etcFiles are host files and directories under /etc the runtime may need;
// those present are bound read-only. passwd, group, hosts and friends are
// generated instead.
var etcFiles = []string{
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
	"/etc/alternatives", "/etc/fonts", "/etc/matplotlibrc", "/etc/mime.types",
	"/etc/python3", "/etc/python3.11", "/etc/python3.12", "/etc/python3.13",
	"/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/timezone",
}

// passEnv are host variables passed through because they describe the host
// CPU, not the user (older OpenBLAS builds crash without them on some CPUs).
var passEnv = []string{"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}

type nativeBackend struct {
	binds    []string
	symlinks map[string]string
	etc      []string
	cg       cgroup.Info
	cgErr    error
}

func newBackend() (backend.Backend, error) {
	b := &nativeBackend{binds: []string{"/usr"}, symlinks: map[string]string{}}
	// Usr-merged distributions have /bin -> usr/bin and friends: recreate
	// the links; otherwise bind the directories.
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		p := "/" + d
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if t, err := os.Readlink(p); err == nil {
				b.symlinks[d] = t
			}
		case fi.IsDir():
			b.binds = append(b.binds, p)
		}
	}
	for _, f := range etcFiles {
		if _, err := os.Stat(f); err == nil {
			b.etc = append(b.etc, f)
		}
	}
	b.cg, b.cgErr = cgroup.Detect()
	if b.cgErr == nil {
		// Groups left by a pybox that crashed mid-run.
		_ = cgroup.Cleanup()
	}
	return b, nil
}

func (b *nativeBackend) Name() string                    { return Name }
func (b *nativeBackend) Close(ctx context.Context) error { return nil }

// SetupError is a failure to build the sandbox, naming the step.
type SetupError struct {
	Step string
	Err  string
}

func (e *SetupError) Error() string { return "sandbox setup failed at " + e.Step + ": " + e.Err }

// trace makes every run print init's per-step timings to stderr
// (PYBOX_TRACE=1), for profiling the set-up path.
var trace = os.Getenv("PYBOX_TRACE") == "1"

// runSeq numbers runs for unique cgroup names.
var runSeq atomic.Uint64

// run is the state of one execution.
type run struct {
	req   *api.Request
	hooks backend.Hooks
	res   *api.Result

	mu         sync.Mutex
	timedOut   bool
	outputOver bool
	cancelled  bool
}

func (b *nativeBackend) Run(ctx context.Context, req *api.Request, hooks backend.Hooks) (*api.Result, error) {
	start := time.Now()
	r := &run{req: req, hooks: hooks, res: &api.Result{ExitCode: -1}}
	r.res.Isolation = api.Isolation{
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
	err := b.run(ctx, r)
	r.res.Usage.WallMS = time.Since(start).Milliseconds()
	if err != nil {
		r.res.Status = api.StatusSandboxError
		r.res.Error = err.Error()
		return r.res, err
	}
	return r.res, nil
}

// interpreter resolves the interpreter path and, when it lives outside
// /usr, the directory tree that must be mounted for it.
func interpreter(p string) (argv0 string, extraBind string, err error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", "", fmt.Errorf("python interpreter %s: %w", p, err)
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o001 == 0 {
		return "", "", fmt.Errorf("python interpreter %s is not an executable file for everyone", p)
	}
	if strings.HasPrefix(real, "/usr/") {
		return real, "", nil
	}
	// A prefix install: <prefix>/bin/python3 needs <prefix>.
	prefix := filepath.Dir(filepath.Dir(real))
	if prefix == "/" {
		return "", "", fmt.Errorf("python interpreter %s: cannot mount its prefix /", p)
	}
	return real, prefix, nil
}

func (b *nativeBackend) config(req *api.Request) (*initproc.Config, error) {
	argv0, extra, err := interpreter(req.Python)
	if err != nil {
		return nil, &api.InputError{Field: "python", Msg: err.Error()}
	}
	binds := b.binds
	if extra != "" {
		binds = append(append([]string{}, binds...), extra)
	}
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/work",
		"USER=sandbox",
		"LANG=C.UTF-8",
		"TMPDIR=/tmp",
		"MPLBACKEND=Agg",
		"MPLCONFIGDIR=/tmp/.matplotlib",
	}
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(req.Env))
	for k := range req.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+req.Env[k])
	}
	for _, m := range req.Mounts {
		if _, err := os.Stat(m.Host); err != nil {
			return nil, &api.InputError{Field: "mounts", Msg: err.Error()}
		}
	}
	return &initproc.Config{
		Argv:         runner.Args(argv0, fmt.Sprint(initproc.FDRunnerIn), fmt.Sprint(initproc.FDRunnerOut)),
		Env:          env,
		Binds:        binds,
		Symlinks:     b.symlinks,
		EtcFiles:     b.etc,
		Mounts:       req.Mounts,
		Files:        req.Files,
		DiskBytes:    int64(req.Disk),
		CollectFiles: req.CollectFiles,
		FilesLimit:   int64(req.FilesLimit),
		BestEffort:   req.BestEffort,
		Trace:        trace,
	}, nil
}

func (b *nativeBackend) run(ctx context.Context, r *run) error {
	req := r.req
	cfg, err := b.config(req)
	if err != nil {
		return err
	}
	iso := &r.res.Isolation

	// cgroup: memory (+swap), pids, cpu.
	var cg *cgroup.Group
	if b.cgErr == nil {
		cg, err = cgroup.New(cgroup.RunName(runSeq.Add(1)), cgroup.Limits{MemoryBytes: int64(req.Memory), Pids: req.Pids + initproc.InitThreads, CPUs: req.CPUs, AllowSwap: req.BestEffort})
	} else {
		err = b.cgErr
	}
	if err != nil {
		if !req.BestEffort {
			return fmt.Errorf("cgroup limits cannot be enforced: %w (run `pybox doctor`, or set best_effort to run without them)", err)
		}
		iso.Missing = append(iso.Missing, "cgroup: "+err.Error())
	} else {
		defer cg.Delete()
		iso.Cgroup = cg.Version()
		iso.Limits.MemoryBytes = int64(req.Memory)
		iso.Limits.Pids = req.Pids
		iso.Limits.CPUs = req.CPUs
	}

	// Pipes: stdout, stderr, runner in/out, and init's control socket.
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	pipe := func() (*os.File, *os.File, error) {
		rd, wr, err := os.Pipe()
		if err == nil {
			closers = append(closers, rd, wr)
		}
		return rd, wr, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return err
	}
	errR, errW, err := pipe()
	if err != nil {
		return err
	}
	rinR, rinW, err := pipe()
	if err != nil {
		return err
	}
	routR, routW, err := pipe()
	if err != nil {
		return err
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ctrl := os.NewFile(uintptr(sp[0]), "control")
	ctrlChild := os.NewFile(uintptr(sp[1]), "control-child")
	closers = append(closers, ctrl, ctrlChild)

	idmap := []syscall.SysProcIDMap{
		{ContainerID: 0, HostID: HostUIDBase, Size: 1},
		{ContainerID: initproc.SandboxUID, HostID: HostUIDBase + initproc.SandboxUID, Size: 1},
	}
	attr := &syscall.SysProcAttr{
		Cloneflags:                 cloneFlags,
		UidMappings:                idmap,
		GidMappings:                idmap,
		GidMappingsEnableSetgroups: true,
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		Pdeathsig:                  syscall.SIGKILL,
	}
	if cg != nil {
		if fd, ok := cg.FD(); ok {
			attr.UseCgroupFD = true
			attr.CgroupFD = fd
		}
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{initproc.Arg0},
		Env:         []string{},
		Stdout:      outW,
		Stderr:      errW,
		ExtraFiles:  []*os.File{rinR, routW, ctrlChild},
		SysProcAttr: attr,
	}
	started, startedMono := time.Now(), initproc.MonoNow()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sandbox init: %w", err)
	}
	cmdStarted := time.Now()
	// From here on the init process must be reaped whatever happens.
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	for _, f := range []*os.File{outW, errW, rinR, routW, ctrlChild} {
		f.Close()
	}
	if cg != nil {
		if _, ok := cg.FD(); !ok {
			if err := cg.AddProc(cmd.Process.Pid); err != nil {
				return fmt.Errorf("join cgroup: %w", err)
			}
		}
	}
	if err := initproc.WriteFrame(ctrl, cfg); err != nil {
		return fmt.Errorf("send config to sandbox init: %w", err)
	}

	kill := func() {
		if cg != nil {
			_ = cg.Kill()
		}
		_ = cmd.Process.Kill()
	}

	// Feed the runner its one exec frame; EOF afterwards ends it.
	go func() {
		_ = runner.WriteFrame(rinW, runner.NewExec(req.Code, req.Globals))
		rinW.Close()
	}()

	var wg sync.WaitGroup
	var stdout, stderr capture
	limit := int64(req.OutputLimit)
	over := func() {
		r.mu.Lock()
		r.outputOver = true
		r.mu.Unlock()
		kill()
	}
	wg.Add(3)
	go func() { defer wg.Done(); stdout.read(outR, limit, r.hooks.Stdout, over) }()
	go func() { defer wg.Done(); stderr.read(errR, limit, r.hooks.Stderr, over) }()
	var result *runner.Message
	var resultErr error
	go func() {
		defer wg.Done()
		result, resultErr = readResult(routR, limit)
	}()

	// Init's report: ready (or a setup error), exit, files, done.
	ctrlDone := make(chan struct{})
	var ready, exitMsg *initproc.Message
	var files []api.OutFile
	var filesTruncated bool
	var setupErr *SetupError
	go func() {
		defer close(ctrlDone)
		maxFrame := int(req.FilesLimit) + 1<<20
		maxFrame += maxFrame / 3 // base64
		for {
			var m initproc.Message
			if err := initproc.ReadFrame(ctrl, maxFrame, &m); err != nil {
				return
			}
			switch m.Type {
			case "error":
				setupErr = &SetupError{Step: m.Step, Err: m.Error}
				kill()
				return
			case "ready":
				if trace {
					fmt.Fprintf(os.Stderr, "pybox trace: start=%dµs ready after %dµs; steps (µs): %s\n",
						cmdStarted.Sub(started).Microseconds(), time.Since(started).Microseconds(), strings.Join(m.Steps, " ")+fmt.Sprintf(" (start mono %d)", startedMono/1e3))
				}
				mm := m
				ready = &mm
			case "exit":
				mm := m
				exitMsg = &mm
			case "file":
				if m.File != nil {
					files = append(files, *m.File)
				}
				filesTruncated = filesTruncated || m.FilesTruncated
			case "done":
				return
			}
		}
	}()

	timer := time.NewTimer(req.Timeout.D())
	defer timer.Stop()
	waitDone := make(chan error, 1)
	go func() { <-ctrlDone; waitDone <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-waitDone:
	case <-timer.C:
		r.mu.Lock()
		r.timedOut = true
		r.mu.Unlock()
		kill()
		waitErr = <-waitDone
	case <-ctx.Done():
		r.mu.Lock()
		r.cancelled = true
		r.mu.Unlock()
		kill()
		waitErr = <-waitDone
	}
	waited = true
	_ = waitErr
	// The namespace is gone, so every writer of the pipes is dead.
	wg.Wait()

	var stats cgroup.Stats
	if cg != nil {
		stats, _ = cg.Stats()
	}
	return b.finish(r, finishInput{
		ready: ready, exit: exitMsg, setupErr: setupErr,
		result: result, resultErr: resultErr,
		stdout: &stdout, stderr: &stderr,
		files: files, filesTruncated: filesTruncated,
		stats: stats, haveStats: cg != nil,
	})
}

type finishInput struct {
	ready, exit    *initproc.Message
	setupErr       *SetupError
	result         *runner.Message
	resultErr      error
	stdout, stderr *capture
	files          []api.OutFile
	filesTruncated bool
	stats          cgroup.Stats
	haveStats      bool
}

func (b *nativeBackend) finish(r *run, in finishInput) error {
	res := r.res
	res.Stdout, res.StdoutTruncated = in.stdout.String(), in.stdout.truncated
	res.Stderr, res.StderrTruncated = in.stderr.String(), in.stderr.truncated
	if in.haveStats {
		res.Usage.PeakMemoryBytes = in.stats.PeakMemoryBytes
		res.Usage.CPUMS = in.stats.CPUNanos / 1e6
	}
	if in.exit != nil && res.Usage.CPUMS == 0 {
		res.Usage.CPUMS = in.exit.CPUMS
	}
	if in.ready != nil {
		iso := &res.Isolation
		uid := initproc.SandboxUID
		iso.UID = &uid
		iso.Capabilities = "none"
		iso.NoNewPrivs = true
		iso.LandlockABI = in.ready.LandlockABI
		iso.Landlock = in.ready.Landlock
		iso.Seccomp = in.ready.Seccomp
		iso.Missing = append(iso.Missing, in.ready.Missing...)
	}
	if in.exit != nil {
		res.ExitCode = in.exit.ExitCode
		if in.exit.Signal != 0 {
			res.Signal = unix.SignalName(syscall.Signal(in.exit.Signal))
		}
	}
	r.mu.Lock()
	timedOut, outputOver, cancelled := r.timedOut, r.outputOver, r.cancelled
	r.mu.Unlock()
	oom := in.haveStats && in.stats.OOMKills > 0

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
	case in.setupErr != nil:
		return in.setupErr
	case in.ready == nil:
		return errors.New("sandbox init ended before starting the interpreter")
	case in.exit == nil:
		res.Status = api.StatusKilled
		res.Error = "sandbox init was killed"
	case in.exit.Signal != 0:
		res.Status = api.StatusKilled
		res.Error = "killed by signal " + res.Signal
	default:
		b.fromRunner(r, in)
	}
	if res.Status == api.StatusSuccess || res.Status == api.StatusRunError {
		res.Files, res.FilesTruncated = in.files, in.filesTruncated
	}
	return nil
}

// fromRunner sets the status of a run whose interpreter exited normally,
// from its exit code and the runner's result frame.
func (b *nativeBackend) fromRunner(r *run, in finishInput) {
	res := r.res
	m := in.result
	if m != nil {
		res.ReturnValue = m.ReturnValue
		res.Error = m.Error
	}
	switch {
	case res.ExitCode == 0 && (m == nil || m.OK || m.ExitCode != nil):
		// A clean exit without a result frame happens when the code
		// closes the protocol pipe or calls os._exit(0): still success.
		res.Status = api.StatusSuccess
		res.Error = ""
	default:
		res.Status = api.StatusRunError
		if res.Error == "" {
			if in.resultErr != nil && m == nil {
				res.Error = fmt.Sprintf("interpreter exited with code %d without a result (%v)", res.ExitCode, in.resultErr)
			} else {
				res.Error = fmt.Sprintf("interpreter exited with code %d", res.ExitCode)
			}
		}
	}
}

// readResult reads runner frames until EOF and keeps the last result.
func readResult(rd io.Reader, limit int64) (*runner.Message, error) {
	max := int(limit)*2 + 1<<20
	var last *runner.Message
	for {
		b, err := runner.ReadFrame(rd, max)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if last == nil && err == nil {
				err = errors.New("no result frame")
			}
			// Drain so a lying runner cannot block on a full pipe.
			_, _ = io.Copy(io.Discard, rd)
			return last, err
		}
		m, err := runner.DecodeMessage(b)
		if err != nil {
			continue
		}
		if m.Type == "result" {
			mm := m
			last = &mm
		}
	}
}

// capture collects one output stream up to a limit, forwarding chunks live.
type capture struct {
	buf       []byte
	truncated bool
}

func (c *capture) read(rd io.Reader, limit int64, hook func([]byte), over func()) {
	chunk := make([]byte, 32<<10)
	for {
		n, err := rd.Read(chunk)
		if n > 0 {
			data := chunk[:n]
			room := limit - int64(len(c.buf))
			if int64(n) > room {
				data = data[:max(room, 0)]
				if !c.truncated {
					c.truncated = true
					over()
				}
			}
			if len(data) > 0 {
				c.buf = append(c.buf, data...)
				if hook != nil {
					hook(data)
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *capture) String() string { return strings.ToValidUTF8(string(c.buf), "\uFFFD") }
