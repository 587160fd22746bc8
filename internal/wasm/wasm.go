// Package wasm is the WebAssembly backend: CPython 3.11 compiled to WASI
// (python.wasm, built by scripts/build-python-wasm.sh) run in-process by
// wazero. It needs no kernel features, so it is the default backend where
// the native one does not exist (macOS, Windows).
//
// # Isolation
//
// The guest is a WebAssembly module: it can touch only its own linear
// memory and the WASI calls wazero implements. It sees /work and /tmp (fresh
// host directories per run, size-capped, no symlinks), the standard library
// read-only at /usr/local/lib, the runner channel at /.pybox, and any
// read-only mounts of the request. It has no network (WASI preview 1 cannot
// create sockets), no processes or threads, and a fixed environment.
//
// # Limits
//
//   - memory: a memory.grow past Request.Memory is refused and the run ends
//     with status memory-limit (the limit covers the guest's linear memory,
//     not the host's own bookkeeping);
//   - timeout and cancellation: the context passed to the guest is
//     cancelled and wazero stops even a spinning guest
//     (WithCloseOnContextDone);
//   - output: stdout and stderr are capped each; past the cap the guest is
//     stopped (status output-limit);
//   - disk: /work and /tmp are each capped at Request.Disk (ENOSPC);
//   - files: collected files are capped at Request.FilesLimit.
//
// Request.Pids is always met (a WASI guest has one thread), Request.CPUs is
// met when it is 1 or more (one thread uses at most one CPU); a fraction of
// a CPU cannot be enforced and is refused unless BestEffort. A custom
// Request.Python and read-write mounts are refused.
//
// # Speed
//
// The backend runs pybox.wasm, CPython linked as a WASI reactor with two
// entry points (scripts/wasm/pybox_entry.c): pybox_init starts CPython and
// compiles the runner, pybox_run runs it. The linear memory right after
// pybox_init is saved once as a snapshot file next to the compilation
// cache (snapshot.go), and every interpreter is a new instance restored
// from it: only pybox_run is called, and it brings the environment,
// mounts and random state up to date. The module itself is loaded through
// its "shape" (shape.go), which skips wazero's validation of the whole
// binary on every process start. Either falls back to the plain way
// (python.wasm or a fresh pybox_init) if it cannot be used.
//
// Compiled machine code is cached on disk across processes (wazero's
// compilation cache) and the compiled module is shared in-process. After the
// second run, a small pool of interpreters is kept started, each blocked
// reading its exec frame; every run still gets a fresh interpreter, used
// once and thrown away.
package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/runner"
)

// Name is the backend's name.
const Name = api.BackendWasm

// defaultPool is how many started interpreters are kept ready.
const defaultPool = 2

func init() { backend.Register(Name, func() (backend.Backend, error) { return New() }) }

// Backend runs requests in python.wasm instances.
type Backend struct {
	poolSize int
	engOpts  engineOpts
	ctx      context.Context // bounds every instance; cancelled by Close
	cancel   context.CancelFunc

	initOnce sync.Once
	eng      *engine
	engErr   error

	mu      sync.Mutex
	runs    int         // runs started, to keep a one-shot process from filling the pool
	ready   []*instance // started, idle, each used once
	filling bool
	closed  bool
	wg      sync.WaitGroup
}

