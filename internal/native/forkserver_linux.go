package native

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/cgroup"
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/initproc"
	"github.com/pybox-dev/pybox/internal/landlock"
	"github.com/pybox-dev/pybox/internal/runner"
	"github.com/pybox-dev/pybox/internal/zygote"
)

// Fork-server tuning. A template is replaced after MaxForks executions or
// MaxAge (its children share its address-space layout and heap, so it must
// not live forever), and at once on any sign of trouble. Its successor
// boots in the background once it has served three quarters of MaxForks
// (successorDue) or nine tenths of MaxAge (also when idle: a timer), and
// takes over as soon as it is ready: no execution falls back to a cold
// start at the switch (a fork server at 400 executions/s reaches MaxForks
// every 5 s).
var (
	MaxForks = 2000             // a variable for tests
	MaxAge   = 10 * time.Minute // a variable for tests
)

func successorAge() time.Duration { return MaxAge * 9 / 10 }

const (
	templateBoot  = 2 * time.Minute
	templateLimit = 1 << 30 // memory of the template sandbox itself
	// retryAfter spaces attempts to start a template that failed.
	retryAfter = 30 * time.Second
)

// forkServer is one template sandbox serving one policy.
type forkServer struct {
	key   string
	sb    *sandbox
	conn  *net.UnixConn
	born  time.Time
	iso   api.Isolation
	ready zygote.Reply

	// mu serialises fork requests on conn.
	mu  sync.Mutex
	seq uint64
	// forks counts fork requests (read without mu: usable, successorDue).
	forks atomic.Int64
	// ageTimer boots the successor of an idle template (set under the
	// backend's fsMu, once it serves).
	ageTimer *time.Timer

	// inflight counts executions whose processes live in the template's
	// pid namespace: closing the template would kill them.
	inflight sync.WaitGroup
	state    sync.Mutex
	broken   bool

	// running counts executions on the template now; prep is the kit
	// holding its prepared spare (prepare_linux.go), prepWG the spares
	// being prepared (preparing: one is), retired set once retire began.
	running   atomic.Int32
	prepMu    sync.Mutex
	prep      *prepared
	prepWG    sync.WaitGroup
	preparing bool
	retired   bool
}

// Configure implements backend.Configurable.
func (b *nativeBackend) Configure(o backend.Options) {
	b.fsMu.Lock()
	defer b.fsMu.Unlock()
	b.forkServer = o.ForkServer
	if o.Preload != nil {
		b.preload = o.Preload
	}
}

// policyKey groups requests that may share a template: everything that
// shapes the template's sandbox. Limits, files, code and timeouts are per
// execution.
func policyKey(req *api.Request) string {
	k := struct {
		Python     string
		Mounts     []api.Mount
		Env        map[string]string
		BestEffort bool
	}{req.Python, req.Mounts, req.Env, req.BestEffort}
	b, _ := json.Marshal(k)
	return string(b)
}

// leanNames are modules whose import pulls in numpy: code that names one of
// them (or a preloaded module) is served by the template with the preloads.
var leanNames = []string{"pandas", "scipy", "matplotlib", "sklearn", "seaborn", "statsmodels", "pyarrow", "numba"}

// lean says whether req goes to its policy's lean template, which
// preloads nothing: when the code names no preloaded module and no module
// that imports numpy. A lean template is a smaller process, so forking it
// and tearing its child down costs less; code that imports a preloaded
// module without naming it (through __import__, say) still works, it just
// imports it itself.
func (b *nativeBackend) lean(req *api.Request) bool {
	if len(b.preload) == 0 {
		return false
	}
	for _, m := range b.preload {
		if top, _, _ := strings.Cut(m, "."); strings.Contains(req.Code, top) {
			return false
		}
	}
	if slices.Contains(b.preload, "numpy") {
		for _, m := range leanNames {
			if strings.Contains(req.Code, m) {
				return false
			}
		}
	}
	return true
}

// leanKey is the key of a policy's lean template.
func leanKey(policy string) string { return policy + " lean" }

