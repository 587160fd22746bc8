package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

type created struct {
	ID     string        `json:"id"`
	Result *pybox.Result `json:"result"`
}

func createSession(t *testing.T, url, body string, hdr ...string) created {
	t.Helper()
	r := do(t, context.Background(), "POST", url+"/v1/sessions", body, hdr...)
	require.Equal(t, 201, r.status, string(r.body))
	var c created
	require.NoError(t, json.Unmarshal(r.body, &c), string(r.body))
	require.Len(t, c.ID, 24)
	require.Equal(t, "/v1/sessions/"+c.ID, r.header.Get("Location"))
	return c
}

func sessionRun(t *testing.T, url, id, body string, hdr ...string) resp {
	t.Helper()
	return do(t, context.Background(), "POST", url+"/v1/sessions/"+id+"/run", body, hdr...)
}

// rawDo sends body with no Content-Type (file uploads are raw bytes).
func rawDo(t *testing.T, method, url string, body []byte, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(string(body)))
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return resp{r.StatusCode, r.Header, b}
}

func metricsText(t *testing.T, url string, hdr ...string) string {
	t.Helper()
	return string(do(t, context.Background(), "GET", url+"/metrics", "", hdr...).body)
}

func TestSessionLifecycle(t *testing.T) {
	requireBackend(t)
	s, ts := newTestServer(t, Config{MaxBodyBytes: 1 << 20})
	c := createSession(t, ts.URL, `{"code": "import math\nx = 41\nprint('first')", "timeout": "10s"}`)
	require.NotNil(t, c.Result)
	require.Equal(t, pybox.StatusSuccess, c.Result.Status, c.Result.Error)
	require.Equal(t, "first\n", c.Result.Stdout)
	require.Equal(t, 1, s.sessions.live())

	// State persists between runs; globals come in per run.
	r := sessionRun(t, ts.URL, c.ID, `{"code": "x + y", "globals": {"y": 1}}`)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, "42", string(r.result(t).ReturnValue))
	r = sessionRun(t, ts.URL, c.ID, `{"code": "1/0"}`)
	require.Equal(t, 200, r.status)
	require.Equal(t, pybox.StatusRunError, r.result(t).Status)
	require.Contains(t, r.result(t).Error, "ZeroDivisionError")

	// Live output, as for /v1/run.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/sessions/"+c.ID+"/run", strings.NewReader(`{"code": "for i in range(2): print(i, flush=True)\nmath.floor(x / 2)"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	hr, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	evs := readEvents(t, hr.Body)
	hr.Body.Close()
	require.Equal(t, "result", evs[len(evs)-1].name)
	var out string
	for _, ev := range evs[:len(evs)-1] {
		var chunk string
		require.NoError(t, json.Unmarshal([]byte(ev.data), &chunk))
		out += chunk
	}
	require.Equal(t, "0\n1\n", out)
	var res pybox.Result
	require.NoError(t, json.Unmarshal([]byte(evs[len(evs)-1].data), &res))
	require.Equal(t, "20", string(res.ReturnValue))

	// Files in and out of the work directory.
	files := ts.URL + "/v1/sessions/" + c.ID + "/files/"
	r = rawDo(t, "PUT", files+"in/data.csv?mode=0600", []byte("a,b\n1,2\n"))
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, `{"name":"in/data.csv","size":8,"mode":"0600"}`+"\n", string(r.body))
	r = sessionRun(t, ts.URL, c.ID, `{"code": "import os\nos.symlink('/etc/passwd', 'link')\nos.mkdir('dir')\nopen('out.txt', 'w').write(open('in/data.csv').read().upper())\noct(os.stat('in/data.csv').st_mode & 0o777)"}`)
	require.Equal(t, `"0o600"`, string(r.result(t).ReturnValue), r.result(t).Error)
	r = rawDo(t, "GET", files+"out.txt", nil)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, "A,B\n1,2\n", string(r.body))
	require.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
	require.Equal(t, "0644", r.header.Get("X-File-Mode"))

	for _, tc := range []struct {
		method, path string
		body         string
		status       int
		want         string
	}{
		{"GET", "missing.txt", "", 404, "no file missing.txt"},
		{"GET", "link", "", 422, "symbolic link"},
		{"GET", "dir", "", 422, "not a regular file"},
		{"PUT", "dir", "x", 422, "is a directory"},
		{"PUT", "out.txt/x", "x", 422, "not a directory"},
		{"GET", "..%2f..%2fetc%2fpasswd", "", 400, "climbs out"},
		{"GET", "%2fetc%2fpasswd", "", 400, "must be relative"},
		{"PUT", "a?mode=9", "x", 400, "not a file mode"},
		{"PUT", "a?mode=01777", "x", 400, "not a file mode"},
		{"GET", "in/", "", 400, "want a file path"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := rawDo(t, tc.method, files+tc.path, []byte(tc.body))
			require.Equal(t, tc.status, r.status, string(r.body))
			require.Contains(t, r.errBody(t).Error, tc.want)
		})
	}
	// Too large: over the server's body cap on upload.
	r = rawDo(t, "PUT", files+"big.bin", make([]byte, 2<<20))
	require.Equal(t, 413, r.status, string(r.body))
	require.Contains(t, r.errBody(t).Error, "byte limit")

	// Deleting ends it; afterwards it is gone, with the reason.
	r = do(t, context.Background(), "DELETE", ts.URL+"/v1/sessions/"+c.ID, "")
	require.Equal(t, 204, r.status, string(r.body))
	waitFor(t, func() bool { return s.sessions.live() == 0 }, "the session to be removed")
	r = sessionRun(t, ts.URL, c.ID, `{"code": "x"}`)
	require.Equal(t, 410, r.status, string(r.body))
	require.Contains(t, r.errBody(t).Error, "has ended: closed")
	r = rawDo(t, "GET", files+"out.txt", nil)
	require.Equal(t, 410, r.status, string(r.body))
	m := metricsText(t, ts.URL)
	require.Contains(t, m, "pybox_sessions_live 0")
	require.Contains(t, m, "pybox_sessions_created_total 1")
	require.Contains(t, m, `pybox_sessions_ended_total{reason="closed"} 1`)
	// DELETE of an ended session is fine; then it is forgotten.
	r = do(t, context.Background(), "DELETE", ts.URL+"/v1/sessions/"+c.ID, "")
	require.Equal(t, 204, r.status)
	r = sessionRun(t, ts.URL, c.ID, `{"code": "x"}`)
	require.Equal(t, 404, r.status)
	noPythonLeft(t)
}

