package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pybox-dev/pybox"
)

// ownerFrom is the owner of the request: the hash of its token, or the one
// local owner when the server has no tokens.
func ownerFrom(r *http.Request) string {
	if o := infoFrom(r.Context()).owner; o != "" {
		return o
	}
	return localOwner
}

// readJSONBody runs the checks every JSON route shares: not draining, a
// JSON content type, a body within the limit.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if s.draining.Load() {
		s.reject(w, reasonDraining, &apiError{status: http.StatusServiceUnavailable, msg: "server is shutting down"})
		return nil, false
	}
	if e := checkContentType(r); e != nil {
		s.reject(w, reasonMediaType, e)
		return nil, false
	}
	body, e := readBody(w, r, s.cfg.MaxBodyBytes)
	if e != nil {
		reason := reasonInvalid
		if e.status == http.StatusRequestEntityTooLarge {
			reason = reasonTooLarge
		}
		s.reject(w, reason, e)
		return nil, false
	}
	return body, true
}

// runContext is the context of a run: it ends with the client's connection
// and with the server's shutdown, whichever comes first.
func (s *Server) runContext(r *http.Request) (context.Context, func()) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.runCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// acquireSlot takes a run slot or answers 429/503 itself.
func (s *Server) acquireSlot(ctx context.Context, w http.ResponseWriter, info *reqInfo) (func(), bool) {
	release, err := s.lim.acquire(ctx)
	if errors.Is(err, errQueueFull) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		s.reject(w, reasonQueueFull, &apiError{status: http.StatusTooManyRequests, msg: err.Error()})
		return nil, false
	}
	if err != nil {
		info.runStatus = "cancelled"
		writeError(w, http.StatusServiceUnavailable, "cancelled while waiting for a run slot", "")
		return nil, false
	}
	return release, true
}

// handleCreateSession is POST /v1/sessions.
func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(r.Context())
	body, ok := s.readJSONBody(w, r)
	if !ok {
		return
	}
	req, e := s.parseSessionRequest(body)
	if e != nil {
		s.reject(w, reasonInvalid, e)
		return
	}
	if err := s.sessions.reserve(); err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		s.reject(w, reasonSessionsFull, &apiError{status: http.StatusTooManyRequests, msg: err.Error()})
		return
	}
	added := false
	defer func() {
		if !added {
			s.sessions.unreserve()
		}
	}()
	ctx, done := s.runContext(r)
	defer done()
	// Starting a sandbox (and running the first code) takes a run slot
	// like any run.
	release, ok := s.acquireSlot(ctx, w, info)
	if !ok {
		return
	}
	defer release()

	start := time.Now()
	ss, res, err := s.sb.NewSession(ctx, req)
	if ss == nil {
		if res == nil {
			res = &pybox.Result{Status: pybox.StatusSandboxError, ExitCode: -1, Error: fmt.Sprint(err)}
		}
		info.runStatus, info.backend = res.Status, res.Isolation.Backend
		if errors.Is(err, pybox.ErrInvalid) {
			writeAPIError(w, inputError(err))
			return
		}
		s.log.Error("session start failed", "request_id", info.id, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, res)
		return
	}
	entry := &sessionEntry{id: ss.ID(), owner: ownerFrom(r), ss: ss, created: start, busy: make(chan struct{}, 1)}
	info.session = entry.id
	if res != nil {
		s.countRun(res, start)
		info.runStatus, info.backend = res.Status, res.Isolation.Backend
		if ss.Err() != nil {
			entry.setWhy(labelForRun(res.Status))
		}
	}
	s.sessions.add(entry)
	added = true
	w.Header().Set("Location", "/v1/sessions/"+entry.id)
	writeJSON(w, http.StatusCreated, sessionCreateResponse{ID: entry.id, Result: res})
}

func (s *Server) countRun(res *pybox.Result, start time.Time) {
	s.metrics.runs.WithLabelValues(res.Status, res.Isolation.Backend).Inc()
	s.metrics.duration.WithLabelValues(res.Isolation.Backend).Observe(time.Since(start).Seconds())
}

// session finds the request's session and waits for its turn on it (one
// request at a time per session), or answers 404/410/503 itself. The
// caller must call the returned release.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (*sessionEntry, func(), bool) {
	id := r.PathValue("id")
	infoFrom(r.Context()).session = id
	owner := ownerFrom(r)
	e, aerr := s.sessions.lookup(id, owner)
	if aerr != nil {
		writeAPIError(w, aerr)
		return nil, nil, false
	}
	select {
	case e.busy <- struct{}{}:
	case <-r.Context().Done():
		writeError(w, http.StatusServiceUnavailable, "cancelled while waiting for the session", "")
		return nil, nil, false
	case <-s.runCtx.Done():
		writeError(w, http.StatusServiceUnavailable, "server is shutting down", "")
		return nil, nil, false
	}
	// It may have ended while this request waited.
	if _, aerr := s.sessions.lookup(id, owner); aerr != nil {
		<-e.busy
		writeAPIError(w, aerr)
		return nil, nil, false
	}
	return e, func() { <-e.busy }, true
}