// warm returns a ready template for req, or nil (and starts one in the
// background) when none is ready yet.
func (b *nativeBackend) warm(req *api.Request) *forkServer {
	b.fsMu.Lock()
	defer b.fsMu.Unlock()
	if !b.forkServer {
		return nil
	}
	policy, lean := policyKey(req), b.lean(req)
	key := policy
	if lean {
		key = leanKey(policy)
	}
	fs := b.servers[key]
	if fs != nil && !fs.usable() {
		delete(b.servers, key)
		go fs.retire()
		fs = nil
	}
	if fs == nil || fs.successorDue() {
		b.startLocked(key, lean, req)
	}
	// A policy's two templates (with and without the preloads) start
	// together: the next request may well want the other one.
	if len(b.preload) > 0 {
		other := leanKey(policy)
		if lean {
			other = policy
		}
		if b.servers[other] == nil {
			b.startLocked(other, !lean, req)
		}
	}
	if fs != nil {
		fs.inflight.Add(1)
	}
	return fs
}

// startLocked boots the template key in the background unless it is
// booting or failed recently. The caller holds fsMu.
func (b *nativeBackend) startLocked(key string, lean bool, req *api.Request) {
	if b.starting[key] || time.Since(b.fsFailed[key]) <= retryAfter {
		return
	}
	b.starting[key] = true
	r := *req
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		nfs, err := b.startServer(&r, lean)
		b.fsMu.Lock()
		defer b.fsMu.Unlock()
		delete(b.starting, key)
		if err != nil {
			b.fsFailed[key] = time.Now()
			return
		}
		if b.closed || !b.forkServer {
			nfs.retire() // under fsMu: nothing runs on it yet
			return
		}
		if old := b.servers[key]; old != nil {
			// A successor (successorDue): the old template finishes the
			// executions it has and goes.
			go old.retire()
		}
		b.servers[key] = nfs
		// Its successor boots on time even if no request comes to find
		// it old (that request would have run cold).
		nfs.ageTimer = time.AfterFunc(successorAge(), func() {
			b.fsMu.Lock()
			defer b.fsMu.Unlock()
			if !b.closed && b.forkServer && b.servers[key] == nfs {
				b.startLocked(key, lean, &r)
			}
		})
		// A template serves this policy now: free its pooled sandboxes.
		for _, sb := range b.drainPool(policyKey(&r)) {
			go sb.destroy()
		}
	}()
}

func (fs *forkServer) usable() bool {
	fs.state.Lock()
	defer fs.state.Unlock()
	if fs.broken || time.Since(fs.born) > MaxAge {
		return false
	}
	select {
	case <-fs.sb.ctrlDone:
		return false
	default:
	}
	return fs.forks.Load() < int64(MaxForks)
}

// successorDue says whether the template is near its end (MaxForks, MaxAge):
// time to boot its successor.
func (fs *forkServer) successorDue() bool {
	if time.Since(fs.born) > successorAge() {
		return true
	}
	return fs.forks.Load() >= int64(MaxForks)*3/4
}

func (fs *forkServer) breakDown() {
	fs.state.Lock()
	fs.broken = true
	fs.state.Unlock()
}

// retire waits for the template's executions to end, then destroys it.
func (fs *forkServer) retire() {
	if fs.ageTimer != nil {
		fs.ageTimer.Stop()
	}
	fs.inflight.Wait()
	fs.stopPreparing()
	fs.conn.Close()
	fs.sb.destroy()
	fs.dropPrepared()
}

// closeServers retires every template (Backend.Close).
func (b *nativeBackend) closeServers() {
	b.fsMu.Lock()
	b.closed = true
	servers := b.servers
	b.servers = map[string]*forkServer{}
	pooled := b.drainPool("")
	b.fsMu.Unlock()
	// Templates still booting and pools still filling see closed and
	// destroy what they made.
	b.bg.Wait()
	var wg sync.WaitGroup
	for _, sb := range pooled {
		wg.Add(1)
		go func() { defer wg.Done(); sb.destroy() }()
	}
	for _, fs := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); fs.retire() }()
	}
	wg.Wait()
	b.drainCgroups()
	b.deletes.Wait()
}

