package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func TestMain(m *testing.M) {
	pybox.Init() // the native backend re-executes this binary
	os.Exit(m.Run())
}

var (
	backendOnce sync.Once
	backendErr  string
)

// requireBackend skips (or, with PYBOX_REQUIRE_ISOLATION=1, fails) a test
// that needs code to actually run, when the default backend cannot run it.
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

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	sb := pybox.New(pybox.Options{})
	s := New(sb, cfg)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.CloseSessions()
		s.cancelRun()
		sb.Close(context.Background())
	})
	return s, ts
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) errBody(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal(r.body, &e), string(r.body))
	return e
}

func (r resp) result(t *testing.T) pybox.Result {
	t.Helper()
	var res pybox.Result
	require.NoError(t, json.Unmarshal(r.body, &res), string(r.body))
	return res
}

func do(t *testing.T, ctx context.Context, method, url, body string, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return resp{r.StatusCode, r.Header, b}
}

func post(t *testing.T, url, body string, hdr ...string) resp {
	t.Helper()
	return do(t, context.Background(), "POST", url+"/v1/run", body, hdr...)
}

func TestAuth(t *testing.T) {
	_, ts := newTestServer(t, Config{Token: "s3cret"})
	bad := `{"code": 1}` // a 400 proves the request got past auth
	tests := []struct {
		name       string
		method     string
		path       string
		auth       string
		wantStatus int
	}{
		{"run without token", "POST", "/v1/run", "", 401},
		{"run with wrong token", "POST", "/v1/run", "Bearer nope", 401},
		{"run with token prefix", "POST", "/v1/run", "Bearer s3cre", 401},
		{"run with basic auth", "POST", "/v1/run", "Basic s3cret", 401},
		{"run with token", "POST", "/v1/run", "Bearer s3cret", 400},
		{"metrics without token", "GET", "/metrics", "", 401},
		{"metrics with token", "GET", "/metrics", "Bearer s3cret", 200},
		{"healthz is public", "GET", "/healthz", "", 200},
		{"openapi is public", "GET", "/openapi.json", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" {
				body = bad
			}
			r := do(t, context.Background(), tc.method, ts.URL+tc.path, body, "Authorization", tc.auth)
			require.Equal(t, tc.wantStatus, r.status, string(r.body))
			if tc.wantStatus == 401 {
				require.Equal(t, "missing or wrong bearer token", r.errBody(t).Error)
				require.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	_, ts := newTestServer(t, Config{MaxBodyBytes: 64 << 10, MaxCodeBytes: 1000, MaxTimeout: time.Minute, MaxMemory: 256 << 20})
	tests := []struct {
		name       string
		body       string
		ctype      string
		wantStatus int
		wantField  string
		wantErr    string
	}{
		{name: "malformed", body: `{"code": "x"`, wantStatus: 400, wantErr: "malformed JSON"},
		{name: "syntax error", body: `{"code": x}`, wantStatus: 400, wantErr: "malformed JSON at byte"},
		{name: "empty", body: " ", wantStatus: 400, wantErr: "empty body"},
		{name: "not an object", body: `["print(1)"]`, wantStatus: 400, wantErr: "must be a JSON object"},
		{name: "null", body: `null`, wantStatus: 400, wantErr: "must be a JSON object"},
		{name: "two values", body: `{"code": ""} {"code": ""}`, wantStatus: 400, wantErr: "single JSON object"},
		{name: "trailing garbage", body: `{"code": ""}x`, wantStatus: 400, wantErr: "single JSON object"},
		{name: "unknown field", body: `{"code": "", "cmd": "ls"}`, wantStatus: 400, wantField: "cmd", wantErr: `unknown field "cmd"`},
		{name: "code not a string", body: `{"code": 1}`, wantStatus: 400, wantField: "code", wantErr: "wrong type"},
		{name: "pids not an integer", body: `{"code": "", "pids": "many"}`, wantStatus: 400, wantField: "pids", wantErr: "wrong type"},
		{name: "negative timeout", body: `{"code": "", "timeout": -1}`, wantStatus: 400, wantField: "timeout", wantErr: "invalid duration"},
		{name: "bad timeout string", body: `{"code": "", "timeout": "soon"}`, wantStatus: 400, wantField: "timeout", wantErr: "invalid duration"},
		{name: "negative memory", body: `{"code": "", "memory": -5}`, wantStatus: 400, wantField: "memory", wantErr: "invalid size"},
		{name: "huge memory", body: `{"code": "", "memory": 1e30}`, wantStatus: 400, wantField: "memory", wantErr: "invalid size"},
		{name: "memory over cap", body: `{"code": "", "memory": "1GiB"}`, wantStatus: 400, wantField: "memory", wantErr: "over this server's 256MiB maximum"},
		{name: "timeout over cap", body: `{"code": "", "timeout": "2m"}`, wantStatus: 400, wantField: "timeout", wantErr: "over this server's 1m0s maximum"},
		{name: "negative pids", body: `{"code": "", "pids": -1}`, wantStatus: 400, wantField: "pids", wantErr: "at least 1"},
		{name: "memory under minimum", body: `{"code": "", "memory": 1024}`, wantStatus: 400, wantField: "memory", wantErr: "minimum"},
		{name: "bad backend", body: `{"code": "", "backend": "docker"}`, wantStatus: 400, wantField: "backend", wantErr: "unknown backend"},
		{name: "globals not an object", body: `{"code": "", "globals": [1]}`, wantStatus: 400, wantField: "globals", wantErr: "JSON object"},
		{name: "globals bad key", body: `{"code": "", "globals": {"1x": 1}}`, wantStatus: 400, wantField: "globals", wantErr: "not a Python identifier"},
		{name: "file climbs out", body: `{"code": "", "files": [{"name": "../x", "data": ""}]}`, wantStatus: 400, wantField: "files", wantErr: "climbs out"},
		{name: "file data not base64", body: `{"code": "", "files": [{"name": "x", "data": "!!"}]}`, wantStatus: 400, wantField: "files"},
		{name: "net", body: `{"code": "", "net": "host"}`, wantStatus: 400, wantField: "net"},
		{name: "code NUL", body: `{"code": "\u0000"}`, wantStatus: 400, wantField: "code", wantErr: "NUL"},
		{name: "code over server limit", body: `{"code": "` + strings.Repeat("x", 1001) + `"}`, wantStatus: 400, wantField: "code", wantErr: "over this server's 1000 byte limit"},
		{name: "mounts refused", body: `{"code": "", "mounts": [{"host": "/etc", "guest": "/mnt/etc"}]}`, wantStatus: 400, wantField: "mounts", wantErr: "--allow-mounts"},
		{name: "python refused", body: `{"code": "", "python": "/bin/sh"}`, wantStatus: 400, wantField: "python", wantErr: "--allow-mounts"},
		{name: "body too large", body: `{"code": "` + strings.Repeat("x", 70<<10) + `"}`, wantStatus: 413, wantErr: "over the 65536 byte limit"},
		{name: "no content type", body: `{"code": ""}`, ctype: "-", wantStatus: 415, wantErr: "missing Content-Type"},
		{name: "form content type", body: `{"code": ""}`, ctype: "application/x-www-form-urlencoded", wantStatus: 415, wantErr: "want application/json"},
		{name: "text content type", body: `{"code": ""}`, ctype: "text/plain", wantStatus: 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			switch tc.ctype {
			case "":
			case "-":
				hdr = []string{"Content-Type", ""}
			default:
				hdr = []string{"Content-Type", tc.ctype}
			}
			r := post(t, ts.URL, tc.body, hdr...)
			require.Equal(t, tc.wantStatus, r.status, string(r.body))
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			e := r.errBody(t)
			require.Equal(t, tc.wantField, e.Field, e.Error)
			require.Contains(t, e.Error, tc.wantErr)
			require.False(t, strings.Contains(e.Error, "\n"), "one-line error: %q", e.Error)
		})
	}
}

func TestMountsAllowed(t *testing.T) {
	s := New(pybox.New(pybox.Options{}), Config{AllowMounts: true})
	_, e := s.parseRunRequest([]byte(`{"code": "", "mounts": [{"host": "/etc", "guest": "/mnt/etc"}], "python": "/usr/bin/python3"}`))
	require.Nil(t, e)
}

func TestDefaultsLoweredToCaps(t *testing.T) {
	s := New(pybox.New(pybox.Options{}), Config{MaxTimeout: 5 * time.Second, MaxMemory: 64 << 20})
	req, e := s.parseRunRequest([]byte(`{"code": ""}`))
	require.Nil(t, e)
	require.Equal(t, pybox.Duration(5*time.Second), req.Timeout)
	require.Equal(t, pybox.Size(64<<20), req.Memory)
}

func TestRoutes(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	r := do(t, context.Background(), "GET", ts.URL+"/nope", "")
	require.Equal(t, 404, r.status)
	require.Contains(t, r.errBody(t).Error, "no such route")
	r = do(t, context.Background(), "GET", ts.URL+"/v1/run", "")
	require.Equal(t, 405, r.status)
	r = do(t, context.Background(), "GET", ts.URL+"/healthz", "")
	require.Equal(t, 200, r.status)
	require.Contains(t, string(r.body), `"status":"ok"`)
}

func TestRequestID(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	r := do(t, context.Background(), "GET", ts.URL+"/healthz", "", "X-Request-Id", "abc-123")
	require.Equal(t, "abc-123", r.header.Get("X-Request-Id"))
	r = do(t, context.Background(), "GET", ts.URL+"/healthz", "", "X-Request-Id", "bad id\twith junk")
	id := r.header.Get("X-Request-Id")
	require.Len(t, id, 24)
	require.NotEqual(t, "bad id\twith junk", id)
}

func TestRequestLog(t *testing.T) {
	var buf syncBuffer
	log := slogJSON(&buf)
	_, ts := newTestServer(t, Config{Logger: log})
	post(t, ts.URL, `{"code": 1}`, "X-Request-Id", "req-42")
	var line map[string]any
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line), buf.String())
	require.Equal(t, "req-42", line["request_id"])
	require.Equal(t, float64(400), line["status"])
	require.Equal(t, "/v1/run", line["path"])
}

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr, token string
		wantErr     string
	}{
		{addr: "127.0.0.1:8080"},
		{addr: "localhost:0"},
		{addr: "[::1]:8080"},
		{addr: "127.0.0.2:8080"},
		{addr: "0.0.0.0:8080", wantErr: "without a token"},
		{addr: ":8080", wantErr: "all interfaces"},
		{addr: "10.1.2.3:8080", wantErr: "without a token"},
		{addr: "example.com:80", wantErr: "without a token"},
		{addr: "0.0.0.0:8080", token: "t"},
		{addr: "nonsense", wantErr: "bad listen address"},
	}
	for _, tc := range tests {
		err := CheckListen(tc.addr, tc.token)
		if tc.wantErr == "" {
			require.NoError(t, err, tc.addr)
		} else {
			require.Error(t, err, tc.addr)
			require.Contains(t, err.Error(), tc.wantErr)
		}
	}
}

