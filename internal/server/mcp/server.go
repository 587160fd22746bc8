// Package mcp is the MCP front end of pybox (pybox mcp), built on the
// official Go SDK. Its run_python_code tool is a drop-in replacement for
// pydantic's mcp-run-python: the same input schema and the same XML result
// text. It is an adapter over the root package only.
//
// While the code runs, each line it prints is also sent as an MCP log
// notification (stdout at level "info", stderr at "warning", as
// mcp-run-python does) once the client has set a log level. Images the code
// displays (Result.Outputs with an image/* MIME type) are returned as MCP
// image content after the text.
//
// # Sessions
//
// Beyond run_python_code, the session tools keep one sandbox alive across
// calls (globals, imports and files persist): create_session,
// run_in_session, write_file, read_file and close_session. Sessions belong
// to the client that created them: over stdio that is the one client, and
// they are all closed when it goes away; over HTTP it is the MCP session
// (Mcp-Session-Id), and they are closed when it ends. At most
// [Config.MaxSessions] are alive at once.
package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/server/httpapi"
)

// ToolName is the one tool's name, as in mcp-run-python.
const ToolName = "run_python_code"

// ToolDescription starts like mcp-run-python's so that prompts and tests
// written for it keep working.
const ToolDescription = `Tool to execute Python code and return stdout, stderr, and return value.

The code may be async, and the value on the last line will be returned as the return value.

The code is executed with CPython 3 in a fresh, isolated sandbox with no network access.
`

// inputSchema is mcp-run-python's input schema.
const inputSchema = `{
  "type": "object",
  "properties": {
    "python_code": {"type": "string", "description": "Python code to run"},
    "global_variables": {
      "type": "object",
      "additionalProperties": {},
      "default": {},
      "description": "Map of global variables in context when the code is executed"
    }
  },
  "required": ["python_code"],
  "additionalProperties": false
}`

// Config are the server-wide settings applied to every call.
type Config struct {
	// Timeout and Memory are the limits of every run; zero means the
	// library defaults.
	Timeout pybox.Duration
	Memory  pybox.Size
	// Backend is the backend of every run; empty means the default.
	Backend string
	// MaxConcurrent bounds the runs in flight; further calls wait for a
	// slot. Zero means 2*NumCPU.
	MaxConcurrent int
	// MaxSessions caps the live sessions of the server (all clients);
	// zero means DefaultMaxSessions, negative disables the session tools.
	MaxSessions int
	// Version is reported to clients.
	Version string
	// Logger receives the server's own logs (never stdout: that is the
	// stdio transport).
	Logger *slog.Logger
}

// Validate checks the configured limits with the library's own validation.
func (c Config) Validate() error {
	r := c.request("", nil).WithDefaults()
	return r.Validate()
}

func (c Config) request(code string, globals json.RawMessage) pybox.Request {
	return pybox.Request{
		Code:    code,
		Globals: globals,
		Timeout: c.Timeout,
		Memory:  c.Memory,
		Backend: c.Backend,
	}
}

// DefaultMaxSessions is the session cap when Config.MaxSessions is zero.
const DefaultMaxSessions = 8

// NewServer returns an MCP server with the run_python_code tool and the
// session tools, running code on sb. Sessions of a client that has an MCP
// session id are closed when that MCP session ends; others end by their
// idle timeout.
func NewServer(sb *pybox.Sandbox, cfg Config) *sdk.Server {
	s, _ := newServer(sb, cfg, false)
	return s
}

func newServer(sb *pybox.Sandbox, cfg Config, stdio bool) (*sdk.Server, *tool) {
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 2 * runtime.NumCPU()
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	version := cfg.Version
	if version == "" {
		version = "devel"
	}
	instructions := `Call the "run_python_code" tool with the Python code to run.`
	if cfg.MaxSessions > 0 {
		instructions += ` To keep state (variables, imports, files) across calls, call "create_session", then "run_in_session", "write_file" and "read_file" with its session_id, and "close_session" when done.`
	}
	s := sdk.NewServer(&sdk.Implementation{Name: "pybox", Title: "MCP Run Python (pybox)", Version: version}, &sdk.ServerOptions{
		Instructions: instructions,
		Logger:       cfg.Logger,
		Capabilities: &sdk.ServerCapabilities{Logging: &sdk.LoggingCapabilities{}},
	})
	t := &tool{sb: sb, cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent), stdio: stdio}
	t.sessions = newSessionSet(max(cfg.MaxSessions, 0))
	s.AddTool(&sdk.Tool{
		Name:        ToolName,
		Title:       "Run Python code",
		Description: ToolDescription,
		InputSchema: json.RawMessage(inputSchema),
	}, t.call)
	if cfg.MaxSessions > 0 {
		t.addSessionTools(s)
	}
	return s, t
}

type tool struct {
	sb  *pybox.Sandbox
	cfg Config
	// sem holds one token per run in flight (and, while waiting, per
	// call that wants one).
	sem   chan struct{}
	calls atomic.Int64
	// stdio is true when the server has exactly one client, over stdio.
	stdio    bool
	sessions *sessionSet
}

type args struct {
	PythonCode      *string         `json:"python_code"`
	GlobalVariables json.RawMessage `json:"global_variables"`
}

