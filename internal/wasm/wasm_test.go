package wasm

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

var (
	sharedOnce sync.Once
	shared     *Backend
	sharedErr  error
)

// testBackend returns one backend shared by the tests of this package (the
// compiled module and the pool are reused, as in a server). It skips when
// python.wasm has not been built, and fails under PYBOX_REQUIRE_ISOLATION=1.
func testBackend(t *testing.T) *Backend {
	t.Helper()
	_, err := FindDir()
	require.Feature(t, err == nil, "python.wasm is not built (run `make python-wasm`): %v", err)
	sharedOnce.Do(func() {
		shared, sharedErr = New()
		if sharedErr == nil {
			sharedErr = shared.Check()
		}
	})
	require.NoError(t, sharedErr)
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		_ = shared.Close(context.Background())
	}
	os.Exit(code)
}

func run(t *testing.T, req api.Request) *api.Result {
	t.Helper()
	b := testBackend(t)
	r := req.WithDefaults()
	r.Backend = Name
	require.NoError(t, r.Validate())
	res, err := b.Run(context.Background(), &r, backend.Hooks{})
	require.NoError(t, err)
	require.Equal(t, Name, res.Isolation.Backend)
	return res
}

func TestRegistered(t *testing.T) {
	_, ok := backend.Lookup(Name)
	require.True(t, ok)
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		req        api.Request
		wantStatus string
		wantExit   int
		wantStdout string
		wantStderr string
		wantRV     string
		wantErr    string
	}{
		{name: "print", req: api.Request{Code: "print(1)"}, wantStatus: api.StatusSuccess, wantStdout: "1\n"},
		{name: "return value", req: api.Request{Code: "x = 20\nx * 2 + 2"}, wantStatus: api.StatusSuccess, wantRV: "42"},
		{name: "globals", req: api.Request{Code: "a + len(b)", Globals: json.RawMessage(`{"a": 1, "b": [1, 2]}`)}, wantStatus: api.StatusSuccess, wantRV: "3"},
		{name: "stderr", req: api.Request{Code: "import sys; sys.stderr.write('oops\\n')"}, wantStatus: api.StatusSuccess, wantStderr: "oops\n"},
		{name: "exception", req: api.Request{Code: "def f():\n    1/0\nf()"}, wantStatus: api.StatusRunError, wantExit: 1, wantErr: `File "main.py", line 2, in f`},
		{name: "syntax error", req: api.Request{Code: "def ("}, wantStatus: api.StatusRunError, wantExit: 1, wantErr: "SyntaxError"},
		{name: "sys.exit(3)", req: api.Request{Code: "import sys; sys.exit(3)"}, wantStatus: api.StatusRunError, wantExit: 3},
		{name: "sys.exit(0)", req: api.Request{Code: "import sys; print('a'); sys.exit(0)"}, wantStatus: api.StatusSuccess, wantStdout: "a\n"},
		{name: "cwd is /work", req: api.Request{Code: "import os; os.getcwd()"}, wantStatus: api.StatusSuccess, wantRV: `"/work"`},
		{name: "sleep", req: api.Request{Code: "import time; t = time.monotonic(); time.sleep(0.05); time.monotonic() - t >= 0.05"}, wantStatus: api.StatusSuccess, wantRV: "true"},
		{name: "stdlib", req: api.Request{Code: "import json, zlib, decimal, hashlib, re; json.dumps({'a': zlib.crc32(b'x')})"}, wantStatus: api.StatusSuccess, wantRV: `"{\"a\": 2363233923}"`},
		{name: "user env", req: api.Request{Code: "import os; os.environ['FOO']", Env: map[string]string{"FOO": "bar"}}, wantStatus: api.StatusSuccess, wantRV: `"bar"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.req)
			require.Equal(t, tt.wantStatus, res.Status, res.Error)
			require.Equal(t, tt.wantExit, res.ExitCode)
			require.Equal(t, tt.wantStdout, res.Stdout)
			if tt.wantStderr != "" {
				require.Equal(t, tt.wantStderr, res.Stderr)
			}
			if tt.wantRV != "" {
				require.Equal(t, tt.wantRV, string(res.ReturnValue))
			}
			if tt.wantErr != "" {
				require.Contains(t, res.Error, tt.wantErr)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	for _, code := range []string{"while True: pass", "import time; time.sleep(3600)"} {
		start := time.Now()
		res := run(t, api.Request{Code: code, Timeout: api.Duration(300 * time.Millisecond)})
		require.Equal(t, api.StatusTimeout, res.Status, code)
		require.True(t, time.Since(start) < 20*time.Second, "the guest was not stopped")
	}
}

func TestCancel(t *testing.T) {
	b := testBackend(t)
	r := api.Request{Code: "while True: pass", Backend: Name}.WithDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res, err := b.Run(ctx, &r, backend.Hooks{})
	require.NoError(t, err)
	require.Equal(t, api.StatusKilled, res.Status)
}

func TestMemoryLimit(t *testing.T) {
	res := run(t, api.Request{Code: "x = []\nwhile True: x.append(' ' * (1 << 20))", Memory: 64 << 20})
	require.Equal(t, api.StatusMemoryLimit, res.Status, res.Error)
	require.True(t, res.Usage.PeakMemoryBytes <= 64<<20, "peak %d over the limit", res.Usage.PeakMemoryBytes)

	// One big allocation, caught by the code: still a memory-limit run.
	res = run(t, api.Request{Code: "try:\n    b = bytearray(200 << 20)\nexcept MemoryError:\n    pass", Memory: 64 << 20})
	require.Equal(t, api.StatusMemoryLimit, res.Status, res.Error)
}

func TestOutputLimit(t *testing.T) {
	var mu sync.Mutex
	var live int
	b := testBackend(t)
	r := api.Request{Code: "while True: print('x' * 1000)", OutputLimit: 64 << 10, Backend: Name}.WithDefaults()
	res, err := b.Run(context.Background(), &r, backend.Hooks{Stdout: func(p []byte) { mu.Lock(); live += len(p); mu.Unlock() }})
	require.NoError(t, err)
	require.Equal(t, api.StatusOutputLimit, res.Status)
	require.True(t, res.StdoutTruncated)
	require.Equal(t, 64<<10, len(res.Stdout))
	mu.Lock()
	require.Equal(t, 64<<10, live)
	mu.Unlock()
}

func TestFiles(t *testing.T) {
	res := run(t, api.Request{
		Code: `
import os
with open("in/data.txt") as f:
    s = f.read()
with open("out.txt", "w") as f:
    f.write(s.upper())
os.mkdir("sub")
with open("/work/sub/b.bin", "wb") as f:
    f.write(b"\x00\x01")
try:
    os.symlink("../../../../../etc/passwd", "link")
except OSError as e:
    print("symlink refused")
sorted(os.listdir("."))
`,
		Files:        []api.File{{Name: "in/data.txt", Data: []byte("hello")}},
		CollectFiles: true,
	})
	require.Equal(t, api.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "symlink refused\n", res.Stdout)
	require.Equal(t, `["in","out.txt","sub"]`, string(res.ReturnValue))
	var names []string
	for _, f := range res.Files {
		names = append(names, f.Name)
	}
	require.Equal(t, []string{"in/data.txt", "out.txt", "sub/b.bin"}, names)
	require.Equal(t, "HELLO", string(res.Files[1].Data))

	// The files limit leaves out what does not fit.
	res = run(t, api.Request{Code: "open('a', 'w').write('a' * 100); open('b', 'w').write('b' * 10)", CollectFiles: true, FilesLimit: 50})
	require.Equal(t, api.StatusSuccess, res.Status, res.Error)
	require.True(t, res.FilesTruncated)
	require.Len(t, res.Files, 1)
	require.Equal(t, "b", res.Files[0].Name)
}

func TestDiskLimit(t *testing.T) {
	res := run(t, api.Request{Code: `
f = open("big", "wb")
try:
    for i in range(100):
        f.write(b"x" * (1 << 20))
        f.flush()
except OSError as e:
    print("stopped at", i)
`, Disk: 4 << 20})
	require.Equal(t, api.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "stopped at 4\n", res.Stdout)
}

func TestNoHostAccess(t *testing.T) {
	t.Setenv("PYBOX_SECRET_TEST", "leak")
	tests := []struct{ name, code, want string }{
		{"no host env", "import os; sorted(os.environ)", `["HOME","LANG","PATH","TMPDIR","USER"]`},
		{"no /etc/passwd", "import os; os.path.exists('/etc/passwd')", "false"},
		{"no host root", "import os\ntry:\n    r = os.listdir('/')\nexcept OSError:\n    r = 'denied'\nr", ""},
		{"no climbing", "import os; os.path.exists('/work/../../../../etc/passwd')", "false"},
		{"no network", "import socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n    r = 'created'\nexcept (OSError, AttributeError) as e:\n    r = 'refused'\nr", `"refused"`},
		{"no subprocess", "import os\ntry:\n    os.system('id')\n    r = 'ran'\nexcept (OSError, AttributeError):\n    r = 'refused'\nr", `"refused"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, api.Request{Code: tt.code})
			require.Equal(t, api.StatusSuccess, res.Status, res.Error)
			if tt.want != "" {
				require.Equal(t, tt.want, string(res.ReturnValue))
			}
			require.NotContains(t, string(res.ReturnValue), "passwd")
			require.NotContains(t, string(res.ReturnValue), "leak")
		})
	}
}