// startServer boots a template sandbox for req's policy.
func (b *nativeBackend) startServer(req *api.Request, lean bool) (*forkServer, error) {
	if os.Getenv("PYBOX_FORK_TEMPLATES") == "0" {
		// The operator wants no templates (for instance an interpreter
		// without ctypes): only the pool of pre-booted sandboxes.
		return nil, errors.New("fork server: templates disabled by PYBOX_FORK_TEMPLATES=0")
	}
	treq := *req
	treq.Memory = templateLimit
	treq.Pids = 64
	treq.CPUs = 0
	treq.Timeout = api.Duration(templateBoot)
	cfg, err := b.config(&treq)
	if err != nil {
		return nil, err
	}
	cfg.Template = true
	tf := templateFilter()
	if tf.err != nil && !req.BestEffort {
		return nil, fmt.Errorf("seccomp filter: %w", tf.err)
	}
	cfg.SeccompFilter, cfg.SeccompSummary = tf.raw, tf.summary
	cfg.CollectFiles = false
	cfg.Files = nil
	cfg.Argv = []string{cfg.Argv[0], "-I", "-S", "-B", "-c", zygote.Source, "3", "4"}
	cfg.RunnerCode = nil
	// One thread, whatever the request says: fork from a threaded process
	// can deadlock, and BLAS thread pools would be half-copied into every
	// child. Children put the request's values back (or remove these), so
	// that the code and what it starts see the request's environment.
	childEnv := map[string]*string{}
	for _, k := range []string{"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"} {
		cfg.Env = slices.DeleteFunc(cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
		cfg.Env = append(cfg.Env, k+"=1")
		if v, set := req.Env[k]; set {
			childEnv[k] = &v
		} else {
			childEnv[k] = nil
		}
	}

	lmasks, linfo, err := landlock.PlanMasks(landlock.Config{DenyNet: true, Scope: true, BestEffort: req.BestEffort})
	if err != nil {
		return nil, err
	}
	cf := childFilter()
	if cf.err != nil {
		return nil, cf.err
	}
	filter := cf.raw

	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	parent := os.NewFile(uintptr(sp[0]), "zygote")
	child := os.NewFile(uintptr(sp[1]), "zygote-child")
	c, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		child.Close()
		return nil, err
	}
	conn := c.(*net.UnixConn)
	sb, err := b.startWith(&treq, cfg, child)
	if err != nil {
		conn.Close()
		return nil, err
	}
	fail := func(err error) (*forkServer, error) {
		conn.Close()
		sb.destroy()
		return nil, err
	}
	// The template writes nothing to its stdout and stderr; drain them
	// anyway so it can never block on them, and keep the tail for errors.
	var tail guest.Output
	go tail.Read(sb.outR, 64<<10, nil, func() {})
	go tail.Read(sb.errR, 64<<10, nil, func() {})
	go func() { _, _ = io.Copy(io.Discard, sb.routR) }()

	select {
	case <-sb.readyCh:
	case <-time.After(templateBoot):
		return fail(errors.New("fork server: template did not start"))
	}
	sb.mu.Lock()
	setupErr := sb.setupErr
	sb.mu.Unlock()
	if setupErr != nil {
		return fail(setupErr)
	}
	var lm *landlock.Masks
	if len(linfo.Enforced) > 0 {
		lm = &lmasks
	}
	preload := b.preload
	if lean {
		preload = []string{}
	}
	zc := zygote.Config{
		Type: "config", Runner: runner.Source, Preload: preload, Seccomp: filter, Landlock: lm,
		RO: []string{"/"}, RW: []string{"/work", "/tmp", "/dev/shm"},
		RWFiles:  []string{"/dev/null", "/dev/zero", "/dev/full"},
		ChildEnv: childEnv, Trace: trace,
	}
	msg, err := json.Marshal(zc)
	if err != nil {
		return fail(err)
	}
	_ = conn.SetDeadline(time.Now().Add(templateBoot))
	if _, err := conn.Write(msg); err != nil {
		return fail(fmt.Errorf("fork server: send config: %w", err))
	}
	var ready zygote.Reply
	buf := make([]byte, 64<<10)
	n, err := conn.Read(buf)
	if err == nil {
		err = json.Unmarshal(buf[:n], &ready)
	}
	if err != nil || ready.Type != "ready" {
		return fail(fmt.Errorf("fork server: template failed to start: %v %s", err, tail.String()))
	}
	_ = conn.SetDeadline(time.Time{})

	iso := sb.isolation()
	iso.Landlock = linfo.Enforced
	iso.LandlockABI = linfo.ABI
	iso.Missing = append(iso.Missing, linfo.Missing...)
	iso.Seccomp += "; " + cf.summary
	iso.Filesystem = "fork server: per execution new pid, mount, ipc, uts, network and cgroup namespaces (the user namespace and the read-only root are the template's), fresh /proc, tmpfs /work, /tmp and /dev/shm"
	iso.ForkServer = true
	return &forkServer{key: policyKey(req), sb: sb, conn: conn, born: time.Now(), iso: iso, ready: ready}, nil
}

