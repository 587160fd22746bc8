package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox"
)

// Names of the session tools.
const (
	ToolCreateSession = "create_session"
	ToolRunInSession  = "run_in_session"
	ToolCloseSession  = "close_session"
	ToolWriteFile     = "write_file"
	ToolReadFile      = "read_file"
)

const sessionIDProp = `"session_id": {"type": "string", "description": "The id create_session returned"}`

var sessionTools = []struct {
	name, title, desc, schema string
}{
	{ToolCreateSession, "Create a Python session",
		"Start a Python session: a sandbox whose global variables, imports and files persist across run_in_session calls, " +
			"like a notebook kernel. Returns its session_id. A session ends when closed, after 10 minutes without use, " +
			"or when code in it hits a limit (time, memory, output); then create a new one.",
		`{"type": "object", "properties": {}, "additionalProperties": false}`},
	{ToolRunInSession, "Run Python code in a session",
		"Run Python code in a session made by create_session and return stdout, stderr, and return value, " +
			"in the same format as run_python_code. Variables, imports and files from earlier calls are still there. " +
			"The value on the last line is returned as the return value.",
		`{"type": "object", "properties": {` + sessionIDProp + `,
  "python_code": {"type": "string", "description": "Python code to run"},
  "global_variables": {"type": "object", "additionalProperties": {}, "default": {}, "description": "Map of global variables to set before the code runs"}},
 "required": ["session_id", "python_code"], "additionalProperties": false}`},
	{ToolCloseSession, "Close a session",
		"End a session made by create_session and free its resources.",
		`{"type": "object", "properties": {` + sessionIDProp + `}, "required": ["session_id"], "additionalProperties": false}`},
	{ToolWriteFile, "Write a file into a session",
		"Write a file into a session's working directory (the code's current directory), creating parent directories.",
		`{"type": "object", "properties": {` + sessionIDProp + `,
  "path": {"type": "string", "description": "File path relative to the working directory, e.g. data/input.csv"},
  "content": {"type": "string", "description": "The file's content: text, or base64 when encoding is base64"},
  "encoding": {"type": "string", "enum": ["text", "base64"], "default": "text", "description": "How content is encoded"}},
 "required": ["session_id", "path", "content"], "additionalProperties": false}`},
	{ToolReadFile, "Read a file from a session",
		"Read a file from a session's working directory. Text files come back as text, others as base64 " +
			"(or as asked with encoding); images are also returned as image content.",
		`{"type": "object", "properties": {` + sessionIDProp + `,
  "path": {"type": "string", "description": "File path relative to the working directory"},
  "encoding": {"type": "string", "enum": ["text", "base64"], "description": "Force the encoding of the content (default: text when the file is UTF-8, else base64)"}},
 "required": ["session_id", "path"], "additionalProperties": false}`},
}

func (t *tool) addSessionTools(s *sdk.Server) {
	handlers := map[string]sdk.ToolHandler{
		ToolCreateSession: t.createSession,
		ToolRunInSession:  t.runInSession,
		ToolCloseSession:  t.closeSession,
		ToolWriteFile:     t.writeFile,
		ToolReadFile:      t.readFile,
	}
	for _, st := range sessionTools {
		h := handlers[st.name]
		s.AddTool(&sdk.Tool{Name: st.name, Title: st.title, Description: st.desc, InputSchema: json.RawMessage(st.schema)},
			func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				t.calls.Add(1)
				defer t.calls.Add(-1)
				return h(ctx, req)
			})
	}
}

// sessionSet holds the live sessions and their owners.
type sessionSet struct {
	max int

	mu       sync.Mutex
	sessions map[string]*ownedSession
	reserved int
	// watched lists the owners whose end is being waited for.
	watched map[string]bool
}

type ownedSession struct {
	ss    *pybox.Session
	owner string
}

func newSessionSet(max int) *sessionSet {
	return &sessionSet{max: max, sessions: map[string]*ownedSession{}, watched: map[string]bool{}}
}

// owner is who a call's sessions belong to: the one stdio client, or the
// MCP session over HTTP. A sessionless HTTP client (no Mcp-Session-Id) has
// the empty owner: its session ids, which are unguessable, are all it has.
func (t *tool) owner(req *sdk.CallToolRequest) string {
	if t.stdio {
		return "stdio"
	}
	if req.Session != nil {
		return req.Session.ID()
	}
	return ""
}

// watch closes owner's sessions when its MCP session ends (HTTP clients
// with a session id; the stdio client is handled by ServeStdio).
func (t *tool) watch(owner string, ss *sdk.ServerSession) {
	if t.stdio || owner == "" || ss == nil {
		return
	}
	st := t.sessions
	st.mu.Lock()
	if st.watched[owner] {
		st.mu.Unlock()
		return
	}
	st.watched[owner] = true
	st.mu.Unlock()
	go func() {
		ss.Wait()
		st.mu.Lock()
		delete(st.watched, owner)
		st.mu.Unlock()
		if n := st.closeOwner(owner); n > 0 {
			t.cfg.Logger.Info("client gone, closed its sessions", "sessions", n)
		}
	}()
}