func TestOpenAPI(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "openapi.json"))
	require.NoError(t, err)
	require.Equal(t, string(file), string(openAPI), "run go generate ./internal/server/httpapi")
	_, ts := newTestServer(t, Config{})
	r := do(t, context.Background(), "GET", ts.URL+"/openapi.json", "")
	require.Equal(t, 200, r.status)
	require.Equal(t, string(file), string(r.body))
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.body, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), doc.OpenAPI)
	s := New(pybox.New(pybox.Options{}), Config{})
	routes := s.routeTable()
	n := 0
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.ReplaceAll(path, "...}", "}") // OpenAPI has no rest-of-path wildcard
		_, ok := doc.Paths[path][strings.ToLower(method)]
		require.True(t, ok, "openapi.json lacks %s", rt.pattern)
		n++
	}
	ops := 0
	for _, p := range doc.Paths {
		ops += len(p)
	}
	require.Equal(t, n, ops, "openapi.json documents routes the server does not have")
}

func TestLimiter(t *testing.T) {
	l := newLimiter(1, 1, newMetrics())
	rel1, err := l.acquire(context.Background())
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		rel, err := l.acquire(context.Background())
		if err == nil {
			rel()
		}
		got <- err
	}()
	waitFor(t, func() bool { return l.queued() == 1 }, "a request in the queue")
	_, err = l.acquire(context.Background())
	require.ErrorIs(t, err, errQueueFull)
	rel1()
	rel1() // release is idempotent
	require.NoError(t, <-got)
	require.Equal(t, 0, l.inFlight())

	ctx, cancel := context.WithCancel(context.Background())
	rel, _ := l.acquire(context.Background())
	go func() { _, err := l.acquire(ctx); got <- err }()
	waitFor(t, func() bool { return l.queued() == 1 }, "a request in the queue")
	cancel()
	require.ErrorIs(t, <-got, context.Canceled)
	require.Equal(t, 0, l.queued())
	rel()
}