// errForkFailed means the template could not fork: nothing of the request
// ran, so the caller runs it cold instead.
var errForkFailed = errors.New("fork server: fork failed")

// forkRequest is the per-execution header sent with the fds.
type forkRequest struct {
	Type       string `json:"type"`
	ID         uint64 `json:"id"`
	Disk       int64  `json:"disk"`
	Collect    bool   `json:"collect,omitempty"`
	FilesLimit int64  `json:"files_limit,omitempty"`
	// Files says input files follow on the config pipe.
	Files bool `json:"files,omitempty"`
	// Prepared names the cgroup of the template's prepared spare when the
	// execution took that kit (prepare_linux.go).
	Prepared *uint64 `json:"prepared,omitempty"`
}

// fork asks the template for one child, handing it fds.
func (fs *forkServer) fork(fr forkRequest, fds []int) (zygote.Reply, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.seq++
	fs.forks.Add(1)
	fr.Type, fr.ID = "fork", fs.seq
	var r zygote.Reply
	msg, err := json.Marshal(fr)
	if err != nil {
		return r, err
	}
	_ = fs.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer fs.conn.SetDeadline(time.Time{})
	if _, _, err := fs.conn.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		return r, fmt.Errorf("fork server: send: %w", err)
	}
	buf := make([]byte, 4096)
	n, err := fs.conn.Read(buf)
	if err != nil {
		return r, fmt.Errorf("fork server: no answer: %w", err)
	}
	if err := json.Unmarshal(buf[:n], &r); err != nil || r.ID != fs.seq {
		return r, fmt.Errorf("fork server: bad answer %q", buf[:n])
	}
	if r.Type != "forked" {
		return r, fmt.Errorf("fork server: %s", r.Error)
	}
	return r, nil
}

