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
