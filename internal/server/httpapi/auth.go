package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/internal/metrics"
)

// CheckListen refuses to serve on a non-loopback address without a token:
// anyone who can reach the port could otherwise run code on this host.
func CheckListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad listen address %q: %v (want HOST:PORT, e.g. 127.0.0.1:8080)", addr, err)
	}
	if token != "" || IsLoopback(host) {
		return nil
	}
	if host == "" {
		host = "all interfaces"
	}
	return fmt.Errorf("refusing to listen on %s (%s) without a token: set --token or PYBOX_TOKEN, or listen on 127.0.0.1", addr, host)
}

// IsLoopback reports whether host (an IP or "localhost") is a loopback
// address. Other host names count as not loopback.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// BearerAuth wraps next so that it needs "Authorization: Bearer token". An
// empty token lets every request through.
func BearerAuth(token string, next http.Handler) http.Handler {
	var tokens []string
	if token != "" {
		tokens = []string{token}
	}
	return bearerAuth(tokens, next, nil)
}

// localOwner owns every session of a server without tokens (which only
// listens on loopback).
const localOwner = "local"

// ownerOf is the owner of the sessions created with token: a hash, so that
// the token itself is never kept next to the sessions or logged.
func ownerOf(token string) string {
	if token == "" {
		return localOwner
	}
	h := sha256.Sum256([]byte("pybox session owner\x00" + token))
	return hex.EncodeToString(h[:16])
}

// bearerAuth lets a request through when it carries one of tokens (any
// tokens: none configured lets everything through) and records which one
// as the request's owner. Every token is compared, in constant time, so
// the answer's timing says nothing about which one came close.
func bearerAuth(tokens []string, next http.Handler, rejected *metrics.CounterVec) http.Handler {
	if len(tokens) == 0 {
		return next
	}
	wants := make([][]byte, len(tokens))
	for i, t := range tokens {
		wants[i] = []byte(t)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		g := []byte(strings.TrimSpace(got))
		match := -1
		for i, want := range wants {
			if subtle.ConstantTimeCompare(g, want) == 1 {
				match = i
			}
		}
		if !ok || match < 0 {
			if rejected != nil {
				rejected.WithLabelValues(reasonUnauthorized).Inc()
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="pybox"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token", "")
			return
		}
		infoFrom(r.Context()).owner = ownerOf(tokens[match])
		next.ServeHTTP(w, r)
	})
}

// requestID returns the client's X-Request-Id when it is sane (1-128
// characters of [A-Za-z0-9._:-]), else a new random one.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if id != "" && len(id) <= 128 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == "" {
		return id
	}
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type ctxKey int

const keyReqInfo ctxKey = iota

// reqInfo is what a handler adds to the request's log line.
type reqInfo struct {
	id        string
	runStatus string
	backend   string
	// owner is set by bearerAuth; "" means no token is configured.
	owner string
	// session is the session the request addressed, for the log line.
	session string
}

// statusWriter records the status code for the log line. It forwards
// Flush, which the event stream needs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequestLog sets X-Request-Id on the response and logs one line per
// request.
func (s *Server) withRequestLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{id: requestID(r)}
		w.Header().Set("X-Request-Id", info.id)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(withInfo(r.Context(), info))
		defer func() {
			attrs := []slog.Attr{
				slog.String("request_id", info.id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.status),
				slog.Int64("duration_ms", time.Since(start).Milliseconds()),
				slog.String("remote", r.RemoteAddr),
			}
			if info.session != "" {
				attrs = append(attrs, slog.String("session", info.session))
			}
			if info.runStatus != "" {
				attrs = append(attrs, slog.String("run_status", info.runStatus), slog.String("backend", info.backend))
			}
			lvl := slog.LevelInfo
			if sw.status >= 500 {
				lvl = slog.LevelWarn
			}
			s.log.LogAttrs(r.Context(), lvl, "request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}

func withInfo(ctx context.Context, i *reqInfo) context.Context {
	return context.WithValue(ctx, keyReqInfo, i)
}

// infoFrom returns the request's log info; never nil.
func infoFrom(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(keyReqInfo).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}
