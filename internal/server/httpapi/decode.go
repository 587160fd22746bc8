package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/pybox-dev/pybox"
)

// apiError is an HTTP error answer: {"error": msg, "field": field}.
type apiError struct {
	status int
	msg    string
	field  string
}

func (e *apiError) Error() string {
	if e.field != "" {
		return e.field + ": " + e.msg
	}
	return e.msg
}

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...), field: field}
}

// checkContentType wants application/json (any parameters).
func checkContentType(r *http.Request) *apiError {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return &apiError{status: http.StatusUnsupportedMediaType, msg: "missing Content-Type: want application/json"}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("unsupported Content-Type %q: want application/json", ct)}
	}
	return nil
}

// readBody reads at most max bytes of the body.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *apiError) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body is over the %d byte limit", max)}
		}
		return nil, badRequest("", "reading the request body: %v", err)
	}
	return b, nil
}

// parseRunRequest decodes and checks a /v1/run body. Every failure is a 4xx
// apiError; it never panics, whatever the input (see FuzzParseRunRequest).
// The returned request is the one to run: the server's caps are applied but
// library defaults are left to the library.
func (s *Server) parseRunRequest(body []byte) (pybox.Request, *apiError) {
	req, aerr := decodeRequest(body)
	if aerr != nil {
		return req, aerr
	}
	if aerr := s.checkPolicy(&req); aerr != nil {
		return req, aerr
	}
	// Validate once here so that invalid requests never take a run slot;
	// the library validates again (cheap) when it runs.
	d := req.WithDefaults()
	if err := d.Validate(); err != nil {
		return req, inputError(err)
	}
	return req, nil
}

// decodeRequest decodes exactly one JSON object into a Request, rejecting
// unknown fields and trailing data.
func decodeRequest(body []byte) (pybox.Request, *apiError) {
	var req pybox.Request
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) == 0 {
		return req, badRequest("", "empty body: want a JSON object like {\"code\": \"print(1)\"}")
	}
	if t[0] != '{' {
		return req, badRequest("", "body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return pybox.Request{}, jsonError(body, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return pybox.Request{}, badRequest("", "body must hold a single JSON object (found data after it)")
	}
	return req, nil
}

// jsonError turns a decoding error into a clear message naming the field.
func jsonError(body []byte, err error) *apiError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "malformed JSON: unexpected end of body")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = findBadField(body)
		}
		return badRequest(field, "wrong type: got JSON %s, want %s", te.Value, jsonTypeName(te.Type.Kind().String()))
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return badRequest(f, "unknown field %q", f)
	}
	// Errors from the schema's own UnmarshalJSON (sizes, durations, base64)
	// do not say which field they came from: find it.
	return badRequest(findBadField(body), "%s", strings.TrimPrefix(msg, "json: "))
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return kind
}

// findBadField decodes body one top-level key at a time and returns the
// first key whose value fails to decode; "" if none does.
func findBadField(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	for k, v := range m {
		one, err := json.Marshal(map[string]json.RawMessage{k: v})
		if err != nil {
			continue
		}
		var r pybox.Request
		if json.Unmarshal(one, &r) != nil {
			return k
		}
	}
	return ""
}

// inputError maps a library validation error to a 400.
func inputError(err error) *apiError {
	var ie *pybox.InputError
	if errors.As(err, &ie) {
		return badRequest(ie.Field, "%s", ie.Msg)
	}
	return badRequest("", "%v", err)
}

// checkPolicy applies the operator's caps and refusals that go beyond the
// library's own validation.
func (s *Server) checkPolicy(req *pybox.Request) *apiError {
	if !s.cfg.AllowMounts {
		if len(req.Mounts) > 0 {
			return &apiError{status: http.StatusBadRequest, field: "mounts", msg: "host mounts are disabled on this server (start it with --allow-mounts)"}
		}
		if req.Python != "" {
			return &apiError{status: http.StatusBadRequest, field: "python", msg: "choosing the interpreter is disabled on this server (start it with --allow-mounts)"}
		}
	}
	if len(req.Code) > s.cfg.MaxCodeBytes {
		return badRequest("code", "%d bytes is over this server's %d byte limit", len(req.Code), s.cfg.MaxCodeBytes)
	}
	maxT := pybox.Duration(s.cfg.MaxTimeout)
	switch {
	case req.Timeout == 0 && time.Duration(pybox.Request{}.WithDefaults().Timeout) > s.cfg.MaxTimeout:
		req.Timeout = maxT
	case req.Timeout > maxT:
		return badRequest("timeout", "%s is over this server's %s maximum", req.Timeout, maxT)
	}
	switch {
	case req.Memory == 0 && pybox.Request{}.WithDefaults().Memory > s.cfg.MaxMemory:
		req.Memory = s.cfg.MaxMemory
	case req.Memory > s.cfg.MaxMemory:
		return badRequest("memory", "%s is over this server's %s maximum", req.Memory, s.cfg.MaxMemory)
	}
	return nil
}

