package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// tsClientDir prepares testdata/ts-client (the official TypeScript SDK,
// pinned by package-lock.json) in a cache directory keyed by the lock
// file, running npm ci only when its node_modules is missing.
func tsClientDir(t *testing.T) string {
	t.Helper()
	_, nerr := exec.LookPath("node")
	npm, merr := exec.LookPath("npm")
	require.Feature(t, nerr == nil && merr == nil, "node and npm in PATH (Debian: apt-get install nodejs npm)")
	src := filepath.Join("testdata", "ts-client")
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	require.NoError(t, err)
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "pybox", "ts-client-"+hex.EncodeToString(sum[:6]))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, f := range []string{"package.json", "package-lock.json", "client.mjs"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.Feature(t, err == nil, "npm ci of the TypeScript MCP SDK (needs the npm registry once): %v: %s", err, out)
	}
	return dir
}

type tsOutput struct {
	Server string   `json:"server"`
	Tools  []string `json:"tools"`
	Run    struct {
		IsError bool   `json:"isError"`
		Text    string `json:"text"`
	} `json:"run"`
	Session struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"session"`
}

func runTSClient(t *testing.T, dir string, env []string, args ...string) tsOutput {
	t.Helper()
	cmd := exec.Command("node", append([]string{"client.mjs"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "node client.mjs %v: %s", args, stderr.String())
	var out tsOutput
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), "output %q (stderr %s)", stdout.String(), stderr.String())
	return out
}

// TestTypeScriptSDK drives pybox mcp (the real binary, over stdio) and the
// streamable HTTP handler with the official TypeScript SDK client.
func TestTypeScriptSDK(t *testing.T) {
	requireBackend(t)
	dir := tsClientDir(t)
	bin := filepath.Join(t.TempDir(), "pybox")
	build := exec.Command("go", "build", "-o", bin, "../../../cmd/pybox")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	sb := pybox.New(pybox.Options{})
	ts := httptest.NewServer(HTTPHandler(sb, Config{Timeout: testTimeout}, "tok"))
	t.Cleanup(func() { ts.Close(); sb.Close(context.Background()) })

	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"stdio", nil, []string{"stdio", bin, "mcp", "--timeout", "10s"}},
		{"http", []string{"PYBOX_TOKEN=tok"}, []string{"http", ts.URL + "/mcp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runTSClient(t, dir, tc.env, tc.args...)
			require.Equal(t, "pybox", got.Server)
			require.Equal(t, []string{"close_session", "create_session", "read_file", "run_in_session", "run_python_code", "write_file"}, got.Tools)
			require.False(t, got.Run.IsError)
			require.Equal(t, "<status>success</status>\n<output>\nhi\n</output>\n<return_value>\n42\n</return_value>", got.Run.Text)
			require.Len(t, got.Session.ID, 24)
			require.Equal(t, "<status>success</status>\n<return_value>\n42\n</return_value>", got.Session.Text)
		})
	}
}