func TestFreshInterpreter(t *testing.T) {
	res := run(t, api.Request{Code: "import sys; sys.pybox_marker = 1; open('/tmp/m', 'w').write('x')"})
	require.Equal(t, api.StatusSuccess, res.Status, res.Error)
	for i := 0; i < 3; i++ {
		res = run(t, api.Request{Code: "import sys, os; (hasattr(sys, 'pybox_marker'), os.path.exists('/tmp/m'))"})
		require.Equal(t, api.StatusSuccess, res.Status, res.Error)
		require.Equal(t, "[false,false]", string(res.ReturnValue))
	}
}

func TestRefused(t *testing.T) {
	b := testBackend(t)
	dir := t.TempDir()
	tests := []struct {
		name  string
		req   api.Request
		field string
	}{
		{"python", api.Request{Code: "1", Python: "/usr/bin/python3.11"}, "python"},
		{"rw mount", api.Request{Code: "1", Mounts: []api.Mount{{Host: dir, Guest: "/data", RW: true}}}, "mounts"},
		{"cpu fraction", api.Request{Code: "1", CPUs: 0.5}, "cpus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req.WithDefaults()
			res, err := b.Run(context.Background(), &r, backend.Hooks{})
			require.Error(t, err)
			var ie *api.InputError
			require.True(t, asInputError(err, &ie), err)
			require.Equal(t, tt.field, ie.Field)
			require.Equal(t, api.StatusInputError, res.Status)
		})
	}
}

func TestReadOnlyMount(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/a.txt", []byte("mounted"), 0o644))
	require.NoError(t, os.Symlink("/etc/passwd", dir+"/escape"))
	res := run(t, api.Request{Code: `
r = [open("/data/a.txt").read()]
try:
    open("/data/new", "w")
except OSError:
    r.append("read-only")
try:
    open("/data/escape").read()
except OSError:
    r.append("no escape")
r`, Mounts: []api.Mount{{Host: dir, Guest: "/data"}}})
	require.Equal(t, api.StatusSuccess, res.Status, res.Error)
	require.Equal(t, `["mounted","read-only","no escape"]`, string(res.ReturnValue))
}
