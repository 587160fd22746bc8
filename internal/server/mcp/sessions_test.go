package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func call(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) (string, *sdk.CallToolResult) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	require.NoError(t, err)
	require.True(t, len(res.Content) >= 1)
	tc, ok := res.Content[0].(*sdk.TextContent)
	require.True(t, ok, "first content is %T", res.Content[0])
	return tc.Text, res
}

func newSessionID(t *testing.T, cs *sdk.ClientSession) string {
	t.Helper()
	text, res := call(t, cs, ToolCreateSession, map[string]any{})
	require.False(t, res.IsError, text)
	m, ok := res.StructuredContent.(map[string]any)
	require.True(t, ok, "structured content %T", res.StructuredContent)
	id, _ := m["session_id"].(string)
	require.Len(t, id, 24)
	require.Contains(t, text, id)
	return id
}

func TestSessionTools(t *testing.T) {
	requireBackend(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cs := tr.connect(t, &logSink{})
			id := newSessionID(t, cs)
			text, res := call(t, cs, ToolRunInSession, map[string]any{"session_id": id, "python_code": "import math\nx = n * 2\nprint('set')", "global_variables": map[string]any{"n": 21}})
			require.False(t, res.IsError)
			require.Equal(t, "<status>success</status>\n<output>\nset\n</output>", text)
			text, _ = call(t, cs, ToolRunInSession, map[string]any{"session_id": id, "python_code": "math.floor(x / 1)"})
			require.Equal(t, "<status>success</status>\n<return_value>\n42\n</return_value>", text)

			// Files: text and base64 in, read back both ways.
			text, res = call(t, cs, ToolWriteFile, map[string]any{"session_id": id, "path": "in/a.txt", "content": "héllo"})
			require.False(t, res.IsError, text)
			text, res = call(t, cs, ToolWriteFile, map[string]any{"session_id": id, "path": "b.bin", "content": base64.StdEncoding.EncodeToString([]byte{0, 255, 1}), "encoding": "base64"})
			require.False(t, res.IsError, text)
			text, _ = call(t, cs, ToolRunInSession, map[string]any{"session_id": id, "python_code": "open('out.txt', 'w').write(open('in/a.txt').read().upper())\nlist(open('b.bin', 'rb').read())"})
			require.Contains(t, text, "<return_value>\n[\n  0,\n  255,\n  1\n]")
			text, res = call(t, cs, ToolReadFile, map[string]any{"session_id": id, "path": "out.txt"})
			require.False(t, res.IsError, text)
			require.Equal(t, "HÉLLO", text)
			text, _ = call(t, cs, ToolReadFile, map[string]any{"session_id": id, "path": "b.bin"})
			require.Equal(t, "AP8B", text) // not UTF-8: base64
			text, _ = call(t, cs, ToolReadFile, map[string]any{"session_id": id, "path": "out.txt", "encoding": "base64"})
			require.Equal(t, base64.StdEncoding.EncodeToString([]byte("HÉLLO")), text)

			for _, tc := range []struct {
				name string
				args map[string]any
				want string
			}{
				{ToolReadFile, map[string]any{"session_id": id, "path": "missing"}, "no file missing"},
				{ToolReadFile, map[string]any{"session_id": id, "path": "../etc/passwd"}, "bad path"},
				{ToolReadFile, map[string]any{"session_id": id, "path": "b.bin", "encoding": "text"}, "not UTF-8"},
				{ToolWriteFile, map[string]any{"session_id": id, "path": "x", "content": "!!", "encoding": "base64"}, "not valid base64"},
				{ToolWriteFile, map[string]any{"session_id": id, "path": "/abs", "content": ""}, "bad path"},
				{ToolRunInSession, map[string]any{"session_id": "nope", "python_code": "1"}, `no session "nope"`},
				{ToolRunInSession, map[string]any{"session_id": id}, "python_code is required"},
				{ToolRunInSession, map[string]any{"session_id": id, "python_code": "1", "code": "x"}, "unknown field"},
				{ToolCreateSession, map[string]any{"x": 1}, "unknown field"},
			} {
				text, res := call(t, cs, tc.name, tc.args)
				require.True(t, res.IsError, "%s %v: %s", tc.name, tc.args, text)
				require.Contains(t, text, tc.want)
			}

			text, res = call(t, cs, ToolCloseSession, map[string]any{"session_id": id})
			require.False(t, res.IsError, text)
			text, res = call(t, cs, ToolRunInSession, map[string]any{"session_id": id, "python_code": "x"})
			require.True(t, res.IsError)
			require.Contains(t, text, "no session")
		})
	}
}