func (st *sessionSet) get(id, owner string) (*pybox.Session, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	os, ok := st.sessions[id]
	if !ok || os.owner != owner {
		return nil, fmt.Errorf("no session %q: create one with create_session", id)
	}
	if err := os.ss.Err(); err != nil {
		return nil, fmt.Errorf("session %s has ended (%v): create a new one with create_session", id, err)
	}
	return os.ss, nil
}

func (st *sessionSet) reserve() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pruneLocked()
	if len(st.sessions)+st.reserved >= st.max {
		return fmt.Errorf("too many sessions (the limit is %d): close one with close_session first", st.max)
	}
	st.reserved++
	return nil
}

func (st *sessionSet) add(ss *pybox.Session, owner string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reserved--
	if ss != nil {
		st.sessions[ss.ID()] = &ownedSession{ss: ss, owner: owner}
	}
}

// pruneLocked forgets sessions that ended by themselves (idle, limits), so
// that they no longer count against the cap. Their ids then say "no
// session"; the call that ended one said why.
func (st *sessionSet) pruneLocked() {
	for id, os := range st.sessions {
		select {
		case <-os.ss.Done():
			delete(st.sessions, id)
		default:
		}
	}
}

func (st *sessionSet) remove(id, owner string) (*pybox.Session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	os, ok := st.sessions[id]
	if !ok || os.owner != owner {
		return nil, false
	}
	delete(st.sessions, id)
	return os.ss, true
}

func (st *sessionSet) closeWhere(match func(*ownedSession) bool) int {
	st.mu.Lock()
	var victims []*pybox.Session
	for id, os := range st.sessions {
		if match(os) {
			victims = append(victims, os.ss)
			delete(st.sessions, id)
		}
	}
	st.mu.Unlock()
	var wg sync.WaitGroup
	for _, ss := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss.Close()
		}()
	}
	wg.Wait()
	return len(victims)
}

func (st *sessionSet) closeOwner(owner string) int {
	return st.closeWhere(func(os *ownedSession) bool { return os.owner == owner })
}

func (st *sessionSet) closeAll() int {
	return st.closeWhere(func(*ownedSession) bool { return true })
}

func (st *sessionSet) live() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pruneLocked()
	return len(st.sessions)
}

// decodeArgs decodes a tool's arguments strictly into v.
func decodeArgs(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad arguments: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

type sessionArgs struct {
	SessionID       string          `json:"session_id"`
	PythonCode      *string         `json:"python_code"`
	GlobalVariables json.RawMessage `json:"global_variables"`
	Path            string          `json:"path"`
	Content         *string         `json:"content"`
	Encoding        string          `json:"encoding"`
}

func (t *tool) sessionFor(req *sdk.CallToolRequest, a *sessionArgs) (*pybox.Session, *sdk.CallToolResult) {
	if a.SessionID == "" {
		return nil, errorResult("session_id is required")
	}
	ss, err := t.sessions.get(a.SessionID, t.owner(req))
	if err != nil {
		return nil, errorResult(err.Error())
	}
	return ss, nil
}

func (t *tool) createSession(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	var a struct{}
	if err := decodeArgs(req.Params.Arguments, &a); err != nil {
		return errorResult(err.Error()), nil
	}
	if err := t.sessions.reserve(); err != nil {
		return errorResult(err.Error()), nil
	}
	owner := t.owner(req)
	ss, _, err := t.sb.NewSession(ctx, t.cfg.request("", nil))
	t.sessions.add(ss, owner)
	if err != nil {
		return errorResult(fmt.Sprintf("could not start a session: %v", err)), nil
	}
	t.watch(owner, req.Session)
	id := ss.ID()
	return &sdk.CallToolResult{
		Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf(
			"Session %s started. Pass session_id %q to run_in_session, write_file, read_file and close_session.", id, id)}},
		StructuredContent: map[string]any{"session_id": id},
	}, nil
}

func (t *tool) runInSession(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	var a sessionArgs
	if err := decodeArgs(req.Params.Arguments, &a); err != nil {
		return errorResult(err.Error()), nil
	}
	if a.Path != "" || a.Content != nil || a.Encoding != "" {
		return errorResult("run_in_session takes session_id, python_code and global_variables"), nil
	}
	if a.PythonCode == nil {
		return errorResult("python_code is required"), nil
	}
	g := bytes.TrimSpace(a.GlobalVariables)
	switch {
	case len(g) == 0 || string(g) == "null":
		g = nil
	case g[0] != '{':
		return errorResult("global_variables must be an object"), nil
	}
	ss, bad := t.sessionFor(req, &a)
	if bad != nil {
		return bad, nil
	}
	out := t.runRendered(ctx, req, func(ro pybox.RunOptions) (*pybox.Result, error) {
		return ss.RunWith(ctx, pybox.Exec{Code: *a.PythonCode, Globals: g}, ro)
	})
	if err := ss.Err(); err != nil {
		out.Content = append(out.Content, &sdk.TextContent{Text: fmt.Sprintf(
			"The session has ended (%v); its state is lost. Create a new one with create_session.", err)})
	}
	return out, nil
}