// New returns a wasm backend. python.wasm is located and compiled lazily on
// the first run, so New itself does not fail when it is missing.
func New() (*Backend, error) {
	n := defaultPool
	if s := os.Getenv(EnvPool); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > 64 {
			return nil, fmt.Errorf("%s=%q: want a number from 0 to 64", EnvPool, s)
		}
		n = v
	}
	eo := engineOpts{snapshot: true, snapDir: cacheDir()}
	switch s := os.Getenv(EnvSnapshot); s {
	case "", "1":
	case "0":
		eo.snapshot = false
	default:
		return nil, fmt.Errorf("%s=%q: want 0 or 1", EnvSnapshot, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Backend{poolSize: n, engOpts: eo, ctx: ctx, cancel: cancel}, nil
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return Name }

func (b *Backend) engine() (*engine, error) {
	b.initOnce.Do(func() { b.eng, b.engErr = newEngine(b.ctx, b.engOpts) })
	return b.eng, b.engErr
}

// Check reports whether the backend can run here (python.wasm found and
// compiled).
func (b *Backend) Check() error {
	_, err := b.engine()
	return err
}

// checkRequest refuses what this backend cannot enforce or provide.
func checkRequest(req *api.Request, iso *api.Isolation) error {
	if req.Python != "" && req.Python != api.DefaultPython {
		return &api.InputError{Field: "python", Msg: "the wasm backend runs its own CPython 3.11 (python.wasm); a custom interpreter cannot be used"}
	}
	if req.Net != "" && req.Net != api.NetNone {
		return &api.InputError{Field: "net", Msg: fmt.Sprintf("network mode %q is not available in the wasm backend (it has no network)", req.Net)}
	}
	for _, m := range req.Mounts {
		if m.RW {
			return &api.InputError{Field: "mounts", Msg: fmt.Sprintf("mount of %s: the wasm backend supports read-only mounts only", m.Host)}
		}
	}
	if req.CPUs > 0 && req.CPUs < 1 {
		if !req.BestEffort {
			return &api.InputError{Field: "cpus", Msg: fmt.Sprintf("the wasm backend cannot enforce a quota of %g CPU (it runs on one thread, so any value of 1 or more holds); set best_effort to run without it", req.CPUs)}
		}
		iso.Missing = append(iso.Missing, fmt.Sprintf("cpus: a quota of %g CPU is not enforced (one thread, up to 1 CPU)", req.CPUs))
	}
	return nil
}

// Run implements backend.Backend.
func (b *Backend) Run(ctx context.Context, req *api.Request, hooks backend.Hooks) (*api.Result, error) {
	start := time.Now()
	res := &api.Result{ExitCode: -1}
	res.Isolation = api.Isolation{
		Backend:    Name,
		Network:    api.NetNone,
		Filesystem: "wasi: per-run /work and /tmp (size-capped, no symlinks), stdlib read-only at " + guestLib + ", read-only mounts; no other host files",
		Limits: api.Limits{
			TimeoutMS:   req.Timeout.D().Milliseconds(),
			MemoryBytes: int64(req.Memory),
			Pids:        1,
			OutputBytes: int64(req.OutputLimit),
			DiskBytes:   int64(req.Disk),
		},
	}
	if req.CPUs >= 1 {
		res.Isolation.Limits.CPUs = 1
	}
	fail := func(status string, err error) (*api.Result, error) {
		res.Status = status
		res.Error = err.Error()
		res.Usage.WallMS = time.Since(start).Milliseconds()
		return res, err
	}
	if err := checkRequest(req, &res.Isolation); err != nil {
		return fail(api.StatusInputError, err)
	}
	var total int64
	for _, f := range req.Files {
		total += int64(len(f.Data))
	}
	if total > int64(req.Disk) {
		return fail(api.StatusInputError, &api.InputError{Field: "files", Msg: fmt.Sprintf("%d bytes of input files exceed the %s disk limit", total, req.Disk)})
	}
	eng, err := b.engine()
	if err != nil {
		return fail(api.StatusSandboxError, fmt.Errorf("wasm backend: %w", err))
	}
	opts := instanceOpts{env: req.Env, mounts: req.Mounts, memory: int64(req.Memory)}
	in := b.take(opts)
	if in == nil {
		in, err = eng.start(b.ctx, opts)
		if err != nil {
			var ie *api.InputError
			if errors.As(err, &ie) {
				return fail(api.StatusInputError, err)
			}
			return fail(api.StatusSandboxError, fmt.Errorf("wasm backend: %w", err))
		}
	}
	b.mu.Lock()
	b.runs++
	second := b.runs >= 2
	b.mu.Unlock()
	defer func() {
		b.discard(in)
		if second {
			b.refill()
		}
	}()
	if err := b.exec(ctx, in, req, hooks, res); err != nil {
		var ie *api.InputError
		if errors.As(err, &ie) {
			return fail(api.StatusInputError, err)
		}
		return fail(api.StatusSandboxError, fmt.Errorf("wasm backend: %w", err))
	}
	res.Usage.WallMS = time.Since(start).Milliseconds()
	return res, nil
}

// take returns a pooled interpreter that fits opts, or nil.
func (b *Backend) take(o instanceOpts) *instance {
	if !o.pooled() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.ready) > 0 {
		in := b.ready[0]
		b.ready = b.ready[1:]
		select {
		case <-in.done: // died while idle
			b.discardLocked(in)
			continue
		default:
		}
		if in.memSize() > o.memory {
			// Already larger than this request allows: a fresh instance
			// started under the limit decides what happens.
			b.ready = append(b.ready, in)
			return nil
		}
		return in
	}
	return nil
}