// handleSessionRun is POST /v1/sessions/{id}/run.
func (s *Server) handleSessionRun(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(r.Context())
	body, ok := s.readJSONBody(w, r)
	if !ok {
		return
	}
	ex, e := s.parseExec(body)
	if e != nil {
		s.reject(w, reasonInvalid, e)
		return
	}
	entry, unbusy, ok := s.session(w, r)
	if !ok {
		return
	}
	defer unbusy()
	ctx, done := s.runContext(r)
	defer done()
	release, ok := s.acquireSlot(ctx, w, info)
	if !ok {
		return
	}
	defer release()

	start := time.Now()
	var res *pybox.Result
	var err error
	stream := wantsEventStream(r)
	if stream {
		res, err = s.runStream(w, func(ro pybox.RunOptions) (*pybox.Result, error) {
			return entry.ss.RunWith(ctx, ex, ro)
		})
	} else {
		res, err = entry.ss.RunWith(ctx, ex, pybox.RunOptions{})
	}
	if entry.ss.Err() != nil {
		entry.setWhy(labelForRun(res.Status))
	}
	info.runStatus, info.backend = res.Status, res.Isolation.Backend
	switch {
	case errors.Is(err, pybox.ErrSessionGone):
		// The session was already over: nothing ran.
		if !stream {
			writeAPIError(w, gone(entry.id, strings.TrimPrefix(err.Error(), pybox.ErrSessionGone.Error()+": ")))
		}
		return
	case err != nil && errors.Is(err, pybox.ErrInvalid):
		if !stream {
			writeAPIError(w, inputError(err))
		}
		return
	}
	s.countRun(res, start)
	if stream {
		return
	}
	if res.Status == pybox.StatusSandboxError {
		s.log.Error("sandbox error", "request_id", info.id, "session", entry.id, "err", res.Error)
		writeJSON(w, http.StatusServiceUnavailable, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleDeleteSession is DELETE /v1/sessions/{id}: 204 whether the session
// was alive or had already ended.
func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	infoFrom(r.Context()).session = id
	e, aerr := s.sessions.lookup(id, ownerFrom(r))
	switch {
	case aerr != nil && aerr.status == http.StatusGone:
		s.sessions.forget(id)
	case aerr != nil:
		writeAPIError(w, aerr)
		return
	default:
		e.setWhy(endClosed)
		e.ss.Close()
	}
	w.WriteHeader(http.StatusNoContent)
}

// fileContext bounds a file request. It is not tied to the client's
// connection: the library ends a session whose file request is cancelled.
func (s *Server) fileContext() (context.Context, func()) {
	return context.WithTimeout(s.runCtx, time.Minute)
}

// handlePutFile is PUT /v1/sessions/{id}/files/{path...}: the raw body
// becomes the file; ?mode=0755 sets its permissions (default 0644).
func (s *Server) handlePutFile(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.reject(w, reasonDraining, &apiError{status: http.StatusServiceUnavailable, msg: "server is shutting down"})
		return
	}
	name, mode, e := parseFileTarget(r, true)
	if e != nil {
		s.reject(w, reasonInvalid, e)
		return
	}
	limit := min(s.cfg.MaxBodyBytes, maxUploadBytes)
	if r.ContentLength > limit {
		s.reject(w, reasonTooLarge, tooLarge("file", limit))
		return
	}
	entry, unbusy, ok := s.session(w, r)
	if !ok {
		return
	}
	defer unbusy()
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.reject(w, reasonTooLarge, tooLarge("file", limit))
			return
		}
		s.reject(w, reasonInvalid, badRequest("", "reading the request body: %v", err))
		return
	}
	ctx, cancel := s.fileContext()
	defer cancel()
	if err := entry.ss.WriteFile(ctx, pybox.File{Name: name, Data: data, Mode: mode}); err != nil {
		writeAPIError(w, fileError(entry.id, name, err))
		return
	}
	writeJSON(w, http.StatusOK, fileInfo{Name: name, Size: int64(len(data)), Mode: fmt.Sprintf("%04o", effectiveMode(mode))})
}

