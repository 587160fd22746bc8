// Package bench holds benchmarks that compare pybox's front ends and
// backends with each other and with their alternatives.
package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/server/httpapi"
)

func TestMain(m *testing.M) {
	pybox.Init()
	os.Exit(m.Run())
}

// BenchmarkRoundTrip runs print(1) through the library directly and through
// the HTTP API on loopback, at concurrency 1 and 16, in the same run so the
// ratios http/direct can be read off one output.
func BenchmarkRoundTrip(b *testing.B) {
	sb := pybox.New(pybox.Options{})
	defer sb.Close(context.Background())
	if res, err := sb.Run(context.Background(), pybox.Request{Code: "print(1)"}); err != nil || res.Status != pybox.StatusSuccess {
		b.Skipf("no working backend: %v", err)
	}
	srv := httpapi.New(sb, httpapi.Config{MaxConcurrent: 64, MaxQueue: 1024})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	direct := func(b *testing.B) {
		res, err := sb.Run(context.Background(), pybox.Request{Code: "print(1)"})
		if err != nil || res.Stdout != "1\n" {
			b.Fatalf("direct: %v %+v", err, res)
		}
	}
	viaHTTP := func(b *testing.B) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/run", strings.NewReader(`{"code": "print(1)"}`))
		req.Header.Set("Content-Type", "application/json")
		r, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(string(body), `"stdout":"1\n"`) {
			b.Fatalf("http: %s %s", r.Status, body)
		}
	}
	for _, c := range []int{1, 16} {
		for _, v := range []struct {
			name string
			fn   func(*testing.B)
		}{{"direct", direct}, {"http", viaHTTP}} {
			b.Run(v.name+"/c"+strconv.Itoa(c), func(b *testing.B) {
				if c == 1 {
					for b.Loop() {
						v.fn(b)
					}
					return
				}
				b.SetParallelism(max(1, c/runtime.GOMAXPROCS(0))) // c goroutines
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						v.fn(b)
					}
				})
			})
		}
	}
}

// BenchmarkSessionRoundTrip runs print(1) in one session through the
// library and through POST /v1/sessions/{id}/run, next to a one-shot
// /v1/run: what keeping the sandbox saves per execution.
func BenchmarkSessionRoundTrip(b *testing.B) {
	sb := pybox.New(pybox.Options{})
	defer sb.Close(context.Background())
	ss, _, err := sb.NewSession(context.Background(), pybox.Request{})
	if err != nil {
		b.Skipf("no working session backend: %v", err)
	}
	defer ss.Close()
	srv := httpapi.New(sb, httpapi.Config{})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.CloseSessions()
	post := func(b *testing.B, path, body string) string {
		req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode/100 != 2 {
			b.Fatalf("%s: %s %s", path, r.Status, out)
		}
		return string(out)
	}
	created := post(b, "/v1/sessions", `{}`)
	id := created[strings.Index(created, `"id":"`)+6:]
	id = id[:strings.IndexByte(id, '"')]
	b.Run("session-direct", func(b *testing.B) {
		for b.Loop() {
			res, err := ss.Run(context.Background(), pybox.Exec{Code: "print(1)"})
			if err != nil || res.Stdout != "1\n" {
				b.Fatalf("%v %+v", err, res)
			}
		}
	})
	b.Run("session-http", func(b *testing.B) {
		for b.Loop() {
			if out := post(b, "/v1/sessions/"+id+"/run", `{"code": "print(1)"}`); !strings.Contains(out, `"stdout":"1\n"`) {
				b.Fatal(out)
			}
		}
	})
	b.Run("oneshot-http", func(b *testing.B) {
		for b.Loop() {
			if out := post(b, "/v1/run", `{"code": "print(1)"}`); !strings.Contains(out, `"stdout":"1\n"`) {
				b.Fatal(out)
			}
		}
	})
}