// discard throws a used interpreter away in the background; Close waits
// for it, so no run directory outlives the backend.
func (b *Backend) discard(in *instance) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.discardLocked(in)
}

func (b *Backend) discardLocked(in *instance) {
	if b.closed { // Close may be waiting on wg already
		in.discard(errShutdown)
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		in.discard(errShutdown)
	}()
}

// refill starts interpreters in the background until the pool is full.
// The pool starts filling after the second run, so a one-shot process (the
// CLI) does not spend CPU on an interpreter it will never use, nor wait for
// it in Close.
func (b *Backend) refill() {
	b.mu.Lock()
	if b.closed || b.filling || b.poolSize == 0 || len(b.ready) >= b.poolSize {
		b.mu.Unlock()
		return
	}
	b.filling = true
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		for {
			b.mu.Lock()
			if b.closed || len(b.ready) >= b.poolSize {
				b.filling = false
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			in, err := b.eng.start(b.ctx, instanceOpts{memory: api.MaxMemory})
			if err == nil {
				err = in.waitReady(b.ctx)
				if err != nil {
					in.discard(errShutdown)
				}
			}
			b.mu.Lock()
			if err != nil || b.closed {
				b.filling = false
				b.mu.Unlock()
				if err == nil {
					in.discard(errShutdown)
				}
				return
			}
			b.ready = append(b.ready, in)
			b.mu.Unlock()
		}
	}()
}

// Close implements backend.Backend: it stops pooled interpreters and
// releases the runtime. Runs in flight are stopped too.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ready := b.ready
	b.ready = nil
	b.mu.Unlock()
	b.cancel()
	for _, in := range ready {
		in.discard(errShutdown)
	}
	b.wg.Wait()
	if b.eng != nil {
		return b.eng.close(ctx)
	}
	return nil
}

