package native

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/initproc"
	"github.com/pybox-dev/pybox/internal/runner"
)

// session is a sandbox whose runner loops over exec frames. Output of one
// execution is delimited by a marker the runner writes to stdout and
// stderr after the execution (a fresh random one per execution, so code
// cannot end another execution's output early by guessing it).
type session struct {
	sb  *sandbox
	req *api.Request

	// execMu allows one execution at a time.
	execMu sync.Mutex

	mu      sync.Mutex
	cur     *execState // nil between executions
	err     error      // why the session ended
	done    chan struct{}
	closing bool

	readers sync.WaitGroup
}

// execState is one execution in flight.
type execState struct {
	marker         []byte
	limit          int64
	hooks          backend.Hooks
	stdout, stderr guest.Output
	frames         guest.Frames
	outDone        chan struct{} // stdout marker seen
	errDone        chan struct{} // stderr marker seen
	resDone        chan struct{} // result frame seen
	over           func()
}

// StartSession starts a session sandbox.
func (b *nativeBackend) StartSession(ctx context.Context, req *api.Request) (backend.Session, error) {
	cfg, err := b.config(req)
	if err != nil {
		return nil, err
	}
	cfg.Session = true
	cfg.CollectFiles = false
	sb, err := b.start(req, cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-sb.readyCh:
	case <-ctx.Done():
		sb.destroy()
		return nil, ctx.Err()
	}
	_ = sb.awaitJoined() // an error is a setupErr
	sb.mu.Lock()
	setupErr, ready := sb.setupErr, sb.ready
	sb.mu.Unlock()
	if setupErr != nil || ready == nil {
		sb.destroy()
		if setupErr != nil {
			return nil, setupErr
		}
		return nil, errors.New("sandbox init ended before starting the interpreter")
	}
	s := &session{sb: sb, req: req, done: make(chan struct{})}
	s.readers.Add(3)
	go s.readStream(sb.outR, true)
	go s.readStream(sb.errR, false)
	go s.readFrames()
	go func() {
		<-sb.ctrlDone
		s.end(errors.New("the interpreter exited"))
	}()
	return s, nil
}

// end marks the session dead (first reason wins) and kills it.
func (s *session) end(reason error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = reason
		close(s.done)
	}
	s.mu.Unlock()
	s.sb.kill()
}

func (s *session) Done() <-chan struct{} { return s.done }

func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *session) current() *execState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// readStream routes one output stream to the execution in flight, cutting
// at its marker. Output written between executions (by threads or child
// processes the code left running) is dropped.
func (s *session) readStream(rd io.Reader, isStdout bool) {
	defer s.readers.Done()
	buf := make([]byte, 32<<10)
	var pending []byte // a possible marker prefix held back
	for {
		n, err := rd.Read(buf)
		if n > 0 {
			data := append(pending, buf[:n]...)
			pending = nil
			for len(data) > 0 {
				ex := s.current()
				if ex == nil {
					break
				}
				cap, done := &ex.stdout, ex.outDone
				hook := ex.hooks.Stdout
				if !isStdout {
					cap, done, hook = &ex.stderr, ex.errDone, ex.hooks.Stderr
				}
				if isClosed(done) {
					break
				}
				if i := bytes.Index(data, ex.marker); i >= 0 {
					cap.Add(data[:i], ex.limit, hook, ex.over)
					data = data[i+len(ex.marker):]
					close(done)
					continue
				}
				keep := prefixSuffix(data, ex.marker)
				cap.Add(data[:len(data)-keep], ex.limit, hook, ex.over)
				pending = append([]byte(nil), data[len(data)-keep:]...)
				break
			}
		}
		if err != nil {
			return
		}
	}
}

// prefixSuffix is the length of the longest suffix of data that is a
// proper prefix of marker.
func prefixSuffix(data, marker []byte) int {
	for k := min(len(marker)-1, len(data)); k > 0; k-- {
		if bytes.Equal(data[len(data)-k:], marker[:k]) {
			return k
		}
	}
	return 0
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (s *session) readFrames() {
	defer s.readers.Done()
	max := int(s.req.OutputLimit)*2 + 1<<20
	for {
		b, err := runner.ReadFrame(s.sb.routR, max)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.end(fmt.Errorf("bad frame from the runner: %v", err))
			}
			_, _ = io.Copy(io.Discard, s.sb.routR)
			return
		}
		m, err := runner.DecodeMessage(b)
		if err != nil {
			continue
		}
		ex := s.current()
		if ex == nil || isClosed(ex.resDone) {
			continue
		}
		if ex.frames.Add(m, ex.limit) {
			close(ex.resDone)
		}
	}
}