func TestSplitUTF8(t *testing.T) {
	e := []byte("é") // 2 bytes
	c, r := splitUTF8(append([]byte("ab"), e[0]))
	require.Equal(t, "ab", string(c))
	require.Equal(t, []byte{e[0]}, r)
	c, r = splitUTF8([]byte("abé"))
	require.Equal(t, "abé", string(c))
	require.Len(t, r, 0)
	q := newEventQueue()
	q.push(0, []byte{'x', e[0]})
	q.push(0, []byte{e[1], 'y'})
	q.close()
	evs, _ := q.wait()
	var s string
	for _, ev := range evs {
		var part string
		require.NoError(t, json.Unmarshal(ev.data, &part))
		s += part
	}
	require.Equal(t, "xéy", s)
}

func TestMetricsOnRejection(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	post(t, ts.URL, `{"code": 1}`)
	post(t, ts.URL, `{"code": ""}`, "Content-Type", "text/plain")
	r := do(t, context.Background(), "GET", ts.URL+"/metrics", "")
	require.Equal(t, 200, r.status)
	m := string(r.body)
	require.Contains(t, m, `pybox_http_rejected_total{reason="invalid"} 1`)
	require.Contains(t, m, `pybox_http_rejected_total{reason="unsupported_media_type"} 1`)
	require.Contains(t, m, `pybox_http_rejected_total{reason="queue_full"} 0`)
	require.Contains(t, m, "pybox_runs_in_flight 0")
	require.Contains(t, m, "pybox_queue_length 0")
}

