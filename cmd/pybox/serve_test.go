package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestServeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"public address without token", []string{"serve", "--listen", "0.0.0.0:0"}, "without a token"},
		{"all interfaces without token", []string{"serve", "--listen", ":0"}, "without a token"},
		{"bad address", []string{"serve", "--listen", "nowhere"}, "bad listen address"},
		{"negative queue", []string{"serve", "--max-queue", "-1"}, "must not be negative"},
		{"bad size", []string{"serve", "--max-body", "lots"}, "invalid size"},
		{"argument", []string{"serve", "extra"}, "no arguments"},
		{"negative sessions", []string{"serve", "--max-sessions", "-1"}, "must not be negative"},
		{"missing token file", []string{"serve", "--token-file", "/nonexistent/tokens"}, "no such file"},
		{"zero lifetime", []string{"serve", "--max-session-lifetime", "0"}, "must be positive"},
		{"mcp bad memory", []string{"mcp", "--memory", "1k"}, "memory"},
		{"mcp bad backend", []string{"mcp", "--backend", "docker"}, "unknown backend"},
		{"mcp public without token", []string{"mcp", "--http", "0.0.0.0:0"}, "without a token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), "PYBOX_TOKEN=")
			var errb strings.Builder
			cmd.Stderr = &errb
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != exitUsage {
				t.Fatalf("want exit %d, got %v", exitUsage, err)
			}
			oneLine(t, outcome{code: exitUsage, stderr: errb.String()}, tc.want)
		})
	}
}

func TestServeHelp(t *testing.T) {
	for _, c := range []string{"serve", "mcp"} {
		o := runBin(t, "", c, "--help")
		if o.code != 0 || !strings.Contains(o.stdout, "Usage: pybox "+c) || !strings.Contains(o.stdout, "--token") {
			t.Errorf("pybox %s --help: code %d, stdout %q", c, o.code, o.stdout)
		}
	}
}

// startServer starts pybox with args and returns the address from its
// "serving" log line.
func startServer(t *testing.T, env []string, args ...string) (*exec.Cmd, string, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if line["msg"] == "serving" {
			return cmd, line["addr"].(string), sc
		}
	}
	t.Fatalf("no serving line (err %v)", sc.Err())
	return nil, "", nil
}

func TestServeSignal(t *testing.T) {
	cmd, addr, logs := startServer(t, []string{"PYBOX_TOKEN=tok"}, "serve", "--listen", "127.0.0.1:0")
	r, err := http.Get("http://" + addr + "/healthz")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", r, err)
	}
	r.Body.Close()

	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/run", strings.NewReader(`{"code": "print(6*7)"}`))
	req.Header.Set("Content-Type", "application/json")
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 401 {
		t.Fatalf("run without the token from $PYBOX_TOKEN: %s", r.Status)
	}
	req, _ = http.NewRequest("POST", "http://"+addr+"/v1/run", strings.NewReader(`{"code": "print(6*7)"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tok")
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	var res struct{ Status, Stdout, Error string }
	json.Unmarshal(body, &res)
	switch r.StatusCode {
	case 200:
		if res.Status != "success" || res.Stdout != "42\n" {
			t.Errorf("run: %s", body)
		}
	case 503:
		t.Logf("no working backend here: %s", res.Error)
	default:
		t.Errorf("run: %s %s", r.Status, body)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	var sawShutdown bool
	for logs.Scan() {
		if strings.Contains(logs.Text(), `"msg":"shut down"`) {
			sawShutdown = true
		}
	}
	err = cmd.Wait()
	if err != nil || !sawShutdown {
		t.Fatalf("after SIGTERM: exit %v, saw shutdown line %v", err, sawShutdown)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

// TestServeSessionTokens: tokens from --token-file each own their sessions,
// and SIGTERM closes the sessions left open.
func TestServeSessionTokens(t *testing.T) {
	tf := t.TempDir() + "/tokens"
	os.WriteFile(tf, []byte("# two clients\nalice\n\nbob\n"), 0o600)
	cmd, addr, logs := startServer(t, []string{"PYBOX_TOKEN="}, "serve", "--listen", "127.0.0.1:0", "--token-file", tf)
	call := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	code, body := call("POST", "/v1/sessions", "alice", `{"code": "x = 6 * 7"}`)
	if code == 503 {
		t.Logf("no working backend here: %s", body)
		return
	}
	var c struct{ ID string }
	if code != 201 || json.Unmarshal([]byte(body), &c) != nil {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/sessions/"+c.ID+"/run", "bob", `{"code": "x"}`); code != 404 {
		t.Errorf("bob sees alice's session: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/sessions/"+c.ID+"/run", "alice", `{"code": "x"}`); code != 200 || !strings.Contains(body, `"return_value":42`) {
		t.Errorf("alice's run: %d %s", code, body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var closed bool
	for logs.Scan() {
		if strings.Contains(logs.Text(), `"msg":"shut down"`) && strings.Contains(logs.Text(), `"sessions_closed":1`) {
			closed = true
		}
	}
	if err := cmd.Wait(); err != nil || !closed {
		t.Fatalf("after SIGTERM: exit %v, saw sessions closed %v", err, closed)
	}
}
