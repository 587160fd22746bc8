package escape

import (
	"context"
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
func TestConcurrentRuns(t *testing.T) {
	setup(t)
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
		resA, _ = runWith(t, ctx, pybox.Request{Globals: g, Code: `
import os, socket, subprocess, time
open("/tmp/" + tok, "w").write("A was here")
open("/work/" + tok, "w").write("A was here")
open("/dev/shm/" + tok, "w").write("A was here")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0" + tok)
s.listen(8)
subprocess.Popen([tok, "1000"], executable="/bin/sleep")
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
	// A's process and the cgroup that holds it.
	live := processesWith(tok)
	for i := 0; i < 100 && len(live) == 0; i++ {
		time.Sleep(20 * time.Millisecond)
		live = processesWith(tok)
	}
	require.True(t, len(live) > 0, "the host sees run A's marker process")
	found := false
	for _, d := range pyboxCgroupDirs() {
		for _, g := range runCgroups(d) {
			b, _ := os.ReadFile(filepath.Join(g, "cgroup.procs"))
			for _, pid := range strings.Fields(string(b)) {
				if strings.Contains(live[0], "pid "+pid+" ") {
					found = true
				}
			}
		}
	}
	require.True(t, found, "run A's process is in a per-run cgroup under %v", pyboxCgroupDirs())

	resB := run(t, pybox.Request{Globals: g, Code: `
import os, socket, errno
for p in ["/tmp/" + tok, "/work/" + tok, "/dev/shm/" + tok]:
    if os.path.exists(p):
        print("ESCAPED sees", p, flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\0" + tok)
    print("ESCAPED connected to A's abstract socket", flush=True)
except OSError as e:
    print("DENIED abstract", errno.errorcode.get(e.errno, e.errno), flush=True)
for p in os.listdir("/proc"):
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
