package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/runner"
)

// Guest paths.
const (
	guestLib  = "/usr/local/lib" // the interpreter's compiled-in prefix + /lib
	guestWork = "/work"
	guestTmp  = "/tmp"
)

// baseEnv is the guest's whole environment before Request.Env; nothing comes
// from the host.
var baseEnv = []string{
	"HOME=" + guestWork,
	"LANG=C.UTF-8",
	"TMPDIR=" + guestTmp,
	"USER=sandbox",
	"PATH=/usr/local/bin:/usr/bin:/bin",
}

// prelude runs before the runner. WASI has no working directory to
// inherit, so it enters /work. It also pays, before the interpreter counts
// as ready, what the runner's first exec would otherwise pay: the first
// compile() to an AST initialises CPython's AST types (~15 ms in wasm).
const prelude = `import os, _ast, _json; os.chdir("` + guestWork + `"); compile("1", "<pybox>", "exec", 0x2400, True)
`

// engine is the wazero runtime and the compiled interpreter, shared by every
// instance of a backend.
type engine struct {
	dir      string
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	// reactor is set for pybox.wasm (entry points _initialize, pybox_init,
	// pybox_run); python.wasm (a command: _start) is the fallback.
	reactor bool
	// shaped is set when the module was loaded through its shape
	// (shape.go): it has no data segments, so the host fills the memory.
	shaped  bool
	info    *modInfo  // reactor with snapshots only
	snap    *snapshot // nil: every instance starts CPython itself
	stdlib  experimentalsys.FS
	args    []string
	tmpBase string

	mu    sync.Mutex
	spare []byte // a memory buffer holding snap, made while the module compiled

	restored atomic.Int64 // instances started from the snapshot
}

// engineOpts configure an engine.
type engineOpts struct {
	// snapshot enables memory snapshots (pybox.wasm only).
	snapshot bool
	// snapDir is where snapshot files are kept ("": in memory only).
	snapDir string
}

// guestArgs is the guest's argv: the runner with the prelude in front.
func guestArgs() []string {
	args := runner.Args("python", pipeIn, pipeOut)
	for i, a := range args[:len(args)-1] {
		if a == "-c" {
			args[i+1] = prelude + args[i+1]
			break
		}
	}
	return args
}

func newEngine(ctx context.Context, o engineOpts) (*engine, error) {
	dir, err := FindDir()
	if err != nil {
		return nil, err
	}
	file := wasmFile
	if fi, err := os.Stat(filepath.Join(dir, reactorFile)); err == nil && fi.Mode().IsRegular() {
		file = reactorFile
	}
	e := &engine{
		dir:     dir,
		reactor: file == reactorFile,
		stdlib:  &sysfs.ReadFS{FS: sysfs.DirFS(filepath.Join(dir, "lib"))},
		args:    guestArgs(),
		tmpBase: os.TempDir(),
	}
	binPath := filepath.Join(dir, file)
	binID, _ := fileID(binPath)
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	snapshots := e.reactor && o.snapshot
	if snapshots {
		if id, err := fileID(binPath); err != nil || binID == nil || string(id) != string(binID) {
			slog.Debug("wasm: no snapshot: the module changed while being read", "file", binPath)
			snapshots = false
		} else if e.info, err = parseModule(bin); err == nil {
			err = snapshotable(e.info)
		}
		if err != nil {
			slog.Debug("wasm: no snapshot: the module cannot be snapshotted", "err", err)
			snapshots, e.info = false, nil
		}
	}
	// The snapshot is looked for (and its first memory buffer filled) while
	// wazero loads the module, which takes most of a cold start on one core.
	var loaded chan snapLoad
	if snapshots {
		loaded = make(chan snapLoad, 1)
		go func() { loaded <- e.loadSnapshot(binID, o.snapDir) }()
	}
	cfg := runtimeConfig()
	cd := cacheDir()
	if cd != "" {
		if err := os.MkdirAll(cd, 0o700); err == nil {
			if cache, err := wazero.NewCompilationCacheWithDir(cd); err == nil {
				cfg = cfg.WithCompilationCache(cache)
			} else {
				cd = ""
			}
		} else {
			cd = ""
		}
	}
	e.rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	fail := func(err error) (*engine, error) {
		if loaded != nil {
			<-loaded
		}
		e.rt.Close(ctx)
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		return fail(fmt.Errorf("wasi: %w", err))
	}
	if snapshots && cd != "" && shapeEnabled() {
		if e.compiled, err = e.compileShape(ctx, cd, bin, binID); err == nil {
			e.shaped = true
		} else {
			slog.Debug("wasm: loading the module's shape failed; compiling it in full", "err", err)
		}
	}
	if e.compiled == nil {
		if e.compiled, err = e.rt.CompileModule(ctx, bin); err != nil {
			return fail(fmt.Errorf("compile %s: %w", file, err))
		}
	}
	if loaded != nil {
		e.useSnapshot(ctx, <-loaded, o.snapDir)
	}
	return e, nil
}

