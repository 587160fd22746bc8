package escape

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// TestConcurrentRuns starts run A, which leaves traces (a file in /tmp and
// /work, an abstract socket, a listening TCP port if allowed, a process with
// a marker); once A says READY, run B looks for them; then A is cancelled.
func testConcurrentRuns(t *testing.T, b *sb) {
	tok := "pybox-peer-" + token()
	g := globals(t, map[string]any{"tok": tok})

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	var resA *pybox.Result
	done := make(chan struct{})
	// Whatever happens, run A ends before the test does.
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		resA, _ = b.runWith(t, ctx, pybox.Request{Globals: g, Code: `
import os, socket, subprocess, time
for d in ["/tmp/", "/work/", "/dev/shm/"]:
    try:
        open(d + tok, "w").write("A was here")
    except OSError as e:  # WASI: no /dev/shm
        print("NOTRACE", d, e, flush=True)
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + tok)
    s.listen(8)
    subprocess.Popen([tok, "1000"], executable="/bin/sleep")
except (OSError, AttributeError) as e:  # WASI: no sockets, no processes
    print("NOTRACE", e, flush=True)
print("READY", flush=True)
time.sleep(1000)
`}, pybox.RunOptions{Stdout: func(b []byte) {
			if strings.Contains(string(b), "READY") {
				once.Do(func() { close(ready) })
			}
		}})
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("run A ended before it was ready: %s %s", resA.Status, resA.Error)
	}

	// Sanity checks of the host-side probes, while A is alive: they see
	// A's processes and the cgroup that holds them. Native: the marker
	// process itself. gVisor: A's processes live in the sentry, so the
	// probe looks for this run's runsc processes instead. wasm: A is a
	// module instance inside this process; nothing to see on the host.
	probe := tok
	if b.name == "gvisor" {
		probe = fmt.Sprintf("pybox-%d-", os.Getpid()) // runsc's container ids
	}
	if b.name != "wasm" {
		live := processesWith(probe)
		for i := 0; i < 100 && len(live) == 0; i++ {
			time.Sleep(20 * time.Millisecond)
			live = processesWith(probe)
		}
		require.True(t, len(live) > 0, "the host sees run A's processes (%s)", probe)
		found := false
		for _, d := range pyboxCgroupDirs() {
			for _, g := range runCgroups(d) {
				b, _ := os.ReadFile(filepath.Join(g, "cgroup.procs"))
				for _, pid := range strings.Fields(string(b)) {
					for _, l := range live {
						if strings.Contains(l, "pid "+pid+" ") {
							found = true
						}
					}
				}
			}
		}
		require.True(t, found, "run A's processes are in a per-run cgroup under %v", pyboxCgroupDirs())
	}

	resB := b.run(t, pybox.Request{Globals: g, Code: `
import os, socket, errno
for p in ["/tmp/" + tok, "/work/" + tok, "/dev/shm/" + tok]:
    if os.path.exists(p):
        print("ESCAPED sees", p, flush=True)
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0" + tok)
    print("ESCAPED connected to A's abstract socket", flush=True)
except Exception as e:  # WASI: no sockets at all
    print("DENIED abstract", getattr(e, "errno", None) or type(e).__name__, flush=True)
try:
    procs = os.listdir("/proc")
except OSError:
    procs = []  # WASI: no /proc
for p in procs:
    if p.isdigit():
        try:
            if tok.encode() in open("/proc/%s/cmdline" % p, "rb").read():
                print("ESCAPED sees A's process", p, flush=True)
        except OSError:
            pass
print("B done", flush=True)
`})
	wantStatus(t, resB, pybox.StatusSuccess)
	noEscape(t, resB)
	require.Equal(t, 1, len(lines(resB, "DENIED")))

	cancel()
	<-done
	wantStatus(t, resA, pybox.StatusKilled)
	if ps := processesWith(tok); len(ps) > 0 {
		t.Errorf("ESCAPE: run A's processes outlived it: %v", ps)
	}
}
