package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
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

// engine is the wazero runtime and the compiled python.wasm, shared by every
// instance of a backend.
type engine struct {
	dir      string
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	stdlib   experimentalsys.FS
	args     []string
	tmpBase  string
}

func newEngine(ctx context.Context) (*engine, error) {
	dir, err := FindDir()
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(filepath.Join(dir, wasmFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", wasmFile, err)
	}
	cfg := wazero.NewRuntimeConfig().WithCloseOnContextDone(true)
	if cd := cacheDir(); cd != "" {
		if err := os.MkdirAll(cd, 0o700); err == nil {
			if cache, err := wazero.NewCompilationCacheWithDir(cd); err == nil {
				cfg = cfg.WithCompilationCache(cache)
			}
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasi: %w", err)
	}
	compiled, err := rt.CompileModule(ctx, bin)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("compile %s: %w", wasmFile, err)
	}
	args := runner.Args("python", pipeIn, pipeOut)
	for i, a := range args[:len(args)-1] {
		if a == "-c" {
			args[i+1] = prelude + args[i+1]
			break
		}
	}
	return &engine{
		dir:      dir,
		rt:       rt,
		compiled: compiled,
		stdlib:   &sysfs.ReadFS{FS: sysfs.DirFS(filepath.Join(dir, "lib"))},
		args:     args,
		tmpBase:  os.TempDir(),
	}, nil
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

	done     chan struct{} // closed when _start returned
	exitCode int           // valid after done; -1 if it trapped
	exitErr  error         // a trap or a host stop; nil on proc_exit
}

// start instantiates python.wasm and runs it until the runner blocks
// reading its exec frame. parent bounds the instance's whole life.
func (e *engine) start(parent context.Context, o instanceOpts) (*instance, error) {
	runDir, err := os.MkdirTemp(e.tmpBase, "pybox-wasm-")
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	in := &instance{runDir: runDir, workDir: filepath.Join(runDir, "work"), done: make(chan struct{}), exitCode: -1, started: time.Now()}
	fail := func(err error) (*instance, error) {
		_ = os.RemoveAll(runDir)
		return nil, err
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
		return fail(fmt.Errorf("instantiate python.wasm: %w", err))
	}
	startFn := mod.ExportedFunction("_start")
	if startFn == nil {
		_ = mod.Close(parent)
		in.stop(errShutdown)
		return fail(errors.New("python.wasm exports no _start"))
	}
	go func() {
		defer close(in.done)
		_, err := startFn.Call(in.ctx)
		var exit *sys.ExitError
		switch {
		case err == nil:
			in.exitCode = 0
		case errors.As(err, &exit) && context.Cause(in.ctx) == nil:
			in.exitCode = int(exit.ExitCode())
		default:
			in.exitErr = err
		}
		_ = outW.Close()
		_ = mod.Close(context.Background())
	}()
	return in, nil
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