func parseArgs(raw json.RawMessage) (code string, globals json.RawMessage, err error) {
	var a args
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", nil, errors.New("missing arguments: python_code is required")
	}
	if err := dec.Decode(&a); err != nil {
		return "", nil, fmt.Errorf("bad arguments: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if a.PythonCode == nil {
		return "", nil, errors.New("python_code is required")
	}
	g := bytes.TrimSpace(a.GlobalVariables)
	switch {
	case len(g) == 0 || string(g) == "null":
		g = nil
	case g[0] != '{':
		return "", nil, errors.New("global_variables must be an object")
	}
	return *a.PythonCode, g, nil
}

func errorResult(msg string) *sdk.CallToolResult {
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: msg}}}
}

// call runs one run_python_code call. Every outcome of the code (including
// limits hit) is a normal result with isError false, as in mcp-run-python;
// bad arguments and sandbox failures set isError.
func (t *tool) call(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	t.calls.Add(1)
	defer t.calls.Add(-1)
	code, globals, err := parseArgs(req.Params.Arguments)
	if err != nil {
		return errorResult(err.Error()), nil
	}
	return t.runRendered(ctx, req, func(ro pybox.RunOptions) (*pybox.Result, error) {
		return t.sb.RunWith(ctx, t.cfg.request(code, globals), ro)
	}), nil
}

// runRendered takes a run slot, calls run with live log notifications and
// renders its Result as mcp-run-python's XML plus image contents.
func (t *tool) runRendered(ctx context.Context, req *sdk.CallToolRequest, run func(pybox.RunOptions) (*pybox.Result, error)) *sdk.CallToolResult {
	select {
	case t.sem <- struct{}{}:
		defer func() { <-t.sem }()
	case <-ctx.Done():
		return errorResult("cancelled while waiting for a run slot")
	}
	var (
		live outputLines
		ss   = req.Session
	)
	emit := func(stream int, line string) {
		if ss == nil {
			return
		}
		level := sdk.LoggingLevel("info")
		if stream == 1 {
			level = "warning"
		}
		// Log drops the message unless the client asked for logs (with
		// logging/setLevel, or the request's log level under the newer
		// protocol).
		ss.Log(ctx, &sdk.LoggingMessageParams{Level: level, Data: line})
	}
	// The callbacks run on the backend's goroutine, one at a time and in
	// order; Log is a quick write to the transport.
	res, err := run(pybox.RunOptions{
		Stdout: func(b []byte) { live.add(0, b, emit) },
		Stderr: func(b []byte) { live.add(1, b, emit) },
	})
	live.finish(emit)
	if res == nil {
		return errorResult(fmt.Sprintf("sandbox error: %v", err))
	}
	out := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: RenderXML(res, linesFor(res, &live))}}}
	if res.Status == pybox.StatusInputError || res.Status == pybox.StatusSandboxError {
		out.IsError = true
	}
	if err != nil && !out.IsError {
		t.cfg.Logger.Warn("run failed", "status", res.Status, "err", err)
	}
	out.Content = append(out.Content, images(res)...)
	return out
}

// images returns MCP image content for every image output of res.
func images(res *pybox.Result) []sdk.Content {
	var c []sdk.Content
	for _, o := range res.Outputs {
		if !strings.HasPrefix(o.MIME, "image/") || o.MIME == "image/svg+xml" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(o.Data)
		if err != nil {
			continue
		}
		c = append(c, &sdk.ImageContent{Data: b, MIMEType: o.MIME})
	}
	return c
}

// ServeStdio serves MCP over stdin/stdout until the client disconnects or
// ctx ends, then closes every session the client left open.
func ServeStdio(ctx context.Context, sb *pybox.Sandbox, cfg Config) error {
	return serveTransport(ctx, sb, cfg, &sdk.StdioTransport{})
}

func serveTransport(ctx context.Context, sb *pybox.Sandbox, cfg Config, tr sdk.Transport) error {
	s, t := newServer(sb, cfg, true)
	err := s.Run(ctx, tr)
	if n := t.sessions.closeAll(); n > 0 {
		t.cfg.Logger.Info("closed the client's sessions", "sessions", n)
	}
	return err
}

// HTTPHandler serves MCP over streamable HTTP at /mcp, behind the same
// bearer-token check as pybox serve (an empty token disables it).
func HTTPHandler(sb *pybox.Sandbox, cfg Config, token string) http.Handler {
	h, _ := httpHandler(sb, cfg, token)
	return h
}

func httpHandler(sb *pybox.Sandbox, cfg Config, token string) (http.Handler, *tool) {
	s, t := newServer(sb, cfg, false)
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Logger: cfg.Logger})
	mux := http.NewServeMux()
	mux.Handle("/mcp", httpapi.BearerAuth(token, h))
	return mux, t
}

// ServeHTTP serves [HTTPHandler] on ln until ctx ends, then shuts down: it
// stops accepting, lets tool calls in flight finish for up to grace, then
// cancels everything still open (runs, and the clients' idle event
// streams) and returns.
func ServeHTTP(ctx context.Context, ln net.Listener, sb *pybox.Sandbox, cfg Config, token string, grace time.Duration) error {
	h, t := httpHandler(sb, cfg, token)
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Stop accepting; the event streams keep the server from going idle,
	// so wait for the tool calls ourselves.
	ln.Close()
	deadline := time.Now().Add(grace)
	for t.calls.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	t.sessions.closeAll()
	return nil
}