// exec hands req to a started interpreter and fills res.
func (b *Backend) exec(ctx context.Context, in *instance, req *api.Request, hooks backend.Hooks, res *api.Result) error {
	in.mem.limit.Store(int64(req.Memory))
	in.work.limit.Store(int64(req.Disk))
	in.tmp.limit.Store(int64(req.Disk))
	in.stdout.set(int64(req.OutputLimit), hooks.Stdout)
	in.stderr.set(int64(req.OutputLimit), hooks.Stderr)
	if err := writeInputs(in.workDir, req.Files); err != nil {
		return err
	}
	var inputs int64
	for _, f := range req.Files {
		inputs += int64(len(f.Data))
	}
	in.work.used.Add(inputs)

	// Limits: the timer and the caller's context stop the guest.
	timer := time.AfterFunc(req.Timeout.D(), func() { in.stop(errTimeout) })
	defer timer.Stop()
	stopOnCancel := context.AfterFunc(ctx, func() { in.stop(errKilled) })
	defer stopOnCancel()

	go func() {
		_ = runner.WriteFrame(in.inW, runner.NewExec(req.Code, req.Globals))
		_ = in.inW.Close() // EOF after one frame: a one-shot runner exits
	}()
	var result *runner.Message
	var exitCode *int
	var resultErr error
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		// The run is over once the runner has sent its exit frame (after
		// its result, the atexit handlers and the final flush): stop the
		// interpreter there instead of waiting for CPython to finalize (tens
		// of milliseconds), and so that nothing it does afterwards counts.
		result, exitCode, resultErr = readResult(in.outR, int64(req.OutputLimit), func() {
			in.stdout.freeze()
			in.stderr.freeze()
			in.stop(errFinished)
		})
	}()
	<-in.done
	<-readDone

	res.Stdout, res.StdoutTruncated = in.stdout.result()
	res.Stderr, res.StderrTruncated = in.stderr.result()
	res.Usage.PeakMemoryBytes = in.mem.peak.Load()
	res.ExitCode = in.exitCode
	cause := context.Cause(in.ctx)
	if errors.Is(cause, errFinished) {
		// Stopped right at the exit frame: the exit code is the one the
		// runner exits with (docs/protocol.md). Only the code's own
		// outcome comes from the guest; limit statuses never do.
		cause = nil
		in.exitErr = nil
		res.ExitCode = 1
		switch {
		case exitCode != nil:
			res.ExitCode = *exitCode
		case result != nil && result.ExitCode != nil:
			res.ExitCode = *result.ExitCode
		case result != nil && result.OK:
			res.ExitCode = 0
		}
	}

	switch {
	case errors.Is(cause, errTimeout):
		res.Status = api.StatusTimeout
		res.Error = fmt.Sprintf("timed out after %s", req.Timeout)
	case errors.Is(cause, errOutput):
		res.Status = api.StatusOutputLimit
		res.Error = fmt.Sprintf("output exceeded the %s limit", req.OutputLimit)
	case errors.Is(cause, errMemory):
		res.Status = api.StatusMemoryLimit
		res.Error = fmt.Sprintf("memory limit of %s exceeded", req.Memory)
	case errors.Is(cause, errKilled):
		res.Status = api.StatusKilled
		res.Error = "cancelled"
	case cause != nil:
		res.Status = api.StatusKilled
		res.Error = "stopped: " + cause.Error()
	case in.exitErr != nil:
		// A trap (e.g. the C stack overflowed): the interpreter crashed.
		res.Status = api.StatusRunError
		res.Error = "interpreter crashed: " + firstLine(in.exitErr.Error())
		if result != nil && result.Error != "" {
			res.Error = result.Error
		}
	default:
		guest.Settle(res, result, resultErr)
	}
	if req.CollectFiles && (res.Status == api.StatusSuccess || res.Status == api.StatusRunError) {
		files, truncated, err := collectFiles(in.workDir, int64(req.FilesLimit))
		if err != nil {
			return fmt.Errorf("collect files: %w", err)
		}
		res.Files, res.FilesTruncated = files, truncated
	}
	return nil
}

// readResult reads runner frames until EOF and keeps the last result and
// the exit code of the first exit frame after a result; done is called at
// that exit frame.
func readResult(rd io.Reader, limit int64, done func()) (*runner.Message, *int, error) {
	maxFrame := int(limit)*2 + 1<<20
	var last *runner.Message
	var exit *int
	for {
		b, err := runner.ReadFrame(rd, maxFrame)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if last == nil && err == nil {
				err = errors.New("no result frame")
			}
			_, _ = io.Copy(io.Discard, rd)
			return last, exit, err
		}
		m, err := runner.DecodeMessage(b)
		if err != nil {
			continue
		}
		switch {
		case m.Type == runner.TypeResult:
			mm := m
			last = &mm
		case m.Type == runner.TypeExit && last != nil && exit == nil:
			exit = m.ExitCode
			if done != nil {
				done()
				done = nil
			}
		}
	}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// WaitPool blocks until the pool of started interpreters is full (starting
// it if needed), for benchmarks and servers that want warm runs at once.
func (b *Backend) WaitPool(ctx context.Context) error {
	if _, err := b.engine(); err != nil {
		return err
	}
	for {
		b.mu.Lock()
		n, closed := len(b.ready), b.closed
		b.mu.Unlock()
		if closed {
			return errors.New("wasm backend closed")
		}
		if n >= b.poolSize {
			return nil
		}
		b.refill()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}