// runWarm runs one request in a fresh sandbox forked from fs. The caller
// holds fs.inflight.
func (b *nativeBackend) runWarm(ctx context.Context, fs *forkServer, req *api.Request, hooks backend.Hooks, res *api.Result) error {
	defer fs.inflight.Done()
	var tr []string
	var trMu sync.Mutex
	t0 := time.Now()
	mark := func(what string) {
		if trace {
			trMu.Lock()
			tr = append(tr, fmt.Sprintf("%s=%d", what, time.Since(t0).Microseconds()))
			trMu.Unlock()
		}
	}
	if trace {
		defer func() {
			trMu.Lock()
			defer trMu.Unlock()
			fmt.Fprintf(os.Stderr, "pybox trace: warm run (µs since start): %s\n", strings.Join(tr, " "))
		}()
	}
	res.Isolation = fs.iso
	res.Isolation.Limits = api.Limits{
		TimeoutMS: req.Timeout.D().Milliseconds(), OutputBytes: int64(req.OutputLimit), DiskBytes: int64(req.Disk),
	}
	limits := cgroup.Limits{MemoryBytes: int64(req.Memory), Pids: req.Pids, CPUs: req.CPUs, AllowSwap: req.BestEffort}
	fs.started()
	defer fs.ended(b, limits, int64(req.Disk))
	var preparedID *uint64
	var kit *warmKit
	if p := fs.takePrepared(limits, int64(req.Disk)); p != nil {
		kit, preparedID = p.kit, &p.id
	} else {
		var err error
		if kit, err = b.runKit(limits); err != nil {
			return fmt.Errorf("cgroup limits cannot be enforced: %w", err)
		}
	}
	cg := kit.cg
	// The template's report on the status pipe ends with done once the
	// execution's pid namespace is gone, holder included (zygote.py's
	// make_holder); the Result need not wait for it (see below), but the
	// cgroup's reuse does: until then the holder keeps the execution's
	// memory charged to it. stDone is closed once the report is read.
	var stDone chan struct{}
	stR := kit.pipes[pipeStatus].ours
	// Removing a cgroup takes ~1 ms (v1 memory controller): do it after
	// the Result is returned, or reuse the group for a later run with the
	// same limits (recycle). Delete kills anything left first.
	b.deletes.Add(1)
	defer func() {
		done := stDone
		go func() {
			defer b.deletes.Done()
			if done != nil {
				select {
				case <-done:
				case <-time.After(reportGrace):
					stR.Close()
					<-done
				}
			}
			stR.Close()
			b.recycle(limits, cg)
		}()
	}()
	defer kit.closeFiles(stR)
	mark("cgroup")
	res.Isolation.Cgroup = cg.Version()
	res.Isolation.Limits.MemoryBytes = int64(req.Memory)
	res.Isolation.Limits.Pids = req.Pids
	res.Isolation.Limits.CPUs = req.CPUs

	fr := forkRequest{Disk: int64(req.Disk), Collect: req.CollectFiles, FilesLimit: int64(req.FilesLimit), Files: len(req.Files) > 0,
		Prepared: preparedID}
	// The input files' and the collected files' pipes only when there
	// are some; the template gets /dev/null in their place otherwise.
	if fr.Files {
		if err := kit.openPipe(pipeCfg); err != nil {
			return err
		}
	}
	if fr.Collect {
		if err := kit.openPipe(pipeFiles); err != nil {
			return err
		}
	}
	ps := kit.pipes
	cfgW, outR, errR, rinW, routR, fiR := ps[pipeCfg].ours, ps[pipeOut].ours, ps[pipeErr].ours, ps[pipeRin].ours, ps[pipeRout].ours, ps[pipeFiles].ours
	fds, err := kit.forkFDs()
	if err != nil {
		return err
	}
	mark("pipes")
	// The input files and the code go into their pipes now: the child
	// reads them only once it is in its cgroup, and so finds them there
	// at once. (If the fork fails, closing the pipes ends the writers.)
	if fr.Files {
		var ex zygote.Exec
		for _, f := range req.Files {
			ex.Files = append(ex.Files, zygote.File{Name: f.Name, Data: f.Data, Mode: f.Mode})
		}
		go func() { _ = initproc.WriteFrame(cfgW, &ex); cfgW.Close() }()
	}
	go func() { _ = runner.WriteFrame(rinW, runner.NewExec(req.Code, req.Globals)); rinW.Close() }()
	reply, err := fs.fork(fr, fds)
	if err != nil {
		fs.breakDown()
		if trace {
			fmt.Fprintf(os.Stderr, "pybox trace: fork failed: %v\n", err)
		}
		return fmt.Errorf("%w: %v", errForkFailed, err)
	}
	mark("forked")
	if trace {
		tr = append(tr, fmt.Sprintf("(template: spare=%v prepared=%v took=%d woke=%d faults=%d)", reply.Spare, preparedID != nil, reply.TookUS, reply.WokeUS, reply.Faults))
	}
	kit.closeTheirs()

	var flags limitFlags
	kill := func() { _ = cg.Kill() }
	var wg sync.WaitGroup
	var stdout, stderr guest.Output
	var frames guest.Frames
	limit := int64(req.OutputLimit)
	over := func() { flags.set(&flags.outputOver); kill() }
	wg.Add(3)
	go func() { defer wg.Done(); stdout.Read(outR, limit, hooks.Stdout, over); mark("out") }()
	go func() { defer wg.Done(); stderr.Read(errR, limit, hooks.Stderr, over); mark("err") }()
	go func() { defer wg.Done(); frames.Read(routR, int(limit)*2+1<<20, limit); mark("frames") }()

	// The template's report on the status pipe: a setup error (written
	// by the child before any user code ran), then the exit status and
	// done. Collected files come on their own pipe from the code's
	// process: its own output, untrusted like the runner's frames.
	var exit *initproc.Message
	var setupErr *SetupError
	stDone = make(chan struct{})
	exited := make(chan struct{}) // closed once exit is set
	go func() {
		defer close(stDone)
		for {
			var m initproc.Message
			if err := initproc.ReadFrame(stR, 1<<20, &m); err != nil {
				return
			}
			switch m.Type {
			case "error":
				setupErr = &SetupError{Step: m.Step, Err: m.Error}
			case "exit":
				mark("exit")
				if exit == nil {
					mm := m
					exit = &mm
					close(exited)
				}
			case "done":
				mark("done")
				return
			}
		}
	}()
	var files []api.OutFile
	var filesTruncated bool
	collectFiles := func() {
		defer wg.Done()
		budget := int64(req.FilesLimit)
		maxFrame := int(req.FilesLimit)*4/3 + 1<<20
		for {
			var m initproc.Message
			if err := initproc.ReadFrame(fiR, maxFrame, &m); err != nil {
				_, _ = io.Copy(io.Discard, fiR)
				mark("files")
				return
			}
			if m.Type != "file" {
				continue
			}
			filesTruncated = filesTruncated || m.FilesTruncated
			if f := m.File; f != nil {
				if c, err := api.CleanFileName(f.Name); err != nil || c != f.Name || int64(len(f.Data)) > budget {
					filesTruncated = true
					continue
				}
				f.Size = int64(len(f.Data))
				budget -= f.Size
				files = append(files, *f)
			}
		}
	}
	if fr.Collect {
		wg.Add(1)
		go collectFiles()
	}

	// The report is complete at done, or at the exit status when the
	// execution's cgroup is empty by then: the code's process is reaped,
	// nothing it started is left (every process of the execution but the
	// holder, which runs nothing, is in that cgroup, and only a process
	// there can add one), and the pid namespace's end, which frees the
	// memory, is left to run after the Result. Empty here is the pids
	// counter at 0 (one read, where cgroup.procs is a file per
	// hierarchy): the child joins every hierarchy of the cgroup, pids
	// among them, before anything of the user's runs, so every process
	// of the code is charged there from its fork until it is reaped.
	done := false
	checkEmpty := func() {
		exited = nil // asked once
		n, err := cg.PidsCurrent()
		done = err == nil && n == 0
	}
	timer := time.NewTimer(req.Timeout.D())
	defer timer.Stop()
	timeout, cancelled, retired := timer.C, ctx.Done(), fs.sb.ctrlDone
	var grace <-chan time.Time // once the code was killed
	killed := func() {
		kill()
		timeout, cancelled, retired = nil, nil, nil
		grace = time.After(reportGrace)
	}
	for !done {
		select {
		case <-stDone:
			done = true
		case <-exited:
			checkEmpty()
		case <-timeout:
			flags.set(&flags.timedOut)
			killed()
		case <-cancelled:
			flags.set(&flags.cancelled)
			killed()
		case <-retired:
			fs.breakDown()
			killed()
		case <-grace:
			// The template stopped reporting (it is wedged or gone): never
			// wait for it forever. Retire it and end the execution with
			// what was observed; everything in the cgroup is killed below.
			fs.breakDown()
			kill()
			stR.Close()
			<-stDone
			done = true
		}
	}
	// The code's process has exited (or was killed with everything in
	// the cgroup): the pipes' writers are gone once the cgroup is empty.
	if exit == nil {
		kill()
	}
	wg.Wait()
	mark("streams")
	st, serr := cg.Stats()
	in := outcome{
		ready: &initproc.Message{}, exit: exit, setupErr: setupErr,
		frames: &frames, stdout: &stdout, stderr: &stderr,
		stats: st, haveStats: serr == nil,
	}
	in.timedOut, in.outputOver, in.cancelled = flags.get()
	if err := settle(req, res, in); err != nil {
		return err
	}
	if res.Status == api.StatusSuccess || res.Status == api.StatusRunError {
		res.Files, res.FilesTruncated = files, filesTruncated
	}
	return nil
}

// reportGrace is how long an execution waits, once its code ended or was
// killed, for the template's report of its exit status.
const reportGrace = 5 * time.Second

// preloadDefault is what templates import when the caller names nothing:
// numpy, if the interpreter has it (the template reports what failed).
var preloadDefault = []string{"numpy"}
