package escape

import (
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/gvisor"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func testForkBomb(t *testing.T, b *sb) {
	const pids = 32
	// The run ends at its timeout (natively) or at gVisor's host backstop,
	// after about a second. Under ptrace the bomb needs longer to reach the
	// limit when the machine is loaded (make test runs packages in
	// parallel): 3 s was once not enough there.
	timeout := 3 * time.Second
	if b.name == "gvisor" {
		timeout = 15 * time.Second
	}
	res := b.run(t, pybox.Request{
		Pids:    pids,
		Timeout: pybox.Duration(timeout),
		Code: `
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            while True:  # every child forks too
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
        n += 1
except OSError as e:
    print("LIMITED", n, e.errno, flush=True)
time.sleep(1000)
`,
	})
	switch {
	case b.name == "gvisor" && res.Status == pybox.StatusKilled:
		// The guest limit held (LIMITED below); the retrying bomb then
		// grew the ptrace platform's host tasks to the cgroup backstop.
		require.Contains(t, res.Error, "host task limit")
	default:
		wantStatus(t, res, pybox.StatusTimeout)
	}
	got := lines(res, "LIMITED")
	require.Equal(t, 1, len(got), "the pids limit stopped the bomb")
	if f := strings.Fields(got[0]); f[1] != "11" {
		t.Errorf("fork failed with errno %s, want EAGAIN (11)", f[1])
	}
	require.Equal(t, pids, res.Isolation.Limits.Pids)
}

// Memory bombs.
const (
	memInterpreter = `
b = []
while True:
    b.append(b"x" * (8 << 20))
`
	memChild = `
import subprocess, sys
subprocess.run([sys.executable, "-c", "b = []\nwhile True: b.append(b'x' * (8 << 20))"])
print("PARENT survived", flush=True)
`
	memTmpfs = `
with open("/dev/shm/fill", "wb") as f:
    while True:
        f.write(b"x" * (1 << 20))
`
)

func testMemoryBomb(code string) func(t *testing.T, b *sb) {
	return func(t *testing.T, b *sb) {
		const limit = 64 << 20
		res := b.run(t, pybox.Request{Memory: limit, Disk: 512 << 20, Code: code})
		wantStatus(t, res, pybox.StatusMemoryLimit)
		// The limit covers the code; gVisor's sentry and gofer live in the
		// same cgroup, which is given MemoryOverhead more.
		peak := int64(limit + 16<<20) // cgroup v1 peaks may pass max by a page
		if b.name == "gvisor" {
			peak += gvisor.MemoryOverhead
		}
		if res.Usage.PeakMemoryBytes > peak {
			t.Errorf("peak memory %d over %d (the %d limit plus the backend's allowance)", res.Usage.PeakMemoryBytes, peak, limit)
		}
	}
}

// Output floods.
var (
	floodPython = map[string]string{
		"stdout": "while True:\n    print('A' * 1000)\n",
		"stderr": "import sys\nwhile True:\n    sys.stderr.write('E' * 1000 + '\\n')\n",
		// One 8 MiB write(2), retried with the rest if it comes back
		// short (runsc writes at most what the host pipe holds at the
		// moment; Python's os.write does not retry).
		"one write": "import os\nb = memoryview(b'B' * (8 << 20))\nwhile b:\n    b = b[os.write(1, b):]\n",
	}
	floodChild = map[string]string{
		"yes": "import subprocess\nsubprocess.run(['/usr/bin/yes', 'flood'])\n",
	}
)

func testOutputFlood(codes map[string]string) func(t *testing.T, b *sb) {
	return func(t *testing.T, b *sb) {
		const limit = 64 << 10
		for name, code := range codes {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				res := b.run(t, pybox.Request{OutputLimit: limit, Code: code})
				wantStatus(t, res, pybox.StatusOutputLimit)
				require.True(t, len(res.Stdout) <= limit, "stdout has %d bytes, over the %d limit", len(res.Stdout), limit)
				require.True(t, len(res.Stderr) <= limit, "stderr has %d bytes, over the %d limit", len(res.Stderr), limit)
				require.True(t, res.StdoutTruncated || res.StderrTruncated, "the result says output was cut")
			})
		}
	}
}

// CPU hogs.
var (
	spinPython = map[string]string{
		"spin":  "while True:\n    pass\n",
		"sleep": "import time\ntime.sleep(1000)\n",
		"ignore signals": `
import signal, time
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
    try:
        signal.signal(s, signal.SIG_IGN)
    except (AttributeError, OSError, ValueError):
        pass  # WASI: no signals
time.sleep(1000)
`,
	}
	spinChildren = map[string]string{
		"spin in children": `
import os
for _ in range(4):
    if os.fork() == 0:
        while True:
            pass
while True:
    pass
`,
	}
)

func testCPUSpin(codes map[string]string) func(t *testing.T, b *sb) {
	return func(t *testing.T, b *sb) {
		cpus := 0.5
		if b.name == "wasm" {
			cpus = 1 // one thread: a fraction cannot be enforced, and is refused
		}
		for name, code := range codes {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				res := b.run(t, pybox.Request{Timeout: pybox.Duration(2 * time.Second), CPUs: cpus, Code: code})
				wantStatus(t, res, pybox.StatusTimeout)
				require.Contains(t, res.Error, "timed out")
			})
		}
	}
}