// compileShape loads the module through its shape (shape.go), preparing
// the shape's cache entry first if needed. An entry that fails to load is
// removed and prepared again, once.
func (e *engine) compileShape(ctx context.Context, cacheDir string, bin, binID []byte) (wazero.CompiledModule, error) {
	shape, err := makeShape(bin, binID)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		entry, st, err := readShapeMarker(cacheDir, shape)
		if err != nil {
			start := time.Now()
			if err := prepareShape(ctx, cacheDir, bin, shape); err != nil {
				return nil, fmt.Errorf("prepare the shape: %w", err)
			}
			slog.Debug("wasm: prepared the module's shape", "took", time.Since(start))
			if entry, st, err = readShapeMarker(cacheDir, shape); err != nil {
				return nil, err
			}
		}
		c, err := e.rt.CompileModule(ctx, shape)
		if err == nil {
			if now, serr := statEntry(entry); serr == nil && now == st {
				return c, nil
			}
			// A miss (the stubs were compiled) or a stale entry: never
			// run that.
			_ = c.Close(ctx)
			err = errors.New("the shape's cache entry was not the one loaded")
		}
		_ = os.Remove(shapeMarkerPath(cacheDir, shape))
		_ = os.Remove(entry)
		if attempt > 0 {
			return nil, err
		}
		slog.Debug("wasm: the module's shape did not load; preparing it again", "err", err)
	}
}

func (e *engine) close(ctx context.Context) error { return e.rt.Close(ctx) }

// Causes of an instance being stopped by the host.
var (
	errTimeout  = errors.New("timeout")
	errOutput   = errors.New("output limit")
	errMemory   = errors.New("memory limit")
	errKilled   = errors.New("cancelled")
	errShutdown = errors.New("backend closed")
	errFinished = errors.New("run finished")
)

// instanceOpts are what must be fixed when an interpreter starts.
type instanceOpts struct {
	env    map[string]string
	mounts []api.Mount
	memory int64
}

func (o instanceOpts) pooled() bool { return len(o.env) == 0 && len(o.mounts) == 0 }

// instance is one interpreter: started, then used for exactly one exec.
type instance struct {
	runDir  string
	workDir string
	work    *quota
	tmp     *quota
	mem     memLimit
	pipes   *pipeFS
	inW     *io.PipeWriter
	outR    *io.PipeReader
	outW    *io.PipeWriter
	stdout  capture
	stderr  capture
	ctx     context.Context
	stop    context.CancelCauseFunc
	started time.Time

	done     chan struct{} // closed when the guest's functions returned
	exitCode int           // valid after done; -1 if it trapped
	exitErr  error         // a trap or a host stop; nil on proc_exit
}

// start starts an interpreter and runs it until the runner blocks reading
// its exec frame: restored from the snapshot if there is one (and it fits
// the memory limit), else CPython starts from scratch. parent bounds the
// instance's whole life.
func (e *engine) start(parent context.Context, o instanceOpts) (*instance, error) {
	if e.snap != nil && int64(e.snap.size) <= o.memory {
		in, mod, err := e.instantiate(parent, o, e.takeBuffer())
		if err != nil {
			return nil, err
		}
		err = e.restore(in, mod)
		if err == nil {
			e.restored.Add(1)
			in.run(mod, "pybox_run")
			return in, nil
		}
		slog.Debug("wasm: restoring the snapshot failed; starting CPython from scratch", "err", err)
		in.abandon(mod)
	}
	in, mod, err := e.instantiate(parent, o, e.freshMemory())
	if err != nil {
		return nil, err
	}
	if e.shaped && !in.mem.usedPre {
		in.abandon(mod)
		return nil, errors.New("the memory allocator was not used")
	}
	if e.reactor {
		in.run(mod, "_initialize", "pybox_init", "pybox_run")
	} else {
		in.run(mod, "_start")
	}
	return in, nil
}

