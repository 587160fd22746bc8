package escape

import (
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func TestForkBomb(t *testing.T) {
	setup(t)
	const pids = 32
	res := run(t, pybox.Request{
		Pids:    pids,
		Timeout: pybox.Duration(3 * time.Second),
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
	wantStatus(t, res, pybox.StatusTimeout)
	got := lines(res, "LIMITED")
	require.Equal(t, 1, len(got), "the pids limit stopped the bomb")
	if f := strings.Fields(got[0]); f[1] != "11" {
		t.Errorf("fork failed with errno %s, want EAGAIN (11)", f[1])
	}
	require.Equal(t, pids, res.Isolation.Limits.Pids)
}

func TestMemoryBomb(t *testing.T) {
	setup(t)
	for _, tc := range []struct{ name, code string }{
		{"interpreter", `
b = []
while True:
    b.append(b"x" * (8 << 20))
`},
		{"child process", `
import subprocess, sys
subprocess.run([sys.executable, "-c", "b = []\nwhile True: b.append(b'x' * (8 << 20))"])
print("PARENT survived", flush=True)
`},
		{"tmpfs", `
with open("/dev/shm/fill", "wb") as f:
    while True:
        f.write(b"x" * (1 << 20))
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, pybox.Request{Memory: 64 << 20, Disk: 512 << 20, Code: tc.code})
			wantStatus(t, res, pybox.StatusMemoryLimit)
			if res.Usage.PeakMemoryBytes > 80<<20 {
				t.Errorf("peak memory %d over the 64 MiB limit", res.Usage.PeakMemoryBytes)
			}
		})
	}
}

func TestOutputFlood(t *testing.T) {
	setup(t)
	const limit = 64 << 10
	for _, tc := range []struct{ name, code string }{
		{"stdout", "while True:\n    print('A' * 1000)\n"},
		{"stderr", "import sys\nwhile True:\n    sys.stderr.write('E' * 1000 + '\\n')\n"},
		{"child", "import subprocess\nsubprocess.run(['/usr/bin/yes', 'flood'])\n"},
		{"one write", "import os\nos.write(1, b'B' * (8 << 20))\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, pybox.Request{OutputLimit: limit, Code: tc.code})
			wantStatus(t, res, pybox.StatusOutputLimit)
			require.True(t, len(res.Stdout) <= limit, "stdout has %d bytes, over the %d limit", len(res.Stdout), limit)
			require.True(t, len(res.Stderr) <= limit, "stderr has %d bytes, over the %d limit", len(res.Stderr), limit)
			require.True(t, res.StdoutTruncated || res.StderrTruncated, "the result says output was cut")
		})
	}
}

func TestCPUSpin(t *testing.T) {
	setup(t)
	for _, tc := range []struct{ name, code string }{
		{"spin", "while True:\n    pass\n"},
		{"sleep", "import time\ntime.sleep(1000)\n"},
		{"spin in children", `
import os
for _ in range(4):
    if os.fork() == 0:
        while True:
            pass
while True:
    pass
`},
		{"ignore signals", `
import signal, time
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
    signal.signal(s, signal.SIG_IGN)
time.sleep(1000)
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, pybox.Request{Timeout: pybox.Duration(2 * time.Second), CPUs: 0.5, Code: tc.code})
			wantStatus(t, res, pybox.StatusTimeout)
			require.Contains(t, res.Error, "timed out")
		})
	}
}