// handleGetFile is GET /v1/sessions/{id}/files/{path...}: the file's raw
// bytes, at most the session's files_limit; symlinks are not followed.
func (s *Server) handleGetFile(w http.ResponseWriter, r *http.Request) {
	name, _, e := parseFileTarget(r, false)
	if e != nil {
		s.reject(w, reasonInvalid, e)
		return
	}
	entry, unbusy, ok := s.session(w, r)
	if !ok {
		return
	}
	defer unbusy()
	ctx, cancel := s.fileContext()
	defer cancel()
	f, err := entry.ss.ReadFile(ctx, name)
	if err != nil {
		writeAPIError(w, fileError(entry.id, name, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(f.Data)))
	h.Set("X-File-Mode", fmt.Sprintf("%04o", f.Mode))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(f.Data)
	}
}

// maxUploadBytes is the largest file one PUT can carry (the library's cap
// on input files).
const maxUploadBytes = 64 << 20

// fileInfo is the body of a 200 from PUT .../files/{path}.
type fileInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Mode string `json:"mode"`
}

func effectiveMode(m uint32) uint32 {
	if m == 0 {
		return 0o644
	}
	return m
}

func tooLarge(what string, limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, field: what, msg: fmt.Sprintf("over this server's %d byte limit for one file", limit)}
}

// parseFileTarget checks the {path...} of a file route (and, for PUT, the
// mode query parameter).
func parseFileTarget(r *http.Request, withMode bool) (string, uint32, *apiError) {
	name, e := checkFilePath(r.PathValue("path"))
	if e != nil {
		return "", 0, e
	}
	var mode uint32
	if withMode {
		if m := r.URL.Query().Get("mode"); m != "" {
			v, err := strconv.ParseUint(m, 8, 32)
			if err != nil || v > 0o777 || v == 0 {
				return "", 0, badRequest("mode", "%q is not a file mode: want octal permissions like 0644 or 755", m)
			}
			mode = uint32(v)
		}
	}
	return name, mode, nil
}

// checkFilePath checks a file path taken from the URL the way the library
// checks file names; every failure is a 400 naming the path.
func checkFilePath(p string) (string, *apiError) {
	if p == "" || strings.HasSuffix(p, "/") {
		return "", badRequest("path", "want a file path after /files/, e.g. /files/data/in.csv")
	}
	// The library is the authority on names; probe it with a one-file
	// request so the rules (relative, no .., no NUL, length) stay in one
	// place.
	probe := pybox.Request{Files: []pybox.File{{Name: p}}}.WithDefaults()
	if err := probe.Validate(); err != nil {
		var ie *pybox.InputError
		if errors.As(err, &ie) {
			return "", badRequest("path", "%s", strings.TrimPrefix(ie.Msg, "files[0]: "))
		}
		return "", badRequest("path", "%v", err)
	}
	return p, nil
}

// fileError maps an error of a session's file request to an answer.
func fileError(id, name string, err error) *apiError {
	if errors.Is(err, pybox.ErrSessionGone) {
		return gone(id, strings.TrimPrefix(err.Error(), pybox.ErrSessionGone.Error()+": "))
	}
	var ie *pybox.InputError
	if errors.As(err, &ie) {
		f := ie.Field
		if f == "name" {
			f = "path"
		}
		return badRequest(f, "%s", ie.Msg)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such file or directory"):
		return &apiError{status: http.StatusNotFound, field: "path", msg: fmt.Sprintf("no file %s in the session's work directory", name)}
	case strings.Contains(msg, "over the") && strings.Contains(msg, "limit"):
		return &apiError{status: http.StatusRequestEntityTooLarge, field: "path", msg: msg + " (the session's files_limit)"}
	case strings.Contains(msg, "too many levels of symbolic links"), strings.Contains(msg, "path escapes"):
		return &apiError{status: http.StatusUnprocessableEntity, field: "path", msg: fmt.Sprintf("%s is a symbolic link, which is not followed", name)}
	case strings.Contains(msg, "file exists"), strings.Contains(msg, "not a directory"):
		return &apiError{status: http.StatusUnprocessableEntity, field: "path", msg: fmt.Sprintf("a parent of %s is not a directory", name)}
	case strings.Contains(msg, "is a directory"), strings.Contains(msg, "not a regular file"):
		return &apiError{status: http.StatusUnprocessableEntity, field: "path", msg: oneLineMsg(msg)}
	case strings.Contains(msg, "no space left"), strings.Contains(msg, "quota"):
		return &apiError{status: http.StatusInsufficientStorage, field: "path", msg: "the session's work directory is full (its disk limit)"}
	}
	return &apiError{status: http.StatusInternalServerError, msg: oneLineMsg(msg)}
}

func oneLineMsg(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
}