// instantiate makes a new instance of the module with its own run
// directory, channel and limits, without calling any of its functions. If
// pre is set, the linear memory starts as pre (a snapshot's image).
func (e *engine) instantiate(parent context.Context, o instanceOpts, pre []byte) (*instance, wapi.Module, error) {
	runDir, err := os.MkdirTemp(e.tmpBase, "pybox-wasm-")
	if err != nil {
		return nil, nil, fmt.Errorf("run directory: %w", err)
	}
	in := &instance{runDir: runDir, workDir: filepath.Join(runDir, "work"), done: make(chan struct{}), exitCode: -1, started: time.Now()}
	fail := func(err error) (*instance, wapi.Module, error) {
		_ = os.RemoveAll(runDir)
		return nil, nil, err
	}
	tmpDir := filepath.Join(runDir, "tmp")
	for _, d := range []string{in.workDir, tmpDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fail(fmt.Errorf("run directory: %w", err))
		}
	}
	in.work, in.tmp = &quota{}, &quota{}
	in.work.limit.Store(api.DefaultDisk)
	in.tmp.limit.Store(api.DefaultDisk)
	in.mem.limit.Store(o.memory)
	in.mem.pre = pre
	in.stdout.limit, in.stderr.limit = api.DefaultOutputLimit, api.DefaultOutputLimit

	in.ctx, in.stop = context.WithCancelCause(parent)
	in.mem.hit = func() { in.stop(errMemory) }
	in.stdout.over = func() { in.stop(errOutput) }
	in.stderr.over = in.stdout.over

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	in.inW, in.outR, in.outW = inW, outR, outW
	in.pipes = newPipeFS(inR, outW)
	// Unblock pipe readers and writers as soon as the instance is stopped.
	context.AfterFunc(in.ctx, func() {
		err := context.Cause(in.ctx)
		if errors.Is(err, errFinished) {
			err = nil // the runner sees EOF, as after a one-shot exec
		}
		_ = inR.CloseWithError(err)
		_ = outW.CloseWithError(err)
	})

	// The order of the mounts is the order of the guest's preopened fds: a
	// snapshot was taken with the first four, the request's mounts follow
	// (pybox_run registers them).
	fsc := wazero.NewFSConfig()
	mount := func(f experimentalsys.FS, guest string) {
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(f, guest)
	}
	mount(e.stdlib, guestLib)
	mount(&quotaFS{FS: sysfs.DirFS(in.workDir), q: in.work}, guestWork)
	mount(&quotaFS{FS: sysfs.DirFS(tmpDir), q: in.tmp}, guestTmp)
	mount(in.pipes, pipeDir)
	for _, m := range o.mounts {
		f, err := readOnlyRoot(m.Host)
		if err != nil {
			return fail(&api.InputError{Field: "mounts", Msg: err.Error()})
		}
		mount(f, m.Guest)
	}

	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(e.args...).
		WithStdin(eofReader{}).
		WithStdout(&in.stdout).
		WithStderr(&in.stderr).
		WithFSConfig(fsc).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(func(ns int64) {
			t := time.NewTimer(time.Duration(ns))
			defer t.Stop()
			select {
			case <-t.C:
			case <-in.ctx.Done():
			}
		}).
		WithRandSource(rand.Reader).
		WithStartFunctions()
	for _, kv := range baseEnv {
		k, v, _ := cutEnv(kv)
		if _, override := o.env[k]; !override {
			cfg = cfg.WithEnv(k, v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.env)) {
		cfg = cfg.WithEnv(k, o.env[k])
	}

	ictx := experimental.WithMemoryAllocator(in.ctx, in.mem.allocator())
	mod, err := e.rt.InstantiateModule(ictx, e.compiled, cfg)
	if err != nil {
		in.stop(errShutdown)
		return fail(fmt.Errorf("instantiate %s: %w", e.fileName(), err))
	}
	return in, mod, nil
}