// Exec runs one execution.
func (s *session) Exec(ctx context.Context, e backend.Exec, hooks backend.Hooks) (*api.Result, error) {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	begin := time.Now()
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", backend.ErrSessionGone, err)
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = s.req.Timeout.D()
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	ex := &execState{
		marker:  []byte("\x00pybox-end-" + hex.EncodeToString(nonce[:]) + "\x00"),
		limit:   int64(s.req.OutputLimit),
		hooks:   hooks,
		outDone: make(chan struct{}), errDone: make(chan struct{}), resDone: make(chan struct{}),
	}
	var flags limitFlags
	ex.over = func() { flags.set(&flags.outputOver); s.end(errors.New("killed by the output limit")) }
	before, _ := s.sb.stats()

	s.mu.Lock()
	s.cur = ex
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
	}()

	frame := runner.NewExec(e.Code, e.Globals)
	frame.Marker = string(ex.marker)
	if err := runner.WriteFrame(s.sb.rinW, frame); err != nil {
		s.end(fmt.Errorf("send to the runner: %v", err))
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	all := make(chan struct{})
	go func() {
		for _, c := range []chan struct{}{ex.outDone, ex.errDone, ex.resDone} {
			select {
			case <-c:
			case <-s.done:
				close(all)
				return
			}
		}
		close(all)
	}()
	select {
	case <-all:
	case <-timer.C:
		flags.set(&flags.timedOut)
		s.end(fmt.Errorf("killed by the %s timeout", timeout))
	case <-ctx.Done():
		flags.set(&flags.cancelled)
		s.end(errors.New("killed: the caller cancelled an execution"))
	}

	gone := s.Err() != nil
	if gone {
		// Let the readers drain what the dead sandbox wrote.
		<-s.sb.waitDone
		s.readers.Wait()
	}
	after, haveStats := s.sb.stats()
	res := &api.Result{ExitCode: -1, Isolation: s.sb.isolation()}
	res.Isolation.Limits.TimeoutMS = timeout.Milliseconds()
	s.sb.mu.Lock()
	exit := s.sb.exit
	s.sb.mu.Unlock()
	in := outcome{
		ready: &initproc.Message{}, exit: exit,
		frames: &ex.frames, stdout: &ex.stdout, stderr: &ex.stderr,
		stats: after, haveStats: haveStats, session: true,
	}
	in.stats.OOMKills -= before.OOMKills
	in.stats.CPUNanos -= before.CPUNanos
	in.timedOut, in.outputOver, in.cancelled = flags.get()
	req := *s.req
	req.Timeout = api.Duration(timeout)
	if err := settle(&req, res, in); err != nil {
		return res, err
	}
	if gone && res.Status == api.StatusSuccess && exit == nil {
		res.Status = api.StatusKilled
		res.Error = "the session ended during the execution"
	}
	if gone && res.Error != "" && res.Status != api.StatusSuccess && res.Status != api.StatusRunError {
		res.Error += "; the session is gone"
	}
	res.Usage.WallMS = time.Since(begin).Milliseconds()
	return res, nil
}

// request sends one file request to init and waits for the reply.
func (s *session) request(ctx context.Context, r *initproc.Request) (*initproc.Message, error) {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", backend.ErrSessionGone, err)
	}
	if err := initproc.WriteFrame(s.sb.ctrl, r); err != nil {
		return nil, fmt.Errorf("%w: %v", backend.ErrSessionGone, err)
	}
	select {
	case m := <-s.sb.replies:
		if m.Error != "" {
			return nil, errors.New(m.Error)
		}
		return &m, nil
	case <-s.done:
		return nil, fmt.Errorf("%w: %v", backend.ErrSessionGone, s.Err())
	case <-ctx.Done():
		s.end(errors.New("killed: the caller cancelled a file request"))
		return nil, ctx.Err()
	}
}

func (s *session) WriteFile(ctx context.Context, f api.File) error {
	_, err := s.request(ctx, &initproc.Request{Type: "put-file", File: &f})
	return err
}

func (s *session) ReadFile(ctx context.Context, name string, max int64) (*api.OutFile, error) {
	m, err := s.request(ctx, &initproc.Request{Type: "get-file", Name: name, Max: max})
	if err != nil {
		return nil, err
	}
	if m.File == nil {
		return nil, errors.New("no file in reply")
	}
	return m.File, nil
}

// Close ends the session; nothing of it remains afterwards.
func (s *session) Close() error {
	s.end(errors.New("closed"))
	s.sb.destroy()
	s.readers.Wait()
	return nil
}