// --- tests that run code ---

func TestRun(t *testing.T) {
	requireBackend(t)
	_, ts := newTestServer(t, Config{})
	r := post(t, ts.URL, `{"code": "print('hi')\nx * 2", "globals": {"x": 21}}`)
	require.Equal(t, 200, r.status, string(r.body))
	res := r.result(t)
	require.Equal(t, pybox.StatusSuccess, res.Status)
	require.Equal(t, "hi\n", res.Stdout)
	require.Equal(t, "42", string(res.ReturnValue))

	r = post(t, ts.URL, `{"code": "1/0"}`)
	require.Equal(t, 200, r.status, string(r.body))
	res = r.result(t)
	require.Equal(t, pybox.StatusRunError, res.Status)
	require.Contains(t, res.Error, "ZeroDivisionError")

	r = post(t, ts.URL, `{"code": "while True: pass", "timeout": 0.5}`)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, pybox.StatusTimeout, r.result(t).Status)

	r = do(t, context.Background(), "GET", ts.URL+"/metrics", "")
	require.Contains(t, string(r.body), `pybox_runs_total{backend="native",status="success"} 1`)
	require.Contains(t, string(r.body), `pybox_runs_total{backend="native",status="timeout"} 1`)
	require.Contains(t, string(r.body), `pybox_run_duration_seconds_count{backend="native"} 3`)
}

type sseEvent struct{ name, data string }

func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var evs []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				evs = append(evs, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data += strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected line in event stream: %q", line)
		}
	}
	require.NoError(t, sc.Err())
	return evs
}

