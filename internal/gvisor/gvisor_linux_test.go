package gvisor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/spawn"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// guestEnvKeys is what Python prints for sorted(os.environ) in a sandbox
// whose request sets extra: the fixed environment, and the host's
// spawn.PassEnv variables where the host has them (OPENBLAS_* tuning).
func guestEnvKeys(extra ...string) string {
	keys := append([]string{"HOME", "LANG", "MPLBACKEND", "MPLCONFIGDIR", "PATH", "TMPDIR", "USER"}, extra...)
	for _, k := range spawn.PassEnv {
		if _, ok := os.LookupEnv(k); ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return "['" + strings.Join(keys, "', '") + "']\n"
}

func TestRegistered(t *testing.T) {
	_, ok := backend.Lookup(Name)
	require.True(t, ok, "gvisor backend not registered")
	require.Equal(t, api.BackendGVisor, Name)
}

func TestOptions(t *testing.T) {
	env := map[string]string{EnvRunsc: "/x/runsc", EnvPlatform: "kvm", EnvDir: "/d"}
	o := OptionsFromEnv(func(k string) string { return env[k] })
	require.Equal(t, Options{Runsc: "/x/runsc", Platform: "kvm", Dir: "/d"}, o)
	for v, off := range map[string]bool{"0": true, "off": true, "false": true, "1": false, "": false} {
		o := OptionsFromEnv(func(k string) string {
			if k == EnvPool {
				return v
			}
			return ""
		})
		require.Equal(t, off, o.NoPool, "%s=%q", EnvPool, v)
	}
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{name: "missing runsc", o: Options{Runsc: "/nonexistent/runsc"}, wantErr: "runsc not found"},
		{name: "bad platform", o: Options{Runsc: "/bin/true", Platform: "kvm --debug"}, wantErr: "invalid runsc platform"},
		{name: "relative dir", o: Options{Runsc: "/bin/true", Dir: "run"}, wantErr: "absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Available(tc.o)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// outcome is what a case expects; empty fields are not checked.
type outcome struct {
	status, stdout, stderrHas, errorHas, signal string
	exitCode                                    *int
	ret                                         string
}

func code(n int) *int { return &n }

// finaliseCode leaves work for the interpreter's exit: a non-daemon thread
// that prints later and an atexit handler, then sys.exit(4). The run ends
// only after both, as on the native backend.
const finaliseCode = "import atexit, sys, threading, time\n" +
	"def late():\n    time.sleep(0.2)\n    print('thread')\n" +
	"atexit.register(print, 'atexit')\nthreading.Thread(target=late).start()\nprint('main')\nsys.exit(4)"

// TestRuns runs real sandboxes in parallel, then checks that none of them
// left a process, a mount, a cgroup or a file behind.
func TestRuns(t *testing.T) {
	tb := newOwnBackend(t, testOptions())
	t.Run("group", func(t *testing.T) {
		cases := []struct {
			name string
			req  api.Request
			want outcome
		}{
			{name: "print", req: api.Request{Code: "print(1)"}, want: outcome{status: api.StatusSuccess, stdout: "1\n", exitCode: code(0)}},
			{name: "return value", req: api.Request{Code: "x = 6\nx * 7"}, want: outcome{status: api.StatusSuccess, ret: "42"}},
			{name: "globals", req: api.Request{Code: "{'n': n + 1}", Globals: json.RawMessage(`{"n": 1}`)}, want: outcome{status: api.StatusSuccess, ret: `{"n":2}`}},
			{name: "traceback", req: api.Request{Code: "def f():\n    1/0\nf()"}, want: outcome{status: api.StatusRunError, errorHas: "ZeroDivisionError", exitCode: code(1)}},
			{name: "traceback names main.py", req: api.Request{Code: "raise ValueError('boom')"}, want: outcome{status: api.StatusRunError, errorHas: `File "main.py"`}},
			{name: "syntax error", req: api.Request{Code: "def ("}, want: outcome{status: api.StatusRunError, errorHas: "SyntaxError"}},
			{name: "exit 0", req: api.Request{Code: "import sys\nsys.exit(0)"}, want: outcome{status: api.StatusSuccess, exitCode: code(0)}},
			{name: "exit 3", req: api.Request{Code: "import sys\nsys.exit(3)"}, want: outcome{status: api.StatusRunError, exitCode: code(3)}},
			{name: "os._exit 5", req: api.Request{Code: "import os\nos._exit(5)"}, want: outcome{status: api.StatusRunError, exitCode: code(5)}},
			{name: "finalisation", req: api.Request{Code: finaliseCode}, want: outcome{status: api.StatusRunError, stdout: "main\nthread\natexit\n", exitCode: code(4)}},
			{name: "stderr", req: api.Request{Code: "import sys\nprint('oops', file=sys.stderr)"}, want: outcome{status: api.StatusSuccess, stderrHas: "oops"}},
			{name: "sigkill self", req: api.Request{Code: "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"}, want: outcome{status: api.StatusKilled, signal: "SIGKILL", exitCode: code(-1)}},
			{name: "identity", req: api.Request{Code: "import os, socket\nprint(os.getuid(), os.getgid(), os.getcwd(), socket.gethostname())"}, want: outcome{status: api.StatusSuccess, stdout: "1000 1000 /work pybox\n"}},
			{name: "read-only usr", req: api.Request{Code: "open('/usr/x', 'w')"}, want: outcome{status: api.StatusRunError, errorHas: "Error"}},
			{name: "no host env", req: api.Request{Code: "import os\nprint(sorted(os.environ))", Env: map[string]string{"MY_VAR": "1"}},
				want: outcome{status: api.StatusSuccess, stdout: guestEnvKeys("MY_VAR")}},
			{name: "interfaces", req: api.Request{Code: "import socket\nprint([n for _, n in socket.if_nameindex()])"}, want: outcome{status: api.StatusSuccess, stdout: "['lo']\n"}},
			{name: "output limit", req: api.Request{Code: "while True: print('x' * 1000)", OutputLimit: 64 << 10}, want: outcome{status: api.StatusOutputLimit}},
			{name: "memory limit", req: api.Request{Code: "x = bytearray(400 << 20)\nprint(len(x))", Memory: 64 << 20}, want: outcome{status: api.StatusMemoryLimit}},
			{name: "pids limit", req: api.Request{Code: "import threading, time\nts = []\ntry:\n    for i in range(50):\n        t = threading.Thread(target=time.sleep, args=(0.5,)); t.start(); ts.append(t)\nexcept RuntimeError:\n    pass\nprint(len(ts) < 50)", Pids: 8},
				want: outcome{status: api.StatusSuccess, stdout: "True\n"}},
			{name: "disk limit", req: api.Request{Code: "try:\n    open('big', 'wb').write(b'x' * (3 << 20))\nexcept OSError as e:\n    print(type(e).__name__)", Disk: 1 << 20},
				want: outcome{status: api.StatusSuccess, stdout: "OSError\n"}},
			{name: "tmp disk limit", req: api.Request{Code: "try:\n    open('/tmp/big', 'wb').write(b'x' * (3 << 20))\nexcept OSError as e:\n    print(type(e).__name__)", Disk: 1 << 20},
				want: outcome{status: api.StatusSuccess, stdout: "OSError\n"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				res := runOn(t, tb, tc.req)
				check(t, res, tc.want)
			})
		}
		t.Run("timeout kills everything", func(t *testing.T) {
			t.Parallel()
			res := runOn(t, tb, api.Request{
				Code: "import subprocess, threading, time, os\nsubprocess.Popen(['sleep', '1000'])\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1000)\nthreading.Thread(target=time.sleep, args=(1000,)).start()\nprint('started', flush=True)\ntime.sleep(1000)",
				// 3 s: a cold sandbox under a loaded test run took
				// over 1 s to get to the print.
				Timeout: api.Duration(3 * time.Second),
			})
			check(t, res, outcome{status: api.StatusTimeout, stdout: "started\n"})
		})
		t.Run("cancel", func(t *testing.T) {
			t.Parallel()
			b := tb
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := api.Request{Backend: Name, Code: "print('go', flush=True)\nimport time\ntime.sleep(1000)"}.WithDefaults()
			var once sync.Once
			res, err := b.Run(ctx, &req, backend.Hooks{Stdout: func(p []byte) {
				if strings.Contains(string(p), "go") {
					once.Do(cancel)
				}
			}})
			require.NoError(t, err)
			check(t, res, outcome{status: api.StatusKilled, stdout: "go\n"})
		})
		t.Run("output limit truncates", func(t *testing.T) {
			t.Parallel()
			res := runOn(t, tb, api.Request{Code: "import sys\nsys.stdout.write('y' * 100000)", OutputLimit: 1000})
			check(t, res, outcome{status: api.StatusOutputLimit})
			require.True(t, res.StdoutTruncated)
			require.Equal(t, strings.Repeat("y", 1000), res.Stdout)
		})
		t.Run("files", func(t *testing.T) { testFiles(t, tb) })
		t.Run("host loopback unreachable", func(t *testing.T) { testLoopback(t, tb) })
		t.Run("bad python", func(t *testing.T) {
			t.Parallel()
			b := tb
			req := api.Request{Backend: Name, Code: "1", Python: "/nonexistent/python3"}.WithDefaults()
			res, err := b.Run(context.Background(), &req, backend.Hooks{})
			require.Error(t, err)
			require.Equal(t, api.StatusInputError, res.Status)
		})
		t.Run("isolation", func(t *testing.T) {
			t.Parallel()
			res := runOn(t, tb, api.Request{Code: "1", Memory: 100 << 20, Pids: 10, CPUs: 0.5})
			iso := res.Isolation
			require.Equal(t, Name, iso.Backend)
			require.NotNil(t, iso.UID)
			require.Equal(t, 1000, *iso.UID)
			require.Equal(t, "none", iso.Network)
			require.Equal(t, int64(100<<20), iso.Limits.MemoryBytes)
			require.Equal(t, 10, iso.Limits.Pids)
			require.Equal(t, 0.5, iso.Limits.CPUs)
			require.True(t, iso.Cgroup == "v1" || iso.Cgroup == "v2", "cgroup %q", iso.Cgroup)
			require.Len(t, iso.Missing, 0)
		})
	})
	require.NoError(t, tb.Close(context.Background()))
	checkNothingLeft(t)
}

func check(t *testing.T, res *api.Result, want outcome) {
	t.Helper()
	summary := fmt.Sprintf("status %s exit %d signal %q error %q stdout %.200q stderr %.500q", res.Status, res.ExitCode, res.Signal, res.Error, res.Stdout, res.Stderr)
	require.Equal(t, want.status, res.Status, summary)
	if want.stdout != "" {
		require.Equal(t, want.stdout, res.Stdout, summary)
	}
	if want.stderrHas != "" {
		require.Contains(t, res.Stderr, want.stderrHas, summary)
	}
	if want.errorHas != "" {
		require.Contains(t, res.Error, want.errorHas, summary)
	}
	if want.signal != "" {
		require.Equal(t, want.signal, res.Signal, summary)
	}
	if want.exitCode != nil {
		require.Equal(t, *want.exitCode, res.ExitCode, summary)
	}
	if want.ret != "" {
		require.Equal(t, want.ret, string(res.ReturnValue), summary)
	}
}

func testFiles(t *testing.T, tb backend.Backend) {
	t.Parallel()
	code := `import os
print(open('in.txt').read(), open('sub/data.bin', 'rb').read().hex(), oct(os.stat('sub/run.sh').st_mode & 0o777), os.stat('in.txt').st_uid)
open('out.txt', 'w').write('result')
os.makedirs('d/e')
open('d/e/deep.txt', 'w').write('deep')
os.symlink('/etc/passwd', 'link')
os.symlink('/proc/1/environ', 'link2')
open('big.bin', 'wb').write(b'z' * 5000)
`
	res := runOn(t, tb, api.Request{
		Code: code,
		Files: []api.File{
			{Name: "in.txt", Data: []byte("hello")},
			{Name: "sub/data.bin", Data: []byte{1, 2, 255}},
			{Name: "sub/run.sh", Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		},
		CollectFiles: true,
		FilesLimit:   4096,
	})
	check(t, res, outcome{status: api.StatusSuccess, stdout: "hello 0102ff 0o755 1000\n"})
	got := map[string]string{}
	for _, f := range res.Files {
		got[f.Name] = string(f.Data)
		require.Equal(t, int64(len(f.Data)), f.Size)
	}
	require.Equal(t, "result", got["out.txt"])
	require.Equal(t, "deep", got["d/e/deep.txt"])
	require.Equal(t, "hello", got["in.txt"])
	for _, name := range []string{"link", "link2", "big.bin"} {
		_, ok := got[name]
		require.False(t, ok, "%s was collected", name)
	}
	require.True(t, res.FilesTruncated, "big.bin is over the files limit")
}

func testLoopback(t *testing.T, tb backend.Backend) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res := runOn(t, tb, api.Request{Code: fmt.Sprintf("import socket\ns = socket.socket()\ns.settimeout(5)\ntry:\n    s.connect(('127.0.0.1', %d))\n    print('reached', s.recv(10))\nexcept OSError as e:\n    print(type(e).__name__)", port)})
	check(t, res, outcome{status: api.StatusSuccess, stdout: "ConnectionRefusedError\n"})
}

// checkNothingLeft fails if any process, mount, cgroup or file of this
// test process's runs is still there.
func checkNothingLeft(t *testing.T) {
	t.Helper()
	settleShared()
	dir := testOptions().Dir
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir+"/") {
			t.Errorf("process left behind: %s: %s", p, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	mps, err := mountPoints()
	require.NoError(t, err)
	for _, mp := range mps {
		if strings.HasPrefix(mp, dir+"/") {
			t.Errorf("mount left behind: %s", mp)
		}
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	prefix := fmt.Sprintf("%d-", os.Getpid())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) && !strings.HasPrefix(e.Name(), prefix+"etc") {
			t.Errorf("run directory left behind: %s", e.Name())
		}
	}
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), prefix+"gv") {
			t.Errorf("cgroup left behind: %s", p)
		}
		if strings.Count(p, "/") > 7 {
			return filepath.SkipDir
		}
		return nil
	})
}