func (t *tool) closeSession(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	var a struct {
		SessionID string `json:"session_id"`
	}
	if err := decodeArgs(req.Params.Arguments, &a); err != nil {
		return errorResult(err.Error()), nil
	}
	ss, ok := t.sessions.remove(a.SessionID, t.owner(req))
	if !ok {
		return errorResult(fmt.Sprintf("no session %q", a.SessionID)), nil
	}
	ss.Close()
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "Session " + a.SessionID + " closed."}}}, nil
}

// fileTimeout bounds a file request. It is not the call's context: the
// library ends a session whose file request is cancelled.
const fileTimeout = time.Minute

func (t *tool) writeFile(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	var a sessionArgs
	if err := decodeArgs(req.Params.Arguments, &a); err != nil {
		return errorResult(err.Error()), nil
	}
	if a.PythonCode != nil || a.GlobalVariables != nil {
		return errorResult("write_file takes session_id, path, content and encoding"), nil
	}
	if a.Path == "" || a.Content == nil {
		return errorResult("path and content are required"), nil
	}
	var data []byte
	switch a.Encoding {
	case "", "text":
		data = []byte(*a.Content)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(*a.Content))
		if err != nil {
			return errorResult(fmt.Sprintf("content is not valid base64: %v", err)), nil
		}
		data = b
	default:
		return errorResult(fmt.Sprintf("encoding %q: want text or base64", a.Encoding)), nil
	}
	ss, bad := t.sessionFor(req, &a)
	if bad != nil {
		return bad, nil
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fileTimeout)
	defer cancel()
	if err := ss.WriteFile(fctx, pybox.File{Name: a.Path, Data: data}); err != nil {
		return errorResult(fileErr(a.Path, err)), nil
	}
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("Wrote %d bytes to %s.", len(data), a.Path)}}}, nil
}

func (t *tool) readFile(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	var a sessionArgs
	if err := decodeArgs(req.Params.Arguments, &a); err != nil {
		return errorResult(err.Error()), nil
	}
	if a.PythonCode != nil || a.GlobalVariables != nil || a.Content != nil {
		return errorResult("read_file takes session_id, path and encoding"), nil
	}
	if a.Path == "" {
		return errorResult("path is required"), nil
	}
	if a.Encoding != "" && a.Encoding != "text" && a.Encoding != "base64" {
		return errorResult(fmt.Sprintf("encoding %q: want text or base64", a.Encoding)), nil
	}
	ss, bad := t.sessionFor(req, &a)
	if bad != nil {
		return bad, nil
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fileTimeout)
	defer cancel()
	f, err := ss.ReadFile(fctx, a.Path)
	if err != nil {
		return errorResult(fileErr(a.Path, err)), nil
	}
	enc := a.Encoding
	if enc == "" {
		enc = "base64"
		if utf8.Valid(f.Data) {
			enc = "text"
		}
	}
	if enc == "text" && !utf8.Valid(f.Data) {
		return errorResult(fmt.Sprintf("%s is not UTF-8 text: read it with encoding base64", a.Path)), nil
	}
	content := string(f.Data)
	if enc == "base64" {
		content = base64.StdEncoding.EncodeToString(f.Data)
	}
	out := &sdk.CallToolResult{
		Content: []sdk.Content{&sdk.TextContent{Text: content}},
		StructuredContent: map[string]any{
			"path": a.Path, "size": len(f.Data), "encoding": enc, "content": content,
		},
	}
	if mt := imageType(a.Path); mt != "" {
		out.Content = append(out.Content, &sdk.ImageContent{Data: f.Data, MIMEType: mt})
	}
	return out, nil
}

// imageType is the MIME type of an image file name MCP clients can show.
func imageType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	}
	return ""
}

// fileErr is a one-line explanation of a failed file request.
func fileErr(name string, err error) string {
	msg := err.Error()
	var ie *pybox.InputError
	switch {
	case errors.Is(err, pybox.ErrSessionGone):
		return "the session has ended: create a new one with create_session (" + msg + ")"
	case errors.As(err, &ie):
		return "bad path " + name + ": " + ie.Msg
	case strings.Contains(msg, "no such file or directory"):
		return "no file " + name + " in the session's working directory"
	case strings.Contains(msg, "too many levels of symbolic links"):
		return name + " is a symbolic link, which is not followed"
	}
	return strings.ReplaceAll(msg, "\n", " ")
}