// writeJSON writes v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// errorBody is the JSON body of every 4xx/5xx answer that is not a Result.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, errorBody{Error: msg, Field: field})
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeError(w, e.status, e.msg, e.field)
}

// sessionCreateResponse is the body of a 201 from POST /v1/sessions.
type sessionCreateResponse struct {
	ID     string        `json:"id"`
	Result *pybox.Result `json:"result,omitempty"`
}

// parseSessionRequest decodes and checks a POST /v1/sessions body: a
// Request, with the session caps applied too. Like parseRunRequest it only
// ever fails with a 4xx (see FuzzParseSessionRequest).
func (s *Server) parseSessionRequest(body []byte) (pybox.Request, *apiError) {
	req, aerr := decodeRequest(body)
	if aerr != nil {
		return req, aerr
	}
	if req.CollectFiles {
		return req, badRequest("collect_files", "does not apply to sessions: download files with GET /v1/sessions/{id}/files/{path}")
	}
	if aerr := s.checkPolicy(&req); aerr != nil {
		return req, aerr
	}
	d := pybox.Request{}.WithDefaults()
	maxL := pybox.Duration(s.cfg.MaxLifetime)
	for _, f := range []struct {
		name string
		v    *pybox.Duration
		def  pybox.Duration
	}{
		{"idle_timeout", &req.IdleTimeout, d.IdleTimeout},
		{"max_lifetime", &req.MaxLifetime, d.MaxLifetime},
	} {
		switch {
		case *f.v == 0 && f.def > maxL:
			*f.v = maxL
		case *f.v > maxL:
			return req, badRequest(f.name, "%s is over this server's %s maximum", *f.v, maxL)
		}
	}
	dd := req.WithDefaults()
	if err := dd.Validate(); err != nil {
		return req, inputError(err)
	}
	return req, nil
}

// parseExec decodes and checks a POST /v1/sessions/{id}/run body:
// {"code", "globals", "timeout"}, nothing else.
func (s *Server) parseExec(body []byte) (pybox.Exec, *apiError) {
	var ex pybox.Exec
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) == 0 {
		return ex, badRequest("", "empty body: want a JSON object like {\"code\": \"print(1)\"}")
	}
	if t[0] != '{' {
		return ex, badRequest("", "body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ex); err != nil {
		return pybox.Exec{}, execJSONError(body, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return pybox.Exec{}, badRequest("", "body must hold a single JSON object (found data after it)")
	}
	if len(ex.Code) > s.cfg.MaxCodeBytes {
		return ex, badRequest("code", "%d bytes is over this server's %d byte limit", len(ex.Code), s.cfg.MaxCodeBytes)
	}
	if maxT := pybox.Duration(s.cfg.MaxTimeout); ex.Timeout > maxT {
		return ex, badRequest("timeout", "%s is over this server's %s maximum", ex.Timeout, maxT)
	}
	// The fields an Exec shares with a Request validate the same way.
	probe := pybox.Request{Code: ex.Code, Globals: ex.Globals, Timeout: ex.Timeout}.WithDefaults()
	if err := probe.Validate(); err != nil {
		return ex, inputError(err)
	}
	return ex, nil
}

// execJSONError is jsonError for an Exec body: the field of a bad value is
// found by decoding into an Exec.
func execJSONError(body []byte, err error) *apiError {
	e := jsonError(body, err)
	if e.field == "" {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			for k, v := range m {
				one, _ := json.Marshal(map[string]json.RawMessage{k: v})
				var ex pybox.Exec
				if json.Unmarshal(one, &ex) != nil {
					e.field = k
					break
				}
			}
		}
	}
	return e
}
