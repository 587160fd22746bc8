// Package httpapi is the HTTP front end of pybox (pybox serve). It is an
// adapter over the root package only: a request body decodes into
// [pybox.Request], a response body is a [pybox.Result], exactly as an
// embedder would see them.
//
// # Routes
//
//	POST   /v1/run                        run code once; JSON Result, or a
//	                                      text/event-stream of stdout/stderr
//	                                      chunks then the Result
//	POST   /v1/sessions                   start a session (and run its first code)
//	POST   /v1/sessions/{id}/run          run code in a session (JSON or SSE)
//	DELETE /v1/sessions/{id}              end a session
//	PUT    /v1/sessions/{id}/files/{path} upload a file into the session's /work
//	GET    /v1/sessions/{id}/files/{path} download a file from it
//	GET    /healthz                       liveness (no auth)
//	GET    /metrics                       Prometheus metrics
//	GET    /openapi.json                  the OpenAPI 3 document (no auth)
//
// # Sessions
//
// A session is a [pybox.Session]: one sandbox whose globals and files last
// across runs. It belongs to the bearer token that created it (the server
// keeps a hash of the token, never the token); other tokens get 404 for it.
// At most [Config.MaxSessions] are alive at once (429 past it). A session
// that ended (closed, idle, past its lifetime, or killed by a limit) answers
// 410 Gone with the reason for a while, then 404. Shutting the server down
// closes every session.
//
// # Safety
//
// Every protected route needs "Authorization: Bearer TOKEN" when tokens are
// configured, compared in constant time. [CheckListen] refuses a non-loopback
// address without a token. Bodies, code, timeouts and memory are capped; runs
// go through a bounded concurrency limit and a bounded queue, past which the
// server answers 429 with Retry-After. A client that disconnects cancels its
// run. Host mounts and a custom interpreter path are refused unless the
// operator set [Config.AllowMounts].
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pybox-dev/pybox"
)

// Defaults of [Config] fields left zero.
const (
	DefaultMaxBodyBytes = 8 << 20
	DefaultMaxCodeBytes = 1 << 20
	DefaultMaxQueue     = 64
	DefaultMaxTimeout   = 5 * time.Minute
	DefaultMaxMemory    = 2 << 30
	DefaultGrace        = 30 * time.Second
	DefaultMaxSessions  = 16
	DefaultMaxLifetime  = time.Hour
)

