package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const python = "/usr/bin/python3"

// run is the outcome of one runner process.
type run struct {
	msgs     []Message
	stdout   string
	stderr   string
	exitCode int
}

// results returns the result messages, in order.
func (r run) results() []Message {
	var out []Message
	for _, m := range r.msgs {
		if m.Type == TypeResult {
			out = append(out, m)
		}
	}
	return out
}

// result returns the only result message, failing otherwise.
func (r run) result(t *testing.T) Message {
	t.Helper()
	res := r.results()
	if len(res) != 1 {
		t.Fatalf("got %d result frames, want 1; frames %+v; stderr %q", len(res), r.msgs, r.stderr)
	}
	return res[0]
}

func needPython(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not found: %v", python, err)
	}
}

// runFD runs the real runner with pipes on fds 3 (IN) and 4 (OUT), in dir (a
// fresh temp dir when empty), sends execs, then closes IN.
func runFD(t *testing.T, dir string, execs ...Exec) run {
	t.Helper()
	needPython(t)
	if dir == "" {
		dir = t.TempDir()
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := Args(python, "3", "4")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "MPLBACKEND=Agg", "HOME=" + dir}
	cmd.ExtraFiles = []*os.File{inR, outW}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer inW.Close()
		for _, e := range execs {
			if err := WriteFrame(inW, e); err != nil {
				return // the runner exited early (sys.exit)
			}
		}
	}()
	var r run
	for {
		m, err := ReadMessage(outR, DefaultMaxFrame)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading runner frames: %v (stderr %q)", err, stderr.String())
		}
		r.msgs = append(r.msgs, m)
	}
	outR.Close()
	wg.Wait()
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	r.exitCode = cmd.ProcessState.ExitCode()
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// runCode runs one piece of code in a fresh runner.
func runCode(t *testing.T, code string) run {
	t.Helper()
	return runFD(t, "", NewExec(code, nil))
}

// runPaths runs the runner in path mode (IN and OUT are files), as the wasm
// backend does.
func runPaths(t *testing.T, execs ...Exec) run {
	t.Helper()
	needPython(t)
	dir := t.TempDir()
	var in bytes.Buffer
	for _, e := range execs {
		if err := WriteFrame(&in, e); err != nil {
			t.Fatal(err)
		}
	}
	inPath := filepath.Join(dir, "in.frames")
	outPath := filepath.Join(dir, "out.frames")
	if err := os.WriteFile(inPath, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	args := Args(python, inPath, outPath)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return finishRun(t, cmd, err, &stdout, &stderr, outPath)
}

// finishRun collects a runner process that has ended (err from Run or
// Wait): its exit code, output, and the frames it wrote to outPath.
func finishRun(t *testing.T, cmd *exec.Cmd, err error, stdout, stderr *bytes.Buffer, outPath string) run {
	t.Helper()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	r := run{exitCode: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	out, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	rd := bytes.NewReader(out)
	for {
		m, err := ReadMessage(rd, DefaultMaxFrame)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", outPath, err)
		}
		r.msgs = append(r.msgs, m)
	}
	return r
}

// pyHas reports whether python can find mod (without importing it: pandas
// and matplotlib take a second to import).
func pyHas(mod string) bool {
	return exec.Command(python, "-I", "-c", "import importlib.util, sys\nsys.exit(importlib.util.find_spec(sys.argv[1]) is None)", mod).Run() == nil
}

// jsonEq reports whether two JSON texts hold the same value.
func jsonEq(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("return_value %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	ga, _ := json.Marshal(a)
	gb, _ := json.Marshal(b)
	return string(ga) == string(gb)
}

func mustPrefix(t *testing.T, s, prefix string) {
	t.Helper()
	if !strings.HasPrefix(s, prefix) {
		t.Errorf("text does not start with %q:\n%s", prefix, s)
	}
}
