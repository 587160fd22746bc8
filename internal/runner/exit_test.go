package runner

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runStdin runs the runner as the gvisor backend does: IN is "0" (the exec
// frame arrives on stdin, which stays open) and OUT a file path. The runner
// must end by itself after one execution.
func runStdin(t *testing.T, code string) run {
	t.Helper()
	needPython(t)
	dir := t.TempDir()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	outPath := filepath.Join(dir, "out")
	args := Args(python, "0", outPath)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.Stdin = inR
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	if err := WriteFrame(inW, NewExec(code, nil)); err != nil {
		t.Fatal(err)
	}
	return finishRun(t, cmd, cmd.Wait(), &stdout, &stderr, outPath)
}

// TestExitFrame: with IN "0" the runner does what Python's finalisation
// does (non-daemon threads joined, atexit handlers, stdio flushed), then
// sends an exit frame with the status it exits with, and exits.
func TestExitFrame(t *testing.T) {
	tests := []struct {
		name       string
		code       string
		wantCode   int
		wantStdout string
		wantStderr string // substring
	}{
		{name: "ok", code: "print(1)", wantStdout: "1\n"},
		{name: "error", code: "1/0", wantCode: 1},
		{name: "sys.exit and atexit", code: "import atexit, sys\natexit.register(print, 'bye')\nprint('main')\nsys.exit(3)", wantCode: 3, wantStdout: "main\nbye\n"},
		{name: "thread then atexit", code: "import atexit, threading, time\natexit.register(print, 'atexit')\n" +
			"def late():\n    time.sleep(0.1)\n    print('thread')\nthreading.Thread(target=late).start()\nprint('main')",
			wantStdout: "main\nthread\natexit\n"},
		{name: "atexit raises", code: "import atexit\ndef boom():\n    raise ValueError('boom')\natexit.register(boom)",
			wantStderr: "Exception ignored in atexit callback"},
		{name: "flush fails", code: "import sys\nclass W:\n    def write(self, s): return len(s)\n    def flush(self): raise RuntimeError('nope')\nsys.stdout = W()",
			wantCode: 120, wantStderr: "Exception ignored in: <__main__.W object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStdin(t, tt.code)
			r.result(t)
			if len(r.msgs) < 2 || r.msgs[len(r.msgs)-1].Type != TypeExit || r.msgs[len(r.msgs)-2].Type != TypeResult {
				t.Fatalf("frames %+v: want a result, then an exit last; stderr %q", r.msgs, r.stderr)
			}
			exit := r.msgs[len(r.msgs)-1]
			if *exit.ExitCode != tt.wantCode || r.exitCode != tt.wantCode {
				t.Errorf("exit frame code %d, process exit code %d, want %d (stderr %q)", *exit.ExitCode, r.exitCode, tt.wantCode, r.stderr)
			}
			if tt.wantStdout != "" && r.stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", r.stdout, tt.wantStdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.wantStderr)
			}
			if strings.Contains(r.stderr, `File "<string>"`) {
				t.Errorf("stderr shows runner frames: %q", r.stderr)
			}
		})
	}
}

// TestNoExitFrameOtherwise: fd and path modes (native, wasm) exit through
// Python's own finalisation and send no exit frame.
func TestNoExitFrameOtherwise(t *testing.T) {
	for name, r := range map[string]run{
		"fd":   runCode(t, "print(1)"),
		"path": runPaths(t, NewExec("print(1)", nil)),
	} {
		for _, m := range r.msgs {
			if m.Type == TypeExit {
				t.Errorf("%s mode sent an exit frame: %+v", name, r.msgs)
			}
		}
	}
}

// TestEndAfterCCode: a runner that read its frames until EOF ends with
// os._exit after its finish when the code loaded no extension module, and
// through C's exit() when it did (ctypes loaded), so that C atexit
// handlers still run, with the interpreter alive: here a ctypes callback
// registered with C's atexit, which writes straight to fd 1 (after
// Python's own finalisation it could not run: its code would be gone).
// Exit statuses are kept either way.
func TestEndAfterCCode(t *testing.T) {
	t.Parallel()
	// atexit(3) is __cxa_atexit underneath (glibc exports only that).
	const cb = "import ctypes, os\n" +
		"bye = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _, w=os.write: w(1, b'c-atexit\\n'))\n" +
		"ctypes.CDLL(None).__cxa_atexit(bye, None, None)\n" +
		"import sys\nsys.keep = bye\n" // the finish tears down __main__, not sys
	tests := []struct {
		name, code, stdout string
		exit               int
	}{
		{"pure python", "print('a')", "a\n", 0},
		{"pure python, exit status", "import sys\nsys.exit(4)", "", 4},
		{"C atexit handler", cb + "print('a')", "a\nc-atexit\n", 0},
		{"C atexit handler, exit status", cb + "import sys\nsys.exit(5)", "c-atexit\n", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runFD(t, "", NewExec(tt.code, nil))
			if r.stdout != tt.stdout || r.exitCode != tt.exit {
				t.Errorf("stdout %q exit %d, want %q exit %d (stderr %q)", r.stdout, r.exitCode, tt.stdout, tt.exit, r.stderr)
			}
		})
	}
}