func TestSessionFileLimit(t *testing.T) {
	requireBackend(t)
	_, ts := newTestServer(t, Config{})
	c := createSession(t, ts.URL, `{"code": "open('big', 'wb').write(b'x' * 5000)", "files_limit": 4096}`)
	require.Equal(t, pybox.StatusSuccess, c.Result.Status, c.Result.Error)
	r := rawDo(t, "GET", ts.URL+"/v1/sessions/"+c.ID+"/files/big", nil)
	require.Equal(t, 413, r.status, string(r.body))
	require.Contains(t, r.errBody(t).Error, "files_limit")
}

func TestSessionOwnership(t *testing.T) {
	requireBackend(t)
	_, ts := newTestServer(t, Config{Tokens: []string{"alice", "bob"}})
	alice := []string{"Authorization", "Bearer alice"}
	bob := []string{"Authorization", "Bearer bob"}
	c := createSession(t, ts.URL, `{}`, alice...)
	require.Nil(t, c.Result)
	r := sessionRun(t, ts.URL, c.ID, `{"code": "1"}`, alice...)
	require.Equal(t, 200, r.status, string(r.body))
	for _, probe := range []resp{
		sessionRun(t, ts.URL, c.ID, `{"code": "1"}`, bob...),
		rawDo(t, "GET", ts.URL+"/v1/sessions/"+c.ID+"/files/x", nil, bob...),
		rawDo(t, "PUT", ts.URL+"/v1/sessions/"+c.ID+"/files/x", []byte("x"), bob...),
		do(t, context.Background(), "DELETE", ts.URL+"/v1/sessions/"+c.ID, "", bob...),
	} {
		require.Equal(t, 404, probe.status, string(probe.body))
		require.Contains(t, probe.errBody(t).Error, "no such session")
	}
	r = sessionRun(t, ts.URL, c.ID, `{"code": "2"}`)
	require.Equal(t, 401, r.status)
	r = do(t, context.Background(), "DELETE", ts.URL+"/v1/sessions/"+c.ID, "", alice...)
	require.Equal(t, 204, r.status)
	// The ended session is still none of bob's business.
	r = sessionRun(t, ts.URL, c.ID, `{"code": "1"}`, bob...)
	require.Equal(t, 404, r.status)
}

