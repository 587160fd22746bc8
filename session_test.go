package pybox_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func newSession(t *testing.T, req pybox.Request) *pybox.Session {
	t.Helper()
	require.Root(t)
	require.UserNS(t)
	sb := pybox.New(pybox.Options{})
	ss, _, err := sb.NewSession(context.Background(), req)
	require.NoError(t, err)
	t.Cleanup(func() { ss.Close() })
	return ss
}

func sessionRun(t *testing.T, ss *pybox.Session, code string) *pybox.Result {
	t.Helper()
	res, err := ss.Run(context.Background(), pybox.Exec{Code: code})
	require.NoError(t, err)
	return res
}

func TestSessionPersists(t *testing.T) {
	ss := newSession(t, pybox.Request{})
	r := sessionRun(t, ss, "import math\nx = 41\nprint('first')")
	require.Equal(t, pybox.StatusSuccess, r.Status, r.Error)
	require.Equal(t, "first\n", r.Stdout)
	r = sessionRun(t, ss, "open('state.txt', 'w').write('kept')\nx + 1")
	require.Equal(t, pybox.StatusSuccess, r.Status, r.Error)
	require.Equal(t, "42", string(r.ReturnValue))
	require.Equal(t, "", r.Stdout)
	r = sessionRun(t, ss, "print(math.pi > 3, open('state.txt').read())\n1/0")
	require.Equal(t, pybox.StatusRunError, r.Status)
	require.Equal(t, "True kept\n", r.Stdout)
	require.Contains(t, r.Error, `File "main.py", line 2`)
	// An exception does not end the session.
	r = sessionRun(t, ss, "import sys; sys.stderr.write('err'); x")
	require.Equal(t, pybox.StatusSuccess, r.Status, r.Error)
	require.Equal(t, "41", string(r.ReturnValue))
	require.Equal(t, "err", r.Stderr)
	require.Nil(t, ss.Err())
}

func TestSessionFiles(t *testing.T) {
	ss := newSession(t, pybox.Request{})
	ctx := context.Background()
	require.NoError(t, ss.WriteFile(ctx, pybox.File{Name: "in/data.csv", Data: []byte("a,b\n1,2\n")}))
	r := sessionRun(t, ss, "import os\nos.symlink('/etc/passwd', 'link')\nopen('out.txt','w').write(open('in/data.csv').read().upper())")
	require.Equal(t, pybox.StatusSuccess, r.Status, r.Error)
	f, err := ss.ReadFile(ctx, "out.txt")
	require.NoError(t, err)
	require.Equal(t, "A,B\n1,2\n", string(f.Data))
	_, err = ss.ReadFile(ctx, "link")
	require.Error(t, err, "a symlink must not be followed")
	_, err = ss.ReadFile(ctx, "../etc/passwd")
	require.Error(t, err)
	_, err = ss.ReadFile(ctx, "missing")
	require.Error(t, err)
}

func TestSessionLimitEndsSession(t *testing.T) {
	cases := []struct {
		name   string
		req    pybox.Request
		code   string
		status string
	}{
		{"timeout", pybox.Request{Timeout: pybox.Duration(time.Second)}, "while True: pass", pybox.StatusTimeout},
		{"memory", pybox.Request{Memory: 64 << 20}, "x = bytearray(512 << 20)", pybox.StatusMemoryLimit},
		{"output", pybox.Request{OutputLimit: 32 << 10}, "while True: print('y' * 100)", pybox.StatusOutputLimit},
		{"exit", pybox.Request{}, "import sys; sys.exit(4)", pybox.StatusRunError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ss := newSession(t, tc.req)
			r := sessionRun(t, ss, "y = 1")
			require.Equal(t, pybox.StatusSuccess, r.Status, r.Error)
			r = sessionRun(t, ss, tc.code)
			require.Equal(t, tc.status, r.Status, r.Error)
			select {
			case <-ss.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("session still alive after a limit")
			}
			// The next call says the session is gone, promptly.
			_, err := ss.Run(context.Background(), pybox.Exec{Code: "y"})
			require.True(t, errors.Is(err, pybox.ErrSessionGone), "err = %v", err)
		})
	}
}

func TestSessionIdleTimeout(t *testing.T) {
	ss := newSession(t, pybox.Request{IdleTimeout: pybox.Duration(300 * time.Millisecond)})
	select {
	case <-ss.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("idle session not ended")
	}
	_, err := ss.Run(context.Background(), pybox.Exec{Code: "1"})
	require.True(t, errors.Is(err, pybox.ErrSessionGone), "err = %v", err)
	require.Contains(t, err.Error(), "idle")
}

// TestSessionCloseLeavesNothing: no process of the session survives Close.
func TestSessionCloseLeavesNothing(t *testing.T) {
	ss := newSession(t, pybox.Request{})
	r := sessionRun(t, ss, "import subprocess\nsubprocess.Popen(['sleep', '1000.123'], start_new_session=True)\nprint('ok')")
	require.Equal(t, pybox.StatusSuccess, r.Status, r.Error)
	require.NoError(t, ss.Close())
	out, _ := exec.Command("pgrep", "-f", "sleep 1000.123").Output()
	require.Equal(t, "", strings.TrimSpace(string(out)), "a process of the session survived Close")
	_, err := ss.Run(context.Background(), pybox.Exec{Code: "1"})
	require.True(t, errors.Is(err, pybox.ErrSessionGone))
}

func TestSessionLiveOutput(t *testing.T) {
	ss := newSession(t, pybox.Request{})
	var got strings.Builder
	res, err := ss.RunWith(context.Background(), pybox.Exec{Code: "for i in range(3): print(i)"},
		pybox.RunOptions{Stdout: func(b []byte) { got.Write(b) }})
	require.NoError(t, err)
	require.Equal(t, "0\n1\n2\n", res.Stdout)
	require.Equal(t, "0\n1\n2\n", got.String())
	_ = os.Stdout
}
