package pybox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
)

// The request and result schema. They are aliases of the internal api types
// so that backends share them without import cycles.
type (
	Request   = api.Request
	File      = api.File
	Mount     = api.Mount
	Result    = api.Result
	Output    = api.Output
	OutFile   = api.OutFile
	Usage     = api.Usage
	Isolation = api.Isolation
	Limits    = api.Limits
	Size      = api.Size
	Duration  = api.Duration
	// InputError says which request field is wrong.
	InputError = api.InputError
)

// Status values of a Result.
const (
	StatusSuccess      = api.StatusSuccess
	StatusRunError     = api.StatusRunError
	StatusTimeout      = api.StatusTimeout
	StatusMemoryLimit  = api.StatusMemoryLimit
	StatusOutputLimit  = api.StatusOutputLimit
	StatusKilled       = api.StatusKilled
	StatusInputError   = api.StatusInputError
	StatusSandboxError = api.StatusSandboxError
)

var (
	// ErrInvalid is wrapped by every request validation error.
	ErrInvalid = api.ErrInvalid
	// ErrUnsupported is wrapped when a backend is unavailable here.
	ErrUnsupported = backend.ErrUnsupported
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("pybox: sandbox closed")
)

// ParseSize parses "512MiB", "1g", "65536".
func ParseSize(s string) (Size, error) { return api.ParseSize(s) }

// ParseDuration parses "30s", "1m30s" or a number of seconds.
func ParseDuration(s string) (Duration, error) { return api.ParseDuration(s) }

// Options configure a Sandbox.
type Options struct {
	// Logger receives debug and error logs; nil discards them.
	Logger *slog.Logger
	// ForkServer keeps, per policy, a warm template sandbox (numpy
	// already imported) and forks a fresh, fully isolated sandbox from it
	// for every execution: much faster than a cold start for programs
	// that run many executions (servers, agents). The first execution of
	// a policy runs cold while its template boots. Native backend only.
	ForkServer bool
	// Preload names the modules templates import once (default numpy,
	// when installed).
	Preload []string
}

// Sandbox runs requests. It is safe for concurrent use; each Run gets a
// fresh, isolated sandbox.
type Sandbox struct {
	log  *slog.Logger
	opts Options

	mu       sync.Mutex
	closed   bool
	backends map[string]backend.Backend
}

// New returns a Sandbox. Backends are started lazily on first use.
func New(opts Options) *Sandbox {
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Sandbox{log: l, opts: opts, backends: map[string]backend.Backend{}}
}

// RunOptions are per-call callbacks.
type RunOptions struct {
	// Stdout and Stderr receive output chunks live, in order, as the code
	// writes them. They must not block for long.
	Stdout func([]byte)
	Stderr func([]byte)
}

// Run executes req in a fresh sandbox and waits for it to end.
//
// The Result is non-nil for every outcome. err is nil when the code ran,
// whatever its status (run-error, timeout, memory-limit...). err is non-nil,
// and Result.Status is input-error or sandbox-error, when the request was
// invalid (errors.Is(err, ErrInvalid)) or the sandbox could not be set up.
// Cancelling ctx kills the run; its status is then "killed".
func (s *Sandbox) Run(ctx context.Context, req Request) (*Result, error) {
	return s.RunWith(ctx, req, RunOptions{})
}

// RunWith is Run with live output callbacks.
func (s *Sandbox) RunWith(ctx context.Context, req Request, ro RunOptions) (*Result, error) {
	start := time.Now()
	r := req.WithDefaults()
	if err := r.Validate(); err != nil {
		return failed(StatusInputError, r.Backend, err), err
	}
	name := r.Backend
	if name == "" {
		name = api.DefaultBackend()
		r.Backend = name
	}
	b, err := s.backend(name)
	if err != nil {
		return failed(StatusSandboxError, name, err), err
	}
	res, err := b.Run(ctx, &r, backend.Hooks{Stdout: ro.Stdout, Stderr: ro.Stderr})
	if res == nil {
		if err == nil {
			err = fmt.Errorf("pybox: backend %s returned no result", name)
		}
		res = failed(StatusSandboxError, name, err)
	}
	if res.Usage.WallMS == 0 {
		res.Usage.WallMS = time.Since(start).Milliseconds()
	}
	s.log.Debug("run", "backend", name, "status", res.Status, "wall_ms", res.Usage.WallMS)
	return res, err
}

func failed(status, backendName string, err error) *Result {
	return &Result{Status: status, ExitCode: -1, Error: err.Error(), Isolation: Isolation{Backend: backendName}}
}

func (s *Sandbox) backend(name string) (backend.Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if b, ok := s.backends[name]; ok {
		return b, nil
	}
	f, ok := backend.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("pybox: backend %q: %w", name, ErrUnsupported)
	}
	b, err := f()
	if err != nil {
		return nil, fmt.Errorf("pybox: backend %q: %w", name, err)
	}
	if c, ok := b.(backend.Configurable); ok {
		o := backend.Options{ForkServer: s.opts.ForkServer, Preload: s.opts.Preload}
		c.Configure(o)
	}
	s.backends[name] = b
	return b, nil
}

// Close releases every backend's pooled resources. Runs in flight are not
// interrupted; cancel their contexts for that.
func (s *Sandbox) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	bs := s.backends
	s.backends = nil
	s.mu.Unlock()
	var errs []error
	for _, b := range bs {
		errs = append(errs, b.Close(ctx))
	}
	return errors.Join(errs...)
}

// Backends lists the backends compiled into this binary.
func Backends() []string { return backend.Names() }
