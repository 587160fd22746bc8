package pybox_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func TestMain(m *testing.M) {
	pybox.Init()
	os.Exit(m.Run())
}

func run(t *testing.T, req pybox.Request) *pybox.Result {
	t.Helper()
	require.Root(t)
	require.UserNS(t)
	sb := pybox.New(pybox.Options{})
	t.Cleanup(func() { sb.Close(context.Background()) })
	res, err := sb.Run(context.Background(), req)
	if err != nil {
		t.Fatalf("Run: %v (result %+v)", err, res)
	}
	return res
}

func TestSmoke(t *testing.T) {
	res := run(t, pybox.Request{Code: "print(1)\n1+1"})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "1\n", res.Stdout)
	require.Equal(t, "2", string(res.ReturnValue))
	require.Equal(t, 0, res.ExitCode)
	require.Equal(t, "native", res.Isolation.Backend)
	require.True(t, res.Isolation.LandlockABI > 0, "landlock not enforced: %+v", res.Isolation)
	require.True(t, res.Isolation.Seccomp != "", "seccomp not enforced")
	require.True(t, res.Isolation.Cgroup != "", "cgroup not enforced")
}

// TestStatuses covers every status value the library can return.
func TestStatuses(t *testing.T) {
	cases := []struct {
		name     string
		req      pybox.Request
		status   string
		exitCode int
		inErr    string
	}{
		{"success", pybox.Request{Code: "print('ok')"}, pybox.StatusSuccess, 0, ""},
		{"run-error", pybox.Request{Code: "1/0"}, pybox.StatusRunError, 1, `File "main.py", line 1`},
		{"exit-code", pybox.Request{Code: "import sys; sys.exit(3)"}, pybox.StatusRunError, 3, ""},
		{"timeout", pybox.Request{Code: "while True: pass", Timeout: pybox.Duration(time.Second)}, pybox.StatusTimeout, -1, "timed out"},
		{"memory-limit", pybox.Request{Code: "x = bytearray(512 << 20)", Memory: 64 << 20}, pybox.StatusMemoryLimit, -1, "memory"},
		{"output-limit", pybox.Request{Code: "while True: print('x' * 1000)", OutputLimit: 64 << 10}, pybox.StatusOutputLimit, -1, "output"},
		{"killed", pybox.Request{Code: "import os; os.kill(os.getpid(), 9)"}, pybox.StatusKilled, -1, "SIGKILL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, tc.req)
			require.Equal(t, tc.status, res.Status, "error: %s stderr: %s", res.Error, res.Stderr)
			if tc.exitCode >= 0 {
				require.Equal(t, tc.exitCode, res.ExitCode)
			}
			require.Contains(t, res.Error, tc.inErr)
		})
	}
}

func TestInputError(t *testing.T) {
	sb := pybox.New(pybox.Options{})
	for _, req := range []pybox.Request{
		{Code: "1", Timeout: -1},
		{Code: "1", Backend: "vm"},
		{Code: "1", Pids: -3},
		{Code: "1", Files: []pybox.File{{Name: "../x"}}},
		{Code: "1", Mounts: []pybox.Mount{{Host: "/etc", Guest: "/proc/x"}}},
		{Code: "1", Globals: []byte(`[1,2]`)},
	} {
		res, err := sb.Run(context.Background(), req)
		if !errors.Is(err, pybox.ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", req, err)
			continue
		}
		require.Equal(t, pybox.StatusInputError, res.Status)
	}
}

func TestSandboxErrorBadPython(t *testing.T) {
	require.Root(t)
	sb := pybox.New(pybox.Options{})
	res, err := sb.Run(context.Background(), pybox.Request{Code: "1", Python: "/nonexistent/python3"})
	require.Error(t, err)
	require.True(t, res.Status == pybox.StatusInputError || res.Status == pybox.StatusSandboxError, res.Status)
	require.Contains(t, res.Error, "/nonexistent/python3")
}

func TestFilesInOut(t *testing.T) {
	res := run(t, pybox.Request{
		Code: "import os\nprint(open('data/in.txt').read())\n" +
			"open('out.txt','w').write('result')\nos.symlink('/etc/passwd', 'link')\n" +
			"os.makedirs('sub', exist_ok=True); open('sub/x.bin','wb').write(b'\\x00\\x01')",
		Files:        []pybox.File{{Name: "data/in.txt", Data: []byte("hello input")}},
		CollectFiles: true,
	})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "hello input\n", res.Stdout)
	got := outFiles(res)
	require.Equal(t, "result", got["out.txt"])
	require.Equal(t, "\x00\x01", got["sub/x.bin"])
	require.Equal(t, "hello input", got["data/in.txt"])
	_, hasLink := got["link"]
	require.False(t, hasLink, "symlink was collected")
}

func TestLiveOutput(t *testing.T) {
	require.Root(t)
	sb := pybox.New(pybox.Options{})
	var chunks []string
	res, err := sb.RunWith(context.Background(), pybox.Request{Code: "import sys\nfor i in range(3): print(i, flush=True)\nsys.stderr.write('e')"},
		pybox.RunOptions{Stdout: func(b []byte) { chunks = append(chunks, string(b)) }})
	require.NoError(t, err)
	require.Equal(t, "0\n1\n2\n", strings.Join(chunks, ""))
	require.Equal(t, "e", res.Stderr)
}

func TestCancel(t *testing.T) {
	require.Root(t)
	sb := pybox.New(pybox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res, err := sb.Run(ctx, pybox.Request{Code: "import time; time.sleep(60)"})
	require.NoError(t, err)
	require.Equal(t, pybox.StatusKilled, res.Status)
}

// TestRichOutputs: a matplotlib figure becomes image/png, a DataFrame as
// the trailing expression text/html plus text/plain, in a real sandbox.
func TestRichOutputs(t *testing.T) {
	require.PythonModule(t, "pandas")
	require.PythonModule(t, "matplotlib")
	res := run(t, pybox.Request{Code: `import matplotlib.pyplot as plt
import pandas as pd
plt.plot([1, 3, 2])
plt.show()
pd.DataFrame({'a': [1, 2]})`})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error+res.Stderr)
	var mimes []string
	for _, o := range res.Outputs {
		mimes = append(mimes, o.MIME)
	}
	require.Equal(t, []string{"image/png", "text/html", "text/plain"}, mimes)
	png, err := base64.StdEncoding.DecodeString(res.Outputs[0].Data)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(png), "\x89PNG"), "not a PNG")
	require.Contains(t, res.Outputs[1].Data, "<table")
	require.Equal(t, "", res.Stderr)
}

// outFiles maps the names of a result's output files to their contents.
func outFiles(res *pybox.Result) map[string]string {
	got := map[string]string{}
	for _, f := range res.Files {
		got[f.Name] = string(f.Data)
	}
	return got
}