// freshMemory is the initial memory of an instance started from scratch:
// nil (the module's data segments fill it), or, for a shaped module, a
// buffer holding pybox.wasm's data segments.
func (e *engine) freshMemory() []byte {
	if !e.shaped {
		return nil
	}
	b := make([]byte, uint64(e.info.minPages)*65536)
	for _, d := range e.info.data {
		copy(b[d.off:], d.b)
	}
	return b
}

func (e *engine) fileName() string {
	if e.reactor {
		return reactorFile
	}
	return wasmFile
}

// run calls the module's functions fns in order in the background (the
// last one runs the runner); in.done is closed when they returned or one
// failed.
func (in *instance) run(mod wapi.Module, fns ...string) {
	go func() {
		defer close(in.done)
		defer func() {
			_ = in.outW.Close()
			_ = mod.Close(context.Background())
		}()
		for i, name := range fns {
			fn := mod.ExportedFunction(name)
			if fn == nil {
				in.exitErr = fmt.Errorf("the module exports no %s", name)
				return
			}
			res, err := fn.Call(in.ctx)
			var exit *sys.ExitError
			switch {
			case err == nil && i < len(fns)-1:
			case err == nil:
				in.exitCode = 0
			case errors.As(err, &exit) && context.Cause(in.ctx) == nil:
				in.exitCode = int(exit.ExitCode())
				return
			default:
				in.exitErr = err
				return
			}
			switch {
			case name == "pybox_init" && len(res) == 1 && res[0] != 0:
				in.exitErr = fmt.Errorf("pybox_init failed (code %d)", int32(res[0]))
				return
			case name == "pybox_run" && len(res) == 1:
				in.exitCode = int(int32(res[0]))
			}
		}
	}()
}

// waitReady waits until the runner reads its channel (it is then idle,
// waiting for an exec frame) or the instance ends.
func (in *instance) waitReady(ctx context.Context) error {
	select {
	case <-in.pipes.ready:
		return nil
	case <-in.done:
		if in.exitErr != nil {
			return fmt.Errorf("interpreter failed to start: %w", in.exitErr)
		}
		return fmt.Errorf("interpreter exited with code %d while starting: %s", in.exitCode, in.stderr.String())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abandon throws away an instance that never ran.
func (in *instance) abandon(mod wapi.Module) {
	_ = mod.Close(context.Background())
	in.stop(errShutdown)
	_ = os.RemoveAll(in.runDir)
}

// discard stops the instance and removes its directory.
func (in *instance) discard(cause error) {
	in.stop(cause)
	<-in.done
	_ = os.RemoveAll(in.runDir)
}

// memSize is the interpreter's current linear memory size.
func (in *instance) memSize() int64 { return in.mem.peak.Load() }

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func cutEnv(kv string) (k, v string, ok bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// capture collects one output stream of the guest up to a limit, forwarding
// chunks live. Past the limit it keeps the prefix and calls over once.
type capture struct {
	mu        sync.Mutex
	frozen    bool // writes after the run's result are dropped
	buf       []byte
	limit     int64
	hook      func([]byte)
	over      func()
	truncated bool
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.frozen {
		c.mu.Unlock()
		return len(p), nil
	}
	data := p
	room := c.limit - int64(len(c.buf))
	overNow := false
	if int64(len(data)) > room {
		data = data[:max(room, 0)]
		if !c.truncated {
			c.truncated = true
			overNow = true
		}
	}
	if len(data) > 0 {
		c.buf = append(c.buf, data...)
	}
	hook := c.hook
	c.mu.Unlock()
	if len(data) > 0 && hook != nil {
		hook(data)
	}
	if overNow && c.over != nil {
		c.over()
	}
	if len(data) < len(p) {
		return len(data), io.ErrShortWrite
	}
	return len(p), nil
}

func (c *capture) set(limit int64, hook func([]byte)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit, c.hook = limit, hook
}

func (c *capture) freeze() {
	c.mu.Lock()
	c.frozen = true
	c.mu.Unlock()
}

func (c *capture) result() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return toValidUTF8(c.buf), c.truncated
}

func (c *capture) String() string { s, _ := c.result(); return s }