// Config configures a [Server]. Zero fields take the defaults above.
type Config struct {
	// Token, when non-empty, is a bearer token that protected routes
	// accept. Tokens are more of them; each token is its own session owner.
	// With neither, every request is let through (loopback only, see
	// [CheckListen]) and all sessions have one owner.
	Token  string
	Tokens []string
	// AllowMounts lets requests set mounts and python, which expose host
	// paths to the sandbox. Off by default: a remote client must never read
	// host files.
	AllowMounts bool
	// MaxBodyBytes caps a request body (413 past it).
	MaxBodyBytes int64
	// MaxCodeBytes caps Request.Code (400 past it).
	MaxCodeBytes int
	// MaxConcurrent is the number of runs in flight at once; default
	// 2*NumCPU.
	MaxConcurrent int
	// MaxQueue is the number of requests that may wait for a run slot;
	// past it the server answers 429. Negative means no queue at all.
	MaxQueue int
	// MaxTimeout and MaxMemory cap Request.Timeout and Request.Memory
	// (400 past them). A request that leaves them unset gets the library
	// default, lowered to the cap if needed.
	MaxTimeout time.Duration
	MaxMemory  pybox.Size
	// MaxSessions caps the live sessions (429 past it); negative means
	// sessions are disabled.
	MaxSessions int
	// MaxLifetime caps a session's max_lifetime and idle_timeout (400 past
	// it); a session that sets neither gets the library defaults, lowered
	// to this cap.
	MaxLifetime time.Duration
	// Logger receives one structured line per request; nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxCodeBytes <= 0 {
		c.MaxCodeBytes = DefaultMaxCodeBytes
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 2 * runtime.NumCPU()
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.MaxQueue < 0 {
		c.MaxQueue = 0
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.MaxMemory <= 0 {
		c.MaxMemory = DefaultMaxMemory
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxSessions < 0 {
		c.MaxSessions = 0
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// tokens lists every accepted bearer token.
func (c Config) tokens() []string {
	var ts []string
	if c.Token != "" {
		ts = append(ts, c.Token)
	}
	for _, t := range c.Tokens {
		if t != "" {
			ts = append(ts, t)
		}
	}
	return ts
}

// Server serves the HTTP API over one [pybox.Sandbox].
type Server struct {
	sb       *pybox.Sandbox
	cfg      Config
	log      *slog.Logger
	lim      *limiter
	metrics  *serverMetrics
	sessions *sessionStore
	handler  http.Handler

	// runCtx is the parent of every run's context; cancelling it kills
	// every run (the end of a shutdown's grace period).
	runCtx    context.Context
	cancelRun context.CancelFunc
	draining  atomic.Bool
}

// New returns a Server running requests on sb. The caller keeps ownership of
// sb and closes it after [Server.Serve] returns.
func New(sb *pybox.Sandbox, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{sb: sb, cfg: cfg, log: cfg.Logger}
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	s.metrics = newMetrics()
	s.lim = newLimiter(cfg.MaxConcurrent, cfg.MaxQueue, s.metrics)
	s.sessions = newSessionStore(cfg.MaxSessions, s.metrics, s.log)
	s.handler = s.withRequestLog(s.routes())
	return s
}

// route is one entry of the API; public routes skip authentication.
type route struct {
	pattern string
	public  bool
	h       http.HandlerFunc
}

// routes is the whole API in one place. The OpenAPI test checks that
// docs/openapi.json documents every pattern here.
func (s *Server) routeTable() []route {
	return []route{
		{"POST /v1/run", false, s.handleRun},
		{"POST /v1/sessions", false, s.handleCreateSession},
		{"POST /v1/sessions/{id}/run", false, s.handleSessionRun},
		{"DELETE /v1/sessions/{id}", false, s.handleDeleteSession},
		{"PUT /v1/sessions/{id}/files/{path...}", false, s.handlePutFile},
		{"GET /v1/sessions/{id}/files/{path...}", false, s.handleGetFile},
		{"GET /healthz", true, s.handleHealth},
		{"GET /metrics", false, s.metrics.reg.ServeHTTP},
		{"GET /openapi.json", true, handleOpenAPI},
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	var paths []string
	allow := map[string][]string{}
	tokens := s.cfg.tokens()
	for _, r := range s.routeTable() {
		method, path, _ := strings.Cut(r.pattern, " ")
		if allow[path] == nil {
			paths = append(paths, path)
		}
		allow[path] = append(allow[path], method)
		var h http.Handler = r.h
		if !r.public {
			h = bearerAuth(tokens, h, s.metrics.rejected)
		}
		mux.Handle(r.pattern, h)
	}
	// A request whose path matches a route but whose method does not lands
	// here (this catch-all pattern matches every method): say which
	// methods the path takes.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var methods []string
		for _, p := range paths {
			if pathMatches(p, r.URL.Path) {
				methods = append(methods, allow[p]...)
			}
		}
		if len(methods) > 0 {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path+" (allowed: "+strings.Join(methods, ", ")+")", "")
			return
		}
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path, "")
	})
	return mux
}

// pathMatches reports whether path matches a ServeMux path pattern made of
// literal segments, {name} (one segment) and a final {name...} (the rest).
func pathMatches(pattern, path string) bool {
	ps := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	xs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "...}") {
			return i < len(xs)
		}
		if i >= len(xs) {
			return false
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	return len(ps) == len(xs)
}

// Handler returns the API as an http.Handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the API on ln until ctx is cancelled, then shuts down
// gracefully: it stops accepting connections, lets in-flight runs finish
// for up to grace, then kills the runs still going and waits for their
// handlers to return, and closes every session. It returns nil after a
// clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	if grace <= 0 {
		grace = DefaultGrace
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.cancelRun()
		s.CloseSessions()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down", "grace", grace.String(), "in_flight", s.lim.inFlight())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Grace is over: kill what is still running, then give the
		// handlers a moment to write their (killed) results.
		s.log.Warn("grace period over, killing runs", "in_flight", s.lim.inFlight())
		s.cancelRun()
		s.waitIdle(10 * time.Second)
		srv.Close()
	}
	s.cancelRun()
	<-errc // http.ErrServerClosed
	s.waitIdle(10 * time.Second)
	n := s.CloseSessions()
	s.log.Info("shut down", "sessions_closed", n)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// waitIdle waits until no run is in flight or queued, for at most d.
func (s *Server) waitIdle(d time.Duration) {
	deadline := time.Now().Add(d)
	for (s.lim.inFlight() > 0 || s.lim.queued() > 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":    "ok",
		"in_flight": s.lim.inFlight(),
		"queued":    s.lim.queued(),
		"sessions":  s.sessions.live(),
	})
}
