package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// TestLoad is a hammer test on loopback: 50 clients post print(1) in a loop
// for a bounded time (5s; PYBOX_LOAD_SECONDS=30 for the full run) against a
// server with a small queue. Every request must get a Result with status
// success or a deliberate 429, and nothing may be left behind.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	requireBackend(t)
	dur := 5 * time.Second
	if s := os.Getenv("PYBOX_LOAD_SECONDS"); s != "" {
		d, err := time.ParseDuration(s + "s")
		require.NoError(t, err, "PYBOX_LOAD_SECONDS")
		dur = d
	}
	const clients = 50
	s, ts := newTestServer(t, Config{MaxQueue: 8})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()

	var ok, busy, total atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, msg)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				// The request itself is not tied to ctx: a run cut off by
				// the test's end would not say anything about the server.
				req, _ := http.NewRequest("POST", ts.URL+"/v1/run", strings.NewReader(`{"code": "print(1)"}`))
				req.Header.Set("Content-Type", "application/json")
				r, err := client.Do(req)
				total.Add(1)
				if err != nil {
					fail(err.Error())
					return
				}
				body, _ := io.ReadAll(r.Body)
				r.Body.Close()
				switch r.StatusCode {
				case 200:
					var res pybox.Result
					if err := json.Unmarshal(body, &res); err != nil || res.Status != pybox.StatusSuccess || res.Stdout != "1\n" {
						fail("bad result: " + string(body))
						continue
					}
					ok.Add(1)
				case 429:
					busy.Add(1)
					select { // back off a little, as Retry-After asks
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				default:
					fail(r.Status + ": " + string(body))
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests in %s: %d results, %d busy (429)", total.Load(), dur, ok.Load(), busy.Load())
	require.Len(t, failures, 0, "failures: %v", failures)
	require.True(t, ok.Load() > 0, "no request succeeded")
	require.Equal(t, total.Load(), ok.Load()+busy.Load())
	require.Equal(t, 0, s.lim.inFlight())
	require.Equal(t, 0, s.lim.queued())
	noPythonLeft(t)
}