func TestSessionCap(t *testing.T) {
	requireBackend(t)
	_, ts := newTestServer(t, Config{MaxSessions: 1})
	c := createSession(t, ts.URL, `{}`)
	r := do(t, context.Background(), "POST", ts.URL+"/v1/sessions", `{}`)
	require.Equal(t, 429, r.status, string(r.body))
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Contains(t, r.errBody(t).Error, "too many sessions")
	require.Contains(t, metricsText(t, ts.URL), `pybox_http_rejected_total{reason="sessions_full"} 1`)
	require.Equal(t, 204, do(t, context.Background(), "DELETE", ts.URL+"/v1/sessions/"+c.ID, "").status)
	waitFor(t, func() bool {
		return strings.Contains(metricsText(t, ts.URL), "pybox_sessions_live 0")
	}, "the slot to free")
	createSession(t, ts.URL, `{}`)
}

func TestSessionLimitEndsIt(t *testing.T) {
	requireBackend(t)
	s, ts := newTestServer(t, Config{})
	c := createSession(t, ts.URL, `{"code": "y = 1", "timeout": "1s"}`)
	r := sessionRun(t, ts.URL, c.ID, `{"code": "while True: pass"}`)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, pybox.StatusTimeout, r.result(t).Status)
	r = sessionRun(t, ts.URL, c.ID, `{"code": "y"}`)
	require.Equal(t, 410, r.status, string(r.body))
	require.Contains(t, r.errBody(t).Error, "timeout")
	waitFor(t, func() bool { return s.sessions.live() == 0 }, "the session to be removed")
	require.Contains(t, metricsText(t, ts.URL), `pybox_sessions_ended_total{reason="timeout"} 1`)

	// A session that idles out answers 410 saying so.
	c = createSession(t, ts.URL, `{"idle_timeout": 0.2}`)
	waitFor(t, func() bool { return s.sessions.live() == 0 }, "the session to idle out")
	r = sessionRun(t, ts.URL, c.ID, `{"code": "1"}`)
	require.Equal(t, 410, r.status, string(r.body))
	require.Contains(t, r.errBody(t).Error, "idle")
	require.Contains(t, metricsText(t, ts.URL), `pybox_sessions_ended_total{reason="idle"} 1`)
	noPythonLeft(t)
}

// TestSessionTakesTurns: two runs sent at once run one after the other.
func TestSessionTakesTurns(t *testing.T) {
	requireBackend(t)
	_, ts := newTestServer(t, Config{})
	c := createSession(t, ts.URL, `{"code": "import time\nlog = []"}`)
	got := make(chan resp, 2)
	for _, code := range []string{"log.append('a'); time.sleep(0.3); log.append('b')", "log.append('c')"} {
		go func() {
			body, _ := json.Marshal(pybox.Exec{Code: code})
			got <- sessionRun(t, ts.URL, c.ID, string(body))
		}()
	}
	for range 2 {
		r := <-got
		require.Equal(t, 200, r.status, string(r.body))
		require.Equal(t, pybox.StatusSuccess, r.result(t).Status)
	}
	r := sessionRun(t, ts.URL, c.ID, `{"code": "''.join(log)"}`)
	require.True(t, string(r.result(t).ReturnValue) != `"acb"`, "runs overlapped: %s", r.result(t).ReturnValue)
}