// TestDevAndSys: /dev holds only the native backend's devices (served by
// the sentry), and /sys shows nothing.
func TestDevAndSys(t *testing.T) {
	res := runReq(t, api.Request{Code: `
import os
print(" ".join(sorted(os.listdir("/dev"))))
try:
    os.listdir("/sys")
    print("sys listed")
except PermissionError:
    print("sys denied")
with open("/dev/null", "w") as f:
    f.write("x")
print(open("/dev/zero", "rb").read(2), len(open("/dev/urandom", "rb").read(8)))
try:
    os.write(os.open("/dev/full", os.O_WRONLY), b"x")
except OSError as e:
    print(e.strerror)
`})
	require.Equal(t, api.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "fd full null pts random shm stderr stdin stdout urandom zero\nsys denied\nb'\\x00\\x00' 8\nNo space left on device\n", res.Stdout)
}

func TestValidPlatform(t *testing.T) {
	for p, want := range map[string]bool{
		"ptrace": true, "kvm": true, "systrap": true, "a": true, "a_b-9": true,
		strings.Repeat("a", 32): true, strings.Repeat("a", 33): false,
		"": false, "Kvm": false, "9kvm": false, "-x": false, "kvm --debug": false, "kvm\n": false, "é": false,
	} {
		require.Equal(t, want, validPlatform(p), "%q", p)
	}
}
