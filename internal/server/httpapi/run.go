package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pybox-dev/pybox"
)

// retryAfter is the Retry-After (seconds) sent with 429.
const retryAfter = 1

func (s *Server) reject(w http.ResponseWriter, reason string, e *apiError) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	writeAPIError(w, e)
}

// handleRun is POST /v1/run.
func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(r.Context())
	if s.draining.Load() {
		s.reject(w, reasonDraining, &apiError{status: http.StatusServiceUnavailable, msg: "server is shutting down"})
		return
	}
	if e := checkContentType(r); e != nil {
		s.reject(w, reasonMediaType, e)
		return
	}
	body, e := readBody(w, r, s.cfg.MaxBodyBytes)
	if e != nil {
		reason := reasonInvalid
		if e.status == http.StatusRequestEntityTooLarge {
			reason = reasonTooLarge
		}
		s.reject(w, reason, e)
		return
	}
	req, e := s.parseRunRequest(body)
	if e != nil {
		s.reject(w, reasonInvalid, e)
		return
	}

	// The run dies with the client's connection and with the server's
	// shutdown, whichever comes first.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.runCtx, cancel)
	defer stop()

	release, err := s.lim.acquire(ctx)
	if errors.Is(err, errQueueFull) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		s.reject(w, reasonQueueFull, &apiError{status: http.StatusTooManyRequests, msg: err.Error()})
		return
	}
	if err != nil {
		// The client went away, or the server is going down, while queued.
		info.runStatus = "cancelled"
		writeError(w, http.StatusServiceUnavailable, "cancelled while waiting for a run slot", "")
		return
	}
	defer release()

	start := time.Now()
	var res *pybox.Result
	if wantsEventStream(r) {
		res, err = s.runStream(w, func(ro pybox.RunOptions) (*pybox.Result, error) {
			return s.sb.RunWith(ctx, req, ro)
		})
	} else {
		res, err = s.sb.RunWith(ctx, req, pybox.RunOptions{})
	}
	s.metrics.runs.WithLabelValues(res.Status, res.Isolation.Backend).Inc()
	s.metrics.duration.WithLabelValues(res.Isolation.Backend).Observe(time.Since(start).Seconds())
	info.runStatus, info.backend = res.Status, res.Isolation.Backend
	if err != nil && res.Status != pybox.StatusSandboxError {
		s.log.Debug("run error", "request_id", info.id, "err", err)
	}
	if wantsEventStream(r) {
		return // the result went out as the last event
	}
	switch {
	case err != nil && errors.Is(err, pybox.ErrInvalid):
		writeAPIError(w, inputError(err))
	case res.Status == pybox.StatusSandboxError:
		s.log.Error("sandbox error", "request_id", info.id, "err", res.Error)
		writeJSON(w, http.StatusServiceUnavailable, res)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// wantsEventStream reports whether the client asked for live output.
func wantsEventStream(r *http.Request) bool {
	for _, a := range r.Header.Values("Accept") {
		for _, part := range strings.Split(a, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// runStream calls run while streaming its output as server-sent events:
// "stdout" and "stderr" events whose data is a JSON string chunk, then one
// "result" event whose data is the Result.
func (s *Server) runStream(w http.ResponseWriter, run func(pybox.RunOptions) (*pybox.Result, error)) (*pybox.Result, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()

	q := newEventQueue()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			evs, ok := q.wait()
			for _, ev := range evs {
				writeEvent(w, ev.name, ev.data)
			}
			flush()
			if !ok {
				return
			}
		}
	}()
	res, err := run(pybox.RunOptions{
		Stdout: func(b []byte) { q.push(0, b) },
		Stderr: func(b []byte) { q.push(1, b) },
	})
	q.close()
	<-done
	b, merr := json.Marshal(res)
	if merr != nil {
		b = []byte(`{"status":"sandbox-error","error":"encoding the result failed"}`)
	}
	writeEvent(w, "result", b)
	flush()
	return res, err
}

func writeEvent(w http.ResponseWriter, name string, data []byte) {
	// data is one line of JSON: encoding/json never emits a raw newline.
	w.Write([]byte("event: " + name + "\ndata: "))
	w.Write(data)
	w.Write([]byte("\n\n"))
}

type event struct {
	name string
	data []byte // JSON
}

// eventQueue hands output chunks from the backend's callbacks (which must
// not block) to the goroutine writing to a possibly slow client. Its size is
// bounded by the request's output limit, which the backend enforces. It
// holds back an incomplete UTF-8 sequence at the end of a chunk so that each
// event's string is valid text.
type eventQueue struct {
	notify chan struct{}

	mu      sync.Mutex
	events  []event
	pending [2][]byte
	closed  bool
}

var streamNames = [2]string{"stdout", "stderr"}

func newEventQueue() *eventQueue { return &eventQueue{notify: make(chan struct{}, 1)} }

func (q *eventQueue) push(stream int, b []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	data := append(q.pending[stream], b...)
	complete, rest := splitUTF8(data)
	q.pending[stream] = append([]byte(nil), rest...)
	if len(complete) > 0 {
		q.addLocked(stream, complete)
	}
}

func (q *eventQueue) addLocked(stream int, b []byte) {
	j, _ := json.Marshal(string(b))
	q.events = append(q.events, event{name: streamNames[stream], data: j})
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// close flushes held-back bytes and wakes the writer for the last time.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.pending {
		if len(q.pending[i]) > 0 {
			q.addLocked(i, q.pending[i])
			q.pending[i] = nil
		}
	}
	q.closed = true
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// wait blocks until there are events or the queue is closed; ok is false
// once the queue is closed and drained.
func (q *eventQueue) wait() (evs []event, ok bool) {
	for {
		q.mu.Lock()
		evs, q.events = q.events, nil
		closed := q.closed
		q.mu.Unlock()
		if len(evs) > 0 || closed {
			return evs, !closed
		}
		<-q.notify
	}
}

// splitUTF8 splits b before a trailing incomplete UTF-8 sequence.
func splitUTF8(b []byte) (complete, rest []byte) {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[i:]) {
				return b[:i], b[i:]
			}
			break
		}
	}
	return b, nil
}
