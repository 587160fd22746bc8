// Package backend defines the interface every isolation tier implements and
// the registry the root package picks from. It makes no syscalls itself.
package backend

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
)

// ErrUnsupported is returned for a backend that is not available on this
// platform or build.
var ErrUnsupported = errors.New("backend not supported on this platform")

// Hooks are optional callbacks a backend calls while a run is in flight.
type Hooks struct {
	// Stdout and Stderr receive output chunks as they arrive. They must not
	// block for long and must not keep the slice.
	Stdout func([]byte)
	Stderr func([]byte)
}

// Backend runs one request to completion.
type Backend interface {
	// Name is the backend's name as used in Request.Backend.
	Name() string
	// Run executes req, which has been defaulted and validated. It returns
	// a Result for every outcome of the code (including limits hit); an
	// error only when the sandbox itself could not be set up, in which case
	// the Result (if non-nil) has status sandbox-error.
	Run(ctx context.Context, req *api.Request, hooks Hooks) (*api.Result, error)
	// Close releases pooled resources.
	Close(ctx context.Context) error
}

// Factory builds a backend. It is called lazily, on first use.
type Factory func() (Backend, error)

var (
	mu        sync.Mutex
	factories = map[string]Factory{}
)

// Register makes a backend available under name. Backends call it from
// their package's init function.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	factories[name] = f
}

// Lookup returns the factory registered for name.
func Lookup(name string) (Factory, bool) {
	mu.Lock()
	defer mu.Unlock()
	f, ok := factories[name]
	return f, ok
}

// Names lists the registered backends, sorted.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	var n []string
	for k := range factories {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Session is a long-lived sandbox whose interpreter state (globals,
// imports, work-dir files) persists between executions.
type Session interface {
	// Exec runs code in the session. A limit hit during the execution
	// (timeout, memory, output) ends the session: the Result says so, and
	// later calls return ErrSessionGone.
	Exec(ctx context.Context, ex Exec, hooks Hooks) (*api.Result, error)
	// WriteFile and ReadFile access the session's work directory.
	WriteFile(ctx context.Context, f api.File) error
	ReadFile(ctx context.Context, name string, max int64) (*api.OutFile, error)
	// Done is closed when the session has ended, for any reason.
	Done() <-chan struct{}
	// Err says why the session ended (nil while it is alive).
	Err() error
	// Close ends the session and releases everything it holds.
	Close() error
}

// Exec is one execution in a session.
type Exec struct {
	Code    string
	Globals []byte
	// Timeout bounds this execution; 0 means the session's default.
	Timeout time.Duration
}

// SessionBackend is implemented by backends that support sessions.
type SessionBackend interface {
	StartSession(ctx context.Context, req *api.Request) (Session, error)
}

// ErrSessionGone is returned by calls on a session that has ended.
var ErrSessionGone = errors.New("session is gone")

// Options tune backends; the root package passes pybox.Options on.
type Options struct {
	// ForkServer lets a backend keep warm templates and fork a fresh
	// sandbox per execution from them.
	ForkServer bool
	// Preload are modules a template imports once.
	Preload []string
}

// Configurable is implemented by backends that take Options.
type Configurable interface {
	Configure(Options)
}
