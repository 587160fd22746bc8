package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// stdioEnv makes the test binary serve MCP over stdio (see TestMain), so
// the stdio tests talk to a real subprocess.
const stdioEnv = "PYBOX_MCP_TEST_STDIO"

// testTimeout is every test server's run time limit, but slowTimeout's:
// a cold matplotlib import can take seconds while the rest of the suite
// loads the machine.
const (
	testTimeout = pybox.Duration(3 * time.Second)
	slowTimeout = pybox.Duration(60 * time.Second)
)

func TestMain(m *testing.M) {
	pybox.Init() // the native backend re-executes this binary
	if os.Getenv(stdioEnv) == "1" {
		sb := pybox.New(pybox.Options{})
		err := ServeStdio(context.Background(), sb, Config{Timeout: testTimeout})
		sb.Close(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, "mcp test server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var (
	backendOnce sync.Once
	backendErr  string
)

func requireBackend(t *testing.T) {
	t.Helper()
	backendOnce.Do(func() {
		sb := pybox.New(pybox.Options{})
		defer sb.Close(context.Background())
		res, err := sb.Run(context.Background(), pybox.Request{Code: "print(1)"})
		if err != nil || res.Status != pybox.StatusSuccess || res.Stdout != "1\n" {
			backendErr = res.Status + ": " + res.Error
		}
	})
	require.Feature(t, backendErr == "", "a working default backend (%s)", backendErr)
}

// logSink collects logging/message notifications.
type logSink struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logSink) handler(_ context.Context, r *sdk.LoggingMessageRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, fmt.Sprintf("%s:%v", r.Params.Level, r.Params.Data))
}

func (l *logSink) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

func connectStdio(t *testing.T, logs *logSink) *sdk.ClientSession {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stdioEnv+"=1")
	cmd.Stderr = os.Stderr
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, &sdk.ClientOptions{LoggingMessageHandler: logs.handler})
	cs, err := c.Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { cs.Close() })
	return cs
}

type authTransport struct{ token string }

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+a.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connectHTTP(t *testing.T, logs *logSink) *sdk.ClientSession {
	t.Helper()
	return connectHTTPConfig(t, logs, Config{Timeout: testTimeout})
}

// connectHTTPConfig is connectHTTP with a server configured by cfg.
func connectHTTPConfig(t *testing.T, logs *logSink, cfg Config) *sdk.ClientSession {
	t.Helper()
	sb := pybox.New(pybox.Options{})
	ts := httptest.NewServer(HTTPHandler(sb, cfg, "tok"))
	t.Cleanup(func() { ts.Close(); sb.Close(context.Background()) })

	// Without the token the endpoint refuses.
	r, err := http.Post(ts.URL+"/mcp", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, 401, r.StatusCode)

	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, &sdk.ClientOptions{LoggingMessageHandler: logs.handler})
	cs, err := c.Connect(context.Background(), &sdk.StreamableClientTransport{
		Endpoint:   ts.URL + "/mcp",
		HTTPClient: &http.Client{Transport: authTransport{"tok"}},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { cs.Close() })
	return cs
}

var transports = []struct {
	name    string
	connect func(*testing.T, *logSink) *sdk.ClientSession
}{
	{"stdio", connectStdio},
	{"http", connectHTTP},
}

func TestListTools(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cs := tr.connect(t, &logSink{})
			res, err := cs.ListTools(context.Background(), nil)
			require.NoError(t, err)
			var names []string
			var tool *sdk.Tool
			for _, tl := range res.Tools {
				names = append(names, tl.Name)
				if tl.Name == ToolName {
					tool = tl
				}
			}
			sort.Strings(names)
			require.Equal(t, []string{"close_session", "create_session", "read_file", "run_in_session", "run_python_code", "write_file"}, names)
			require.True(t, strings.HasPrefix(tool.Description, "Tool to execute Python code and return stdout, stderr, and return value."), tool.Description)
			b, _ := json.Marshal(tool.InputSchema)
			var schema struct {
				Type       string                     `json:"type"`
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			}
			require.NoError(t, json.Unmarshal(b, &schema))
			require.Equal(t, "object", schema.Type)
			require.Equal(t, []string{"python_code"}, schema.Required)
			var code map[string]any
			require.NoError(t, json.Unmarshal(schema.Properties["python_code"], &code))
			require.Equal(t, map[string]any{"type": "string", "description": "Python code to run"}, code)
			require.Contains(t, string(schema.Properties["global_variables"]), `"default":{}`)
			init := cs.InitializeResult()
			require.NotNil(t, init.Capabilities.Logging)
		})
	}
}