func TestSessionLimitEnds(t *testing.T) {
	requireBackend(t)
	cs := connectHTTP(t, &logSink{})
	id := newSessionID(t, cs)
	text, res := call(t, cs, ToolRunInSession, map[string]any{"session_id": id, "python_code": "while True: pass"})
	require.False(t, res.IsError, text)
	require.True(t, strings.HasPrefix(text, "<status>run-error</status>\n<error>\nTimeoutError:"), text)
	require.Len(t, res.Content, 2)
	require.Contains(t, res.Content[1].(*sdk.TextContent).Text, "The session has ended")
	text, res = call(t, cs, ToolRunInSession, map[string]any{"session_id": id, "python_code": "1"})
	require.True(t, res.IsError)
	require.Contains(t, text, "has ended")
}

// connectMem serves one client over in-memory transports, like stdio,
// and returns a channel that receives ServeStdio's result.
func connectMem(t *testing.T, cfg Config) (*sdk.ClientSession, chan error) {
	t.Helper()
	sb := pybox.New(pybox.Options{})
	t.Cleanup(func() { sb.Close(context.Background()) })
	ct, st := sdk.NewInMemoryTransports()
	served := make(chan error, 1)
	cfg.Timeout = testTimeout
	go func() { served <- serveTransport(context.Background(), sb, cfg, st) }()
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), ct, nil)
	require.NoError(t, err)
	return cs, served
}

// TestSessionsClosedWithClient: the one (stdio-like) client's sessions are
// closed when it goes away, and the cap holds.
func TestSessionsClosedWithClient(t *testing.T) {
	requireBackend(t)
	cs, served := connectMem(t, Config{MaxSessions: 2})
	id := newSessionID(t, cs)
	newSessionID(t, cs)
	text, res := call(t, cs, ToolCreateSession, map[string]any{})
	require.True(t, res.IsError)
	require.Contains(t, text, "too many sessions")
	call(t, cs, ToolRunInSession, map[string]any{"session_id": id, "python_code": "import subprocess\nsubprocess.Popen(['sleep', '1000.321'])"})
	cs.Close()
	<-served
	noSleep(t, "1000.321")
}

// TestSessionOwnerHTTP: over HTTP each MCP session sees only its own
// sessions, and they are closed when it ends.
func TestSessionOwnerHTTP(t *testing.T) {
	requireBackend(t)
	sb := pybox.New(pybox.Options{})
	h, tl := httpHandler(sb, Config{Timeout: testTimeout}, "")
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); tl.sessions.closeAll(); sb.Close(context.Background()) })
	connect := func() *sdk.ClientSession {
		c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
		cs, err := c.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: ts.URL + "/mcp", HTTPClient: http.DefaultClient}, nil)
		require.NoError(t, err)
		return cs
	}
	a, b := connect(), connect()
	defer b.Close()
	id := newSessionID(t, a)
	if a.ID() == "" {
		t.Skip("the client speaks the sessionless protocol: session ids are the only capability")
	}
	text, res := call(t, b, ToolRunInSession, map[string]any{"session_id": id, "python_code": "1"})
	require.True(t, res.IsError)
	require.Contains(t, text, "no session")
	require.Equal(t, 1, tl.sessions.live())
	a.Close()
	waitUntil(t, func() bool { return tl.sessions.live() == 0 }, "the client's sessions to close")
}

func TestPlotImage(t *testing.T) {
	requireBackend(t)
	cs := connectHTTPConfig(t, &logSink{}, Config{Timeout: slowTimeout})
	text, res := call(t, cs, ToolName, map[string]any{"python_code": "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"})
	if strings.Contains(text, "No module named 'matplotlib'") {
		require.Feature(t, false, "python3-matplotlib")
	}
	require.Equal(t, "<status>success</status>", text)
	require.Len(t, res.Content, 2)
	img, ok := res.Content[1].(*sdk.ImageContent)
	require.True(t, ok, "second content is %T", res.Content[1])
	require.Equal(t, "image/png", img.MIMEType)
	require.True(t, bytes.HasPrefix(img.Data, []byte("\x89PNG\r\n\x1a\n")), "not a PNG")

	// A figure saved in a session comes back from read_file as an image.
	id := newSessionID(t, cs)
	call(t, cs, ToolRunInSession, map[string]any{"session_id": id, "python_code": "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([3, 1])\nplt.savefig('fig.png')"})
	_, res = call(t, cs, ToolReadFile, map[string]any{"session_id": id, "path": "fig.png"})
	require.False(t, res.IsError)
	require.Len(t, res.Content, 2)
	img = res.Content[1].(*sdk.ImageContent)
	require.True(t, bytes.HasPrefix(img.Data, []byte("\x89PNG")), "not a PNG")
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noSleep waits until no "sleep ARG" process is left on the host.
func noSleep(t *testing.T, arg string) {
	t.Helper()
	waitUntil(t, func() bool {
		out, _ := exec.Command("pgrep", "-f", "sleep "+arg).Output()
		return strings.TrimSpace(string(out)) == ""
	}, "the session's processes to be gone")
}
