package pybox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
)

// ErrSessionGone is returned by calls on a session that has ended: closed,
// idle or past its lifetime, or killed by a limit. The error says which.
var ErrSessionGone = backend.ErrSessionGone

// Exec is one execution in a session.
type Exec struct {
	Code string `json:"code"`
	// Globals is a JSON object whose keys become global variables.
	Globals json.RawMessage `json:"globals,omitempty"`
	// Timeout bounds this execution; zero means the session's Timeout.
	Timeout Duration `json:"timeout,omitempty"`
}

// Session is a long-lived sandbox, like a notebook kernel: globals, imports
// and work-dir files persist between executions. Each execution has its
// own timeout and output limits; memory is limited for the whole session.
// A limit hit during an execution ends the session (the Result says so)
// and every later call returns an error wrapping ErrSessionGone.
//
// A Session is safe for concurrent use; executions run one at a time.
type Session struct {
	id    string
	req   Request
	sess  backend.Session
	start time.Time

	mu       sync.Mutex
	idle     *time.Timer
	lifetime *time.Timer
	reason   error
}

// NewSession starts a session with req's policy (Code is run as the first
// execution when not empty). Timeout is the default per-execution timeout;
// IdleTimeout and MaxLifetime bound the session itself.
func (s *Sandbox) NewSession(ctx context.Context, req Request) (*Session, *Result, error) {
	r := req.WithDefaults()
	if err := r.Validate(); err != nil {
		return nil, failed(StatusInputError, r.Backend, err), err
	}
	if r.Backend == "" {
		r.Backend = api.DefaultBackend()
	}
	b, err := s.backend(r.Backend)
	if err != nil {
		return nil, failed(StatusSandboxError, r.Backend, err), err
	}
	sb, ok := b.(backend.SessionBackend)
	if !ok {
		err := fmt.Errorf("pybox: backend %q does not support sessions: %w", r.Backend, ErrUnsupported)
		return nil, failed(StatusSandboxError, r.Backend, err), err
	}
	code := r.Code
	r.Code = ""
	bs, err := sb.StartSession(ctx, &r)
	if err != nil {
		return nil, failed(StatusSandboxError, r.Backend, err), err
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	ss := &Session{id: hex.EncodeToString(id[:]), req: r, sess: bs, start: time.Now()}
	ss.idle = time.AfterFunc(r.IdleTimeout.D(), func() { ss.expire(fmt.Errorf("idle for %s", r.IdleTimeout)) })
	ss.lifetime = time.AfterFunc(r.MaxLifetime.D(), func() { ss.expire(fmt.Errorf("reached its %s lifetime", r.MaxLifetime)) })
	if code == "" {
		return ss, nil, nil
	}
	res, err := ss.Run(ctx, Exec{Code: code, Globals: req.Globals})
	return ss, res, err
}

// ID is the session's random identifier.
func (ss *Session) ID() string { return ss.id }

// Request is the session's policy, with defaults filled in.
func (ss *Session) Request() Request { return ss.req }

// Done is closed when the session has ended.
func (ss *Session) Done() <-chan struct{} { return ss.sess.Done() }

// Err says why the session ended, or nil while it is alive.
func (ss *Session) Err() error {
	ss.mu.Lock()
	r := ss.reason
	ss.mu.Unlock()
	if r != nil {
		return r
	}
	return ss.sess.Err()
}

func (ss *Session) expire(reason error) {
	ss.mu.Lock()
	if ss.reason == nil {
		ss.reason = reason
	}
	ss.mu.Unlock()
	_ = ss.sess.Close()
}

func (ss *Session) gone() error {
	return fmt.Errorf("%w: %v", ErrSessionGone, ss.Err())
}

// Run executes code in the session.
func (ss *Session) Run(ctx context.Context, ex Exec) (*Result, error) {
	return ss.RunWith(ctx, ex, RunOptions{})
}

// RunWith is Run with live output callbacks.
func (ss *Session) RunWith(ctx context.Context, ex Exec, ro RunOptions) (*Result, error) {
	probe := Request{Code: ex.Code, Globals: ex.Globals, Timeout: ex.Timeout}.WithDefaults()
	if ex.Timeout == 0 {
		probe.Timeout = ss.req.Timeout
	}
	if err := probe.Validate(); err != nil {
		return failed(StatusInputError, ss.req.Backend, err), err
	}
	if ss.Err() != nil {
		err := ss.gone()
		return failed(StatusSandboxError, ss.req.Backend, err), err
	}
	ss.idle.Stop()
	defer ss.idle.Reset(ss.req.IdleTimeout.D())
	res, err := ss.sess.Exec(ctx, backend.Exec{Code: ex.Code, Globals: ex.Globals, Timeout: ex.Timeout.D()},
		backend.Hooks{Stdout: ro.Stdout, Stderr: ro.Stderr})
	if err != nil {
		if errors.Is(err, ErrSessionGone) {
			err = ss.gone()
		}
		if res == nil {
			res = failed(StatusSandboxError, ss.req.Backend, err)
		}
		return res, err
	}
	return res, nil
}

// WriteFile puts a file into the session's work directory.
func (ss *Session) WriteFile(ctx context.Context, f File) error {
	c, err := api.CleanFileName(f.Name)
	if err != nil {
		return &InputError{Field: "name", Msg: err.Error()}
	}
	if len(f.Data) > api.MaxInputFiles {
		return &InputError{Field: "data", Msg: fmt.Sprintf("%d bytes is over the %d byte limit", len(f.Data), api.MaxInputFiles)}
	}
	f.Name = c
	if err := ss.sess.WriteFile(ctx, f); err != nil {
		if errors.Is(err, ErrSessionGone) {
			return ss.gone()
		}
		return err
	}
	return nil
}

// ReadFile reads a file from the session's work directory, at most the
// session's FilesLimit bytes. Symlinks are not followed.
func (ss *Session) ReadFile(ctx context.Context, name string) (*OutFile, error) {
	c, err := api.CleanFileName(name)
	if err != nil {
		return nil, &InputError{Field: "name", Msg: err.Error()}
	}
	f, err := ss.sess.ReadFile(ctx, c, int64(ss.req.FilesLimit))
	if err != nil && errors.Is(err, ErrSessionGone) {
		return nil, ss.gone()
	}
	return f, err
}

// Close ends the session. Nothing of it (processes, cgroup, mounts) is
// left afterwards. Closing twice is fine.
func (ss *Session) Close() error {
	ss.idle.Stop()
	ss.lifetime.Stop()
	ss.mu.Lock()
	if ss.reason == nil {
		ss.reason = errors.New("closed")
	}
	ss.mu.Unlock()
	return ss.sess.Close()
}