func callText(t *testing.T, cs *sdk.ClientSession, args map[string]any) (string, *sdk.CallToolResult) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: ToolName, Arguments: args})
	require.NoError(t, err)
	require.True(t, len(res.Content) >= 1)
	tc, ok := res.Content[0].(*sdk.TextContent)
	require.True(t, ok, "first content is %T", res.Content[0])
	return tc.Text, res
}

func TestBadArguments(t *testing.T) {
	cs := connectHTTP(t, &logSink{})
	text, res := callText(t, cs, map[string]any{"code": "print(1)"})
	require.True(t, res.IsError)
	require.Contains(t, text, "unknown field")
}

func TestRunPythonCode(t *testing.T) {
	requireBackend(t)
	tests := []struct {
		name string
		args map[string]any
		want string
	}{
		{
			name: "basic code",
			args: map[string]any{"python_code": "x = 4\nprint(f'{x=}')\nx"},
			want: "<status>success</status>\n<output>\nx=4\n</output>\n<return_value>\n4\n</return_value>",
		},
		{
			name: "no output",
			args: map[string]any{"python_code": "[1, 2, 3]"},
			want: "<status>success</status>\n<return_value>\n[\n  1,\n  2,\n  3\n]\n</return_value>",
		},
		{
			name: "print only",
			args: map[string]any{"python_code": "print('hello')\nprint('world')"},
			want: "<status>success</status>\n<output>\nhello\nworld\n</output>",
		},
		{
			name: "global variables",
			args: map[string]any{"python_code": "{'sum': a + b}", "global_variables": map[string]any{"a": 1, "b": 2}},
			want: "<status>success</status>\n<return_value>\n{\n  \"sum\": 3\n}\n</return_value>",
		},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cs := tr.connect(t, &logSink{})
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					text, res := callText(t, cs, tc.args)
					require.False(t, res.IsError)
					require.Len(t, res.Content, 1)
					require.Equal(t, tc.want, text)
				})
			}
			t.Run("undefined variable", func(t *testing.T) {
				text, res := callText(t, cs, map[string]any{"python_code": "print(unknown)"})
				require.False(t, res.IsError, "run errors are not tool errors, as in mcp-run-python")
				require.Equal(t, "<status>run-error</status>\n<error>\n"+
					"Traceback (most recent call last):\n"+
					"  File \"main.py\", line 1, in <module>\n"+
					"    print(unknown)\n"+
					"          ^^^^^^^\n"+
					"NameError: name 'unknown' is not defined\n"+
					"\n</error>", text)
			})
			if tr.name != "http" {
				return // the timeout case once is enough
			}
			t.Run("timeout", func(t *testing.T) {
				text, res := callText(t, cs, map[string]any{"python_code": "print('start', flush=True)\nwhile True: pass"})
				_ = res
				require.True(t, strings.HasPrefix(text, "<status>run-error</status>\n<output>\nstart\n</output>\n<error>\nTimeoutError:"), text)
			})
		})
	}
}

func TestLogNotifications(t *testing.T) {
	requireBackend(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			logs := &logSink{}
			cs := tr.connect(t, logs)
			require.NoError(t, cs.SetLoggingLevel(context.Background(), &sdk.SetLoggingLevelParams{Level: "debug"}))
			// Older protocol versions use the session's level; the newer one
			// (sessionless) wants the level in each request's _meta.
			_, err := cs.CallTool(context.Background(), &sdk.CallToolParams{
				Meta:      sdk.Meta{sdk.MetaKeyLogLevel: "debug"},
				Name:      ToolName,
				Arguments: map[string]any{"python_code": "import sys\nprint('to out', flush=True)\nprint('to err', file=sys.stderr)"},
			})
			require.NoError(t, err)
			var got []string
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if got = logs.get(); len(got) >= 2 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			// stdout and stderr are separate pipes: their relative order
			// is not guaranteed.
			sort.Strings(got)
			require.Equal(t, []string{"info:to out", "warning:to err"}, got)
		})
	}
}