// TestSessionRequests covers the answers that need no sandbox.
func TestSessionRequests(t *testing.T) {
	_, ts := newTestServer(t, Config{MaxCodeBytes: 100, MaxTimeout: time.Minute, MaxLifetime: time.Hour})
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		field, want              string
	}{
		{"run unknown session", "POST", "/v1/sessions/nope/run", `{"code": "1"}`, 404, "", "no such session"},
		{"delete unknown session", "DELETE", "/v1/sessions/nope", "", 404, "", "no such session"},
		{"run unknown field", "POST", "/v1/sessions/x/run", `{"code": "1", "memory": "1g"}`, 400, "memory", "unknown field"},
		{"run code type", "POST", "/v1/sessions/x/run", `{"code": 1}`, 400, "code", "wrong type"},
		{"run bad timeout", "POST", "/v1/sessions/x/run", `{"code": "", "timeout": "soon"}`, 400, "timeout", "invalid duration"},
		{"run timeout over cap", "POST", "/v1/sessions/x/run", `{"code": "", "timeout": "2m"}`, 400, "timeout", "maximum"},
		{"run code over cap", "POST", "/v1/sessions/x/run", `{"code": "` + strings.Repeat("x", 101) + `"}`, 400, "code", "byte limit"},
		{"run globals", "POST", "/v1/sessions/x/run", `{"code": "", "globals": {"1a": 1}}`, 400, "globals", "identifier"},
		{"run trailing", "POST", "/v1/sessions/x/run", `{"code": ""} {}`, 400, "", "single JSON object"},
		{"create lifetime over cap", "POST", "/v1/sessions", `{"max_lifetime": "2h"}`, 400, "max_lifetime", "maximum"},
		{"create idle over cap", "POST", "/v1/sessions", `{"idle_timeout": "3h"}`, 400, "idle_timeout", "maximum"},
		{"create collect_files", "POST", "/v1/sessions", `{"collect_files": true}`, 400, "collect_files", "does not apply"},
		{"create unknown field", "POST", "/v1/sessions", `{"id": "x"}`, 400, "id", "unknown field"},
		{"create mounts", "POST", "/v1/sessions", `{"mounts": [{"host": "/", "guest": "/h"}]}`, 400, "mounts", "--allow-mounts"},
		{"wrong method", "GET", "/v1/sessions/x/run", "", 405, "", "allowed: POST"},
		{"wrong method files", "POST", "/v1/sessions/x/files/a", "", 405, "", "allowed: PUT, GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, context.Background(), tc.method, ts.URL+tc.path, tc.body)
			require.Equal(t, tc.status, r.status, string(r.body))
			e := r.errBody(t)
			require.Equal(t, tc.field, e.Field, e.Error)
			require.Contains(t, e.Error, tc.want)
		})
	}
}

func TestSessionsClosedOnShutdown(t *testing.T) {
	requireBackend(t)
	sb := pybox.New(pybox.Options{})
	defer sb.Close(context.Background())
	s := New(sb, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, time.Second) }()
	createSession(t, url, `{"code": "x = 1"}`)
	createSession(t, url, `{}`)
	require.Equal(t, 2, s.sessions.live())
	stop()
	require.NoError(t, <-served)
	require.Equal(t, 0, s.sessions.live())
	var m strings.Builder
	_, err = s.metrics.reg.WriteTo(&m)
	require.NoError(t, err)
	require.Contains(t, m.String(), `pybox_sessions_ended_total{reason="shutdown"} 2`+"\n")
	noPythonLeft(t)
}