func TestEventStream(t *testing.T) {
	requireBackend(t)
	_, ts := newTestServer(t, Config{})
	req, _ := http.NewRequest("POST", ts.URL+"/v1/run", strings.NewReader(
		`{"code": "import sys\nfor i in range(3): print(i, flush=True)\nprint('oops', file=sys.stderr, flush=True)\nprint('é')\n'done'"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer r.Body.Close()
	require.Equal(t, 200, r.StatusCode)
	require.Equal(t, "text/event-stream", r.Header.Get("Content-Type"))
	evs := readEvents(t, r.Body)
	require.True(t, len(evs) >= 2, "events: %v", evs)
	var out, errOut string
	for i, ev := range evs {
		if i == len(evs)-1 {
			require.Equal(t, "result", ev.name)
			break
		}
		var chunk string
		require.NoError(t, json.Unmarshal([]byte(ev.data), &chunk), ev.data)
		switch ev.name {
		case "stdout":
			out += chunk
		case "stderr":
			errOut += chunk
		default:
			t.Fatalf("event %d is %q before the result", i, ev.name)
		}
	}
	require.Equal(t, "0\n1\n2\né\n", out)
	require.Equal(t, "oops\n", errOut)
	var res pybox.Result
	require.NoError(t, json.Unmarshal([]byte(evs[len(evs)-1].data), &res))
	require.Equal(t, pybox.StatusSuccess, res.Status)
	require.Equal(t, out, res.Stdout)
	require.Equal(t, `"done"`, string(res.ReturnValue))
}

func TestQueueFull(t *testing.T) {
	requireBackend(t)
	for _, queue := range []int{-1, 1} {
		s, ts := newTestServer(t, Config{MaxConcurrent: 1, MaxQueue: queue})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		slow := func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/run", strings.NewReader(`{"code": "import time\ntime.sleep(60)"}`))
			req.Header.Set("Content-Type", "application/json")
			if r, err := http.DefaultClient.Do(req); err == nil {
				r.Body.Close()
			}
		}
		wg.Add(1)
		go slow()
		waitFor(t, func() bool { return s.lim.inFlight() == 1 }, "the slow run to start")
		if queue > 0 {
			wg.Add(1)
			go slow()
			waitFor(t, func() bool { return s.lim.queued() == 1 }, "a request in the queue")
		}
		r := post(t, ts.URL, `{"code": "print(1)"}`)
		require.Equal(t, 429, r.status, string(r.body))
		require.Equal(t, "1", r.header.Get("Retry-After"))
		require.Contains(t, r.errBody(t).Error, "queue is full")
		m := do(t, context.Background(), "GET", ts.URL+"/metrics", "")
		require.Contains(t, string(m.body), `pybox_http_rejected_total{reason="queue_full"} 1`)
		require.Contains(t, string(m.body), "pybox_runs_in_flight 1")
		// Disconnecting cancels the runs and frees the slots.
		cancel()
		wg.Wait()
		waitFor(t, func() bool { return s.lim.inFlight() == 0 && s.lim.queued() == 0 }, "the runs to be cancelled")
		noPythonLeft(t)
	}
}

func TestGracefulShutdown(t *testing.T) {
	requireBackend(t)
	for _, tc := range []struct {
		name       string
		code       string
		grace      time.Duration
		wantStatus string
	}{
		{"drains in-flight run", "import time\ntime.sleep(1)\nprint('done')", 30 * time.Second, pybox.StatusSuccess},
		{"kills run past grace", "import time\ntime.sleep(60)", 200 * time.Millisecond, pybox.StatusKilled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := pybox.New(pybox.Options{})
			defer sb.Close(context.Background())
			s := New(sb, Config{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			url := "http://" + ln.Addr().String()
			ctx, stop := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- s.Serve(ctx, ln, tc.grace) }()

			got := make(chan resp, 1)
			go func() {
				body, _ := json.Marshal(pybox.Request{Code: tc.code})
				got <- post(t, url, string(body))
			}()
			waitFor(t, func() bool { return s.lim.inFlight() == 1 }, "the run to start")
			stop()
			waitFor(t, func() bool { return s.draining.Load() }, "draining")
			// New connections are refused once the listener is closed.
			waitFor(t, func() bool {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err == nil {
					c.Close()
				}
				return err != nil
			}, "the listener to close")
			r := <-got
			require.Equal(t, 200, r.status, string(r.body))
			res := r.result(t)
			require.Equal(t, tc.wantStatus, res.Status, res.Error)
			require.NoError(t, <-served)
			require.Equal(t, 0, s.lim.inFlight())
			noPythonLeft(t)
		})
	}
}

func TestClientDisconnectCancelsRun(t *testing.T) {
	requireBackend(t)
	s, ts := newTestServer(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/run", strings.NewReader(`{"code": "import time\ntime.sleep(60)"}`))
		req.Header.Set("Content-Type", "application/json")
		if r, err := http.DefaultClient.Do(req); err == nil {
			r.Body.Close()
		}
	}()
	waitFor(t, func() bool { return s.lim.inFlight() == 1 }, "the run to start")
	cancel()
	<-done
	waitFor(t, func() bool { return s.lim.inFlight() == 0 }, "the run to be cancelled")
	waitFor(t, func() bool {
		m := do(t, context.Background(), "GET", ts.URL+"/metrics", "")
		return strings.Contains(string(m.body), `pybox_runs_total{backend="native",status="killed"} 1`)
	}, "the killed run to be counted")
	noPythonLeft(t)
}
