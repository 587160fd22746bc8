package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pybox-dev/pybox"
)

// Tombstones let a session that ended answer 410 with its reason, for at
// most tombstoneTTL and for the last maxTombstones sessions; after that it
// is 404 like a session that never existed.
const (
	tombstoneTTL  = time.Hour
	maxTombstones = 1024
)

var (
	errSessionsFull = errors.New("too many sessions: every session slot is taken; close one or retry later")
)

// sessionEntry is one live session and who owns it.
type sessionEntry struct {
	id      string
	owner   string
	ss      *pybox.Session
	created time.Time
	// busy holds a token while a request (run or file) uses the session,
	// so requests take turns; the watcher takes it too, so it classifies the end only once the
	// request that ended the session has said why.
	busy chan struct{}

	mu sync.Mutex
	// why is the metric label of the end, when the server knows it
	// (closed, shutdown, or the status of the run that ended it).
	why string
}

func (e *sessionEntry) setWhy(label string) {
	e.mu.Lock()
	if e.why == "" {
		e.why = label
	}
	e.mu.Unlock()
}

// label classifies how the session ended, for pybox_sessions_ended_total.
func (e *sessionEntry) label() string {
	e.mu.Lock()
	why := e.why
	e.mu.Unlock()
	if why != "" {
		return why
	}
	msg := ""
	if err := e.ss.Err(); err != nil {
		msg = err.Error()
	}
	switch {
	case strings.Contains(msg, "idle"):
		return endIdle
	case strings.Contains(msg, "lifetime"):
		return endLifetime
	case strings.Contains(msg, "timeout"):
		return endTimeout
	case strings.Contains(msg, "output limit"):
		return endOutput
	case strings.Contains(msg, "memory"):
		return endMemory
	case strings.Contains(msg, "exited"):
		return endExited
	}
	return endKilled
}

// labelForRun is the end label when a run's result came with the session
// gone.
func labelForRun(status string) string {
	switch status {
	case pybox.StatusTimeout:
		return endTimeout
	case pybox.StatusMemoryLimit:
		return endMemory
	case pybox.StatusOutputLimit:
		return endOutput
	case pybox.StatusKilled:
		return endKilled
	}
	return endExited
}

type tombstone struct {
	owner  string
	reason string
	at     time.Time
}

// sessionStore holds the live sessions, reservations for sessions being
// started, and tombstones of ended ones.
type sessionStore struct {
	max int
	m   *serverMetrics
	log *slog.Logger
	// watchers counts the goroutines waiting for a session's end.
	watchers sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*sessionEntry
	reserved int
	ended    map[string]tombstone
	order    []string // ended ids, oldest first
}

func newSessionStore(max int, m *serverMetrics, log *slog.Logger) *sessionStore {
	return &sessionStore{max: max, m: m, log: log, sessions: map[string]*sessionEntry{}, ended: map[string]tombstone{}}
}

func (st *sessionStore) live() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.sessions)
}

// reserve takes a session slot for a session about to start; the caller
// must call either add or unreserve.
func (st *sessionStore) reserve() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.sessions)+st.reserved >= st.max {
		return errSessionsFull
	}
	st.reserved++
	return nil
}

func (st *sessionStore) unreserve() {
	st.mu.Lock()
	st.reserved--
	st.mu.Unlock()
}

// add turns a reservation into a live session and watches for its end.
func (st *sessionStore) add(e *sessionEntry) {
	st.mu.Lock()
	st.reserved--
	st.sessions[e.id] = e
	st.m.sessionsLive.Set(float64(len(st.sessions)))
	st.mu.Unlock()
	st.m.sessionsCreated.Inc()
	st.log.Info("session started", "session", e.id)
	st.watchers.Add(1)
	go func() {
		defer st.watchers.Done()
		<-e.ss.Done()
		e.busy <- struct{}{} // wait for the request in flight, if any
		st.remove(e)
	}()
}

func (st *sessionStore) remove(e *sessionEntry) {
	label := e.label()
	reason := "ended"
	if err := e.ss.Err(); err != nil {
		reason = err.Error()
	}
	st.mu.Lock()
	delete(st.sessions, e.id)
	st.m.sessionsLive.Set(float64(len(st.sessions)))
	now := time.Now()
	st.ended[e.id] = tombstone{owner: e.owner, reason: reason, at: now}
	st.order = append(st.order, e.id)
	for len(st.order) > 0 && (len(st.order) > maxTombstones || now.Sub(st.ended[st.order[0]].at) > tombstoneTTL) {
		delete(st.ended, st.order[0])
		st.order = st.order[1:]
	}
	st.mu.Unlock()
	st.m.sessionsEnded.WithLabelValues(label).Inc()
	st.log.Info("session ended", "session", e.id, "reason", label, "detail", reason,
		"lifetime_ms", time.Since(e.created).Milliseconds())
}

// lookup finds owner's live session id: 404 when there is none (or it is
// someone else's), 410 with the reason when it ended.
func (st *sessionStore) lookup(id, owner string) (*sessionEntry, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.sessions[id]; ok && e.owner == owner {
		if err := e.ss.Err(); err != nil {
			// Ended; the watcher has not caught up yet.
			return nil, gone(id, err.Error())
		}
		return e, nil
	}
	if t, ok := st.ended[id]; ok && t.owner == owner {
		return nil, gone(id, t.reason)
	}
	return nil, &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("no such session %q", id)}
}

// forget drops the tombstone of a session (after DELETE).
func (st *sessionStore) forget(id string) {
	st.mu.Lock()
	delete(st.ended, id)
	st.mu.Unlock()
}

func gone(id, reason string) *apiError {
	return &apiError{status: http.StatusGone, msg: fmt.Sprintf("session %s has ended: %s", id, reason)}
}

// closeAll closes every live session and waits until each is accounted
// for. It returns how many it closed.
func (st *sessionStore) closeAll(label string) int {
	st.mu.Lock()
	es := make([]*sessionEntry, 0, len(st.sessions))
	for _, e := range st.sessions {
		es = append(es, e)
	}
	st.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range es {
		e.setWhy(label)
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.ss.Close()
		}()
	}
	wg.Wait()
	st.watchers.Wait()
	return len(es)
}

// CloseSessions closes every session of the server and returns how many
// there were. [Server.Serve] calls it when it shuts down; embedders that
// serve [Server.Handler] themselves call it when they stop.
func (s *Server) CloseSessions() int {
	return s.sessions.closeAll(endShutdown)
}
