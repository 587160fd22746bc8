package gvisor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// poolOptions are the test options with the pool on.
func poolOptions() Options {
	o := testOptions()
	o.NoPool = false
	return o
}

// waitPooled waits until be's pool holds n sandboxes for req's policy.
func waitPooled(t *testing.T, be backend.Backend, req api.Request, n int) {
	t.Helper()
	req.Backend = Name
	req = req.WithDefaults()
	deadline := time.Now().Add(30 * time.Second)
	for Pooled(be, &req) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not reach %d sandboxes in 30s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// warmRun runs req on a sandbox from be's pool: a first run of the policy
// (cold) starts the pool when it is empty.
func warmRun(t *testing.T, be backend.Backend, req api.Request) *api.Result {
	t.Helper()
	r := req
	r.Backend = Name
	r = r.WithDefaults()
	if Pooled(be, &r) == 0 {
		runOn(t, be, api.Request{Code: "pass", Memory: req.Memory, Pids: req.Pids, CPUs: req.CPUs,
			Disk: req.Disk, OutputLimit: req.OutputLimit, Env: req.Env, Mounts: req.Mounts})
	}
	waitPooled(t, be, req, 1)
	res := runOn(t, be, req)
	require.True(t, res.Isolation.Prebooted, "the run was not served by the pool")
	return res
}

// sandboxPids lists the processes in sb's cgroup.
func sandboxPids(t *testing.T, sb *sandbox) []int {
	t.Helper()
	dirs := sb.cg.Dirs()
	require.True(t, len(dirs) > 0)
	b, err := os.ReadFile(filepath.Join(dirs[0], "cgroup.procs"))
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

// pooledSandboxes returns the sandboxes waiting in b's pool for req.
func pooledSandboxes(t *testing.T, be backend.Backend, req api.Request) []*sandbox {
	t.Helper()
	b := be.(*gvisorBackend)
	req.Backend = Name
	req = req.WithDefaults()
	argv0, extra, err := guest.Interpreter(req.Python)
	require.NoError(t, err)
	key, ok := b.poolKey(&req, argv0, extra)
	require.True(t, ok)
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*sandbox
	for _, p := range b.pool[key] {
		out = append(out, p.sb)
	}
	return out
}

// TestPoolMatchesCold: a pooled run gives the Result a cold run gives.
func TestPoolMatchesCold(t *testing.T) {
	cold := newTestBackend(t)
	warm := newOwnBackend(t, poolOptions())
	cases := []struct {
		name string
		req  api.Request
		want string
	}{
		{name: "stdout", req: api.Request{Code: "print(1)"}, want: api.StatusSuccess},
		{name: "return value and globals", req: api.Request{Code: "{'n': n + 1, 'l': [1.5, None]}", Globals: json.RawMessage(`{"n": 41}`)}, want: api.StatusSuccess},
		{name: "error", req: api.Request{Code: "import sys\nprint('x', file=sys.stderr)\ndef f():\n    1/0\nf()"}, want: api.StatusRunError},
		{name: "sys.exit", req: api.Request{Code: "import sys\nsys.exit(3)"}, want: api.StatusRunError},
		{name: "os._exit", req: api.Request{Code: "import os\nos._exit(5)"}, want: api.StatusRunError},
		{name: "thread and atexit after the code", req: api.Request{Code: finaliseCode}, want: api.StatusRunError},
		{name: "stdin is at EOF", req: api.Request{Code: "import sys, os\nprint(repr(sys.stdin.read()), os.read(0, 10))"}, want: api.StatusSuccess},
		{name: "display", req: api.Request{Code: "display({'a': 1})\n2"}, want: api.StatusSuccess},
		// 3 s: a cold runsc start under a loaded CI machine took over
		// 1 s once, and the cold run printed nothing before its timeout.
		{name: "timeout", req: api.Request{Code: "import time\nprint('a', flush=True)\ntime.sleep(100)", Timeout: api.Duration(3 * time.Second)}, want: api.StatusTimeout},
		{name: "memory limit", req: api.Request{Code: "x = bytearray(400 << 20)\nprint(len(x))", Memory: 64 << 20}, want: api.StatusMemoryLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := runOn(t, cold, tc.req)
			w := warmRun(t, warm, tc.req)
			require.Equal(t, tc.want, c.Status, "cold: %s", c.Error)
			require.Equal(t, c.Status, w.Status, w.Error)
			require.Equal(t, c.Stdout, w.Stdout)
			require.Equal(t, c.Stderr, w.Stderr)
			require.Equal(t, c.ExitCode, w.ExitCode)
			require.Equal(t, c.Signal, w.Signal)
			require.Equal(t, string(c.ReturnValue), string(w.ReturnValue))
			require.Equal(t, c.Error, w.Error)
			require.Equal(t, c.Outputs, w.Outputs)
			ci, wi := c.Isolation, w.Isolation
			require.False(t, ci.Prebooted)
			wi.Prebooted = false
			require.Equal(t, ci, wi)
		})
	}
	require.NoError(t, warm.Close(context.Background()))
	checkNothingLeft(t)
}

// TestPoolFresh: successive pooled runs share nothing.
func TestPoolFresh(t *testing.T) {
	be := newOwnBackend(t, poolOptions())
	first := warmRun(t, be, api.Request{Code: `
import os, subprocess, threading, time
open('/work/a.txt', 'w').write('a')
open('/tmp/t.txt', 'w').write('t')
open('/dev/shm/s', 'w').write('s')
leak = 1
subprocess.Popen(['sleep', '1000'])
threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
print('ok')
`})
	require.Equal(t, api.StatusSuccess, first.Status, first.Error)
	require.Equal(t, "ok\n", first.Stdout)
	second := warmRun(t, be, api.Request{Code: `
import os, threading
procs = []
for p in os.listdir('/proc'):
    if p.isdigit():
        procs.append(open('/proc/%s/cmdline' % p, 'rb').read().split(b'\0')[0].decode())
print(os.listdir('/work'), os.path.exists('/tmp/t.txt'), os.path.exists('/dev/shm/s'), 'leak' in globals(), procs, threading.active_count())
`})
	require.Equal(t, api.StatusSuccess, second.Status, second.Error)
	require.Equal(t, "[] False False False ['/usr/bin/python3.11'] 1\n", second.Stdout)
	require.NoError(t, be.Close(context.Background()))
	checkNothingLeft(t)
}

// TestPoolDiscards: pooled sandboxes that died (killed from outside) or
// are too old are never used; the runs still succeed.
func TestPoolDiscards(t *testing.T) {
	be := newOwnBackend(t, poolOptions())
	b := be.(*gvisorBackend)
	req := api.Request{Code: "print('fine')"}
	check := func(t *testing.T) {
		t.Helper()
		res := runOn(t, be, req)
		require.Equal(t, api.StatusSuccess, res.Status, res.Error)
		require.Equal(t, "fine\n", res.Stdout)
	}
	runOn(t, be, req) // starts the pool

	t.Run("killed and reaped", func(t *testing.T) {
		waitPooled(t, be, req, PoolSize)
		for _, sb := range pooledSandboxes(t, be, req) {
			for _, pid := range sandboxPids(t, sb) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			<-sb.waitDone
		}
		res := runOn(t, be, req)
		require.Equal(t, api.StatusSuccess, res.Status, res.Error)
		require.False(t, res.Isolation.Prebooted, "a dead sandbox was used")
		require.Equal(t, "fine\n", res.Stdout)
	})
	t.Run("sentry killed, runsc not yet gone", func(t *testing.T) {
		waitPooled(t, be, req, PoolSize)
		// Everything but runsc itself dies: the frame reaches a pipe
		// nobody reads any more; the run must go to another sandbox.
		for _, sb := range pooledSandboxes(t, be, req) {
			for _, pid := range sandboxPids(t, sb) {
				if pid != sb.cmd.Process.Pid {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		check(t)
	})
	t.Run("all killed, not reaped", func(t *testing.T) {
		waitPooled(t, be, req, PoolSize)
		for _, sb := range pooledSandboxes(t, be, req) {
			for _, pid := range sandboxPids(t, sb) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		check(t)
	})
	t.Run("dies at hand-over", func(t *testing.T) {
		// A sandbox that dies as it is taken: exec reports that nothing
		// ran (its runner read none of the frame), so run may retry.
		waitPooled(t, be, req, PoolSize)
		r := req
		r.Backend = Name
		r = r.WithDefaults()
		argv0, extra, err := guest.Interpreter(r.Python)
		require.NoError(t, err)
		key, _ := b.poolKey(&r, argv0, extra)
		sb := b.takePooled(key)
		require.NotNil(t, sb)
		for _, pid := range sandboxPids(t, sb) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		nothingRan, err := b.exec(context.Background(), sb, newRun(time.Now(), &r, backend.Hooks{}, b.platform), []byte("\x00\x00\x00\x02{}"))
		require.NoError(t, err)
		require.True(t, nothingRan)
		check(t)
	})
	t.Run("too old", func(t *testing.T) {
		waitPooled(t, be, req, PoolSize)
		for _, sb := range pooledSandboxes(t, be, req) {
			b.mu.Lock()
			sb.born = time.Now().Add(-PoolMaxAge - time.Second)
			b.mu.Unlock()
		}
		res := runOn(t, be, req)
		require.Equal(t, api.StatusSuccess, res.Status, res.Error)
		require.False(t, res.Isolation.Prebooted, "an expired sandbox was used")
	})
	t.Run("expiry", func(t *testing.T) {
		waitPooled(t, be, req, PoolSize)
		b.mu.Lock()
		var ps []*pooled
		for _, list := range b.pool {
			ps = append(ps, list...)
		}
		b.mu.Unlock()
		for _, p := range ps {
			b.expire(p)
		}
		r := req
		r.Backend = Name
		r = r.WithDefaults()
		require.Equal(t, 0, Pooled(be, &r))
	})
	require.NoError(t, be.Close(context.Background()))
	checkNothingLeft(t)
}

// TestPoolLazyAndOff: no sandbox boots before a policy is asked for, and
// with NoPool none ever does.
func TestPoolLazyAndOff(t *testing.T) {
	runDirs := func() int {
		ents, err := os.ReadDir(testOptions().Dir)
		require.NoError(t, err)
		n := 0
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), strconv.Itoa(os.Getpid())+"-run") {
				n++
			}
		}
		return n
	}
	checkNothingLeft(t)
	be := newOwnBackend(t, poolOptions())
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 0, runDirs(), "sandboxes booted before any run")

	off := newOwnBackend(t, testOptions())
	req := api.Request{Backend: Name, Code: "1"}.WithDefaults()
	for range 2 {
		res := runOn(t, off, req)
		require.False(t, res.Isolation.Prebooted)
	}
	require.NoError(t, off.Close(context.Background()))
	require.Equal(t, 0, Pooled(off, &req))
	require.Equal(t, 0, runDirs(), "the pool-less backend left sandboxes")

	// Input files are never pooled.
	withFiles := api.Request{Code: "print(open('f').read())", Files: []api.File{{Name: "f", Data: []byte("data")}}}
	for range 2 {
		res := runOn(t, be, withFiles)
		require.Equal(t, "data\n", res.Stdout)
		require.False(t, res.Isolation.Prebooted)
	}
	require.NoError(t, be.Close(context.Background()))
	checkNothingLeft(t)
}
