package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/runner/codecache"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// backendErr is why the native backend cannot run code here, or "".
var backendErr = sync.OnceValue(func() string {
	o, err := runProbe()
	if err != nil {
		return err.Error()
	}
	return o
})

func runProbe() (string, error) {
	out, err := exec.Command(bin, "run", "--json", "-c", "print(1)").Output()
	var res pybox.Result
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		if err != nil {
			return "", err
		}
		return "", jerr
	}
	if res.Status != pybox.StatusSuccess {
		return res.Status + ": " + res.Error, nil
	}
	return "", nil
}

// needBackend skips (or, with PYBOX_REQUIRE_ISOLATION=1, fails) when the
// default backend cannot run code on this host.
func needBackend(t *testing.T) {
	t.Helper()
	why := backendErr()
	require.Feature(t, why == "", "the native backend cannot run code here: %s", why)
}

func runJSON(t *testing.T, stdin string, args ...string) (outcome, pybox.Result) {
	t.Helper()
	o := runBin(t, stdin, append([]string{"run", "--json"}, args...)...)
	var res pybox.Result
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("stdout is not a Result: %v\n%q (stderr %q)", err, o.stdout, o.stderr)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value: %q", o.stdout)
	}
	return o, res
}

func TestRunPrint(t *testing.T) {
	needBackend(t)
	o := runBin(t, "", "run", "-c", "print(1)")
	if o.code != 0 || o.stdout != "1\n" || o.stderr != "" {
		t.Errorf("run -c 'print(1)': exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
}

func TestRunJSON(t *testing.T) {
	needBackend(t)
	o, res := runJSON(t, "", "-c", "import sys; print(1); print('e', file=sys.stderr)")
	if o.code != 0 || res.Status != pybox.StatusSuccess || res.Stdout != "1\n" || res.Stderr != "e\n" || res.ExitCode != 0 {
		t.Errorf("exit %d, result %+v", o.code, res)
	}
	if o.stderr != "" {
		t.Errorf("--json without --stream wrote to stderr: %q", o.stderr)
	}
	if res.Isolation.Backend != "native" {
		t.Errorf("isolation.backend = %q, want native", res.Isolation.Backend)
	}
}

func TestRunStream(t *testing.T) {
	needBackend(t)
	o, res := runJSON(t, "", "--stream", "-c", "print('live')")
	if res.Stdout != "live\n" || !strings.Contains(o.stderr, "live\n") {
		t.Errorf("--stream: result stdout %q, stderr %q", res.Stdout, o.stderr)
	}
}

func TestRunExitCode(t *testing.T) {
	needBackend(t)
	o := runBin(t, "", "run", "-c", "import sys; print('x'); sys.exit(7)")
	if o.code != 7 || o.stdout != "x\n" {
		t.Errorf("sys.exit(7): exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
	_, res := runJSON(t, "", "-c", "import sys; sys.exit(7)")
	if res.ExitCode != 7 {
		t.Errorf("--json: exit_code %d, want 7", res.ExitCode)
	}
}

func TestRunErrorTraceback(t *testing.T) {
	needBackend(t)
	o := runBin(t, "", "run", "-c", "print('before')\n1/0\n")
	if o.code != 1 {
		t.Errorf("exit %d, want 1", o.code)
	}
	if o.stdout != "before\n" {
		t.Errorf("stdout %q", o.stdout)
	}
	if !strings.Contains(o.stderr, "ZeroDivisionError") || strings.Count(o.stderr, "Traceback") != 1 {
		t.Errorf("stderr should hold the traceback once: %q", o.stderr)
	}
	_, res := runJSON(t, "", "-c", "1/0")
	if res.Status != pybox.StatusRunError || !strings.Contains(res.Error, "ZeroDivisionError") {
		t.Errorf("--json: status %q, error %q", res.Status, res.Error)
	}
}

func TestRunTimeout(t *testing.T) {
	needBackend(t)
	o := runBin(t, "", "run", "--timeout", "1s", "-c", "while True: pass")
	if o.code != 124 {
		t.Errorf("exit %d, want 124 (stderr %q)", o.code, o.stderr)
	}
	oneLine(t, o, "timeout")
	o, res := runJSON(t, "", "--timeout", "0.5", "-c", "while True: pass")
	if o.code != 124 || res.Status != pybox.StatusTimeout {
		t.Errorf("--json: exit %d, status %q", o.code, res.Status)
	}
}

func TestRunLimitsExit137(t *testing.T) {
	needBackend(t)
	o, res := runJSON(t, "", "--output-limit", "1k", "-c", "print('x' * 100000)")
	if o.code != 137 || res.Status != pybox.StatusOutputLimit {
		t.Errorf("output limit: exit %d, status %q", o.code, res.Status)
	}
	o, res = runJSON(t, "", "--memory", "64MiB", "-c", "b = b'x' * (512 << 20)")
	if o.code != 137 || res.Status != pybox.StatusMemoryLimit {
		t.Errorf("memory limit: exit %d, status %q, error %q", o.code, res.Status, res.Error)
	}
}

func TestRunStdinAndFile(t *testing.T) {
	needBackend(t)
	o := runBin(t, "print(6 * 7)\n", "run", "-")
	if o.code != 0 || o.stdout != "42\n" {
		t.Errorf("stdin: exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
	script := filepath.Join(t.TempDir(), "s.py")
	if err := os.WriteFile(script, []byte("print('from file')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Flags may follow the file name.
	o = runBin(t, "", "run", script, "--timeout=10s")
	if o.code != 0 || o.stdout != "from file\n" {
		t.Errorf("file: exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
}

func TestRunEnvGlobals(t *testing.T) {
	needBackend(t)
	o := runBin(t, "", "run", "--env", "GREETING=hi there", "--globals", `{"x": 20, "name": "bob"}`,
		"-c", "import os; print(os.environ['GREETING'], x * 2 + 2, name)")
	if o.code != 0 || o.stdout != "hi there 42 bob\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
}

func TestRunFilesRoundTrip(t *testing.T) {
	needBackend(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "nested")
	code := `
import os
data = open("data/in.csv").read()
os.makedirs("results/deep", exist_ok=True)
open("results/deep/copy.csv", "w").write(data.upper())
open("summary.txt", "w").write(str(len(data)))
print("done")
`
	o, res := runJSON(t, "", "--file", "data/in.csv=@"+in, "--out", out, "-c", code)
	if o.code != 0 || res.Status != pybox.StatusSuccess {
		t.Fatalf("exit %d, result %+v", o.code, res)
	}
	got, err := os.ReadFile(filepath.Join(out, "results", "deep", "copy.csv"))
	if err != nil || string(got) != "A,B\n1,2\n" {
		t.Errorf("copy.csv = %q, %v", got, err)
	}
	got, err = os.ReadFile(filepath.Join(out, "summary.txt"))
	if err != nil || string(got) != "8" {
		t.Errorf("summary.txt = %q, %v", got, err)
	}
	sizes := map[string]int64{}
	for _, f := range res.Files {
		if len(f.Data) != 0 {
			t.Errorf("--json with --out still carries the data of %s", f.Name)
		}
		sizes[f.Name] = f.Size
	}
	if sizes["summary.txt"] != 1 || sizes["results/deep/copy.csv"] != 8 {
		t.Errorf("files in the result: %+v", res.Files)
	}
	if strings.Contains(o.stdout, `"data":`) {
		t.Errorf("--json output holds file data: %s", o.stdout)
	}
}

// writeFiles must never write outside the output directory, whatever the
// names say and whatever symlinks the directory already holds.
func TestWriteFilesStaysInside(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "out")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "target"), filepath.Join(dir, "file-link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		wantErr bool
	}{
		{"ok.txt", false},
		{"sub/dir/ok.txt", false},
		{"../escape.txt", true},
		{"sub/../../escape.txt", true},
		{"/abs.txt", true},
		{"link/through-symlink.txt", true},
		{"file-link", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := writeFiles(dir, []pybox.OutFile{{Name: tt.name, Data: []byte("x")}})
			if (err != nil) != tt.wantErr {
				t.Errorf("writeFiles(%q) = %v, wantErr %v", tt.name, err, tt.wantErr)
			}
		})
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("files were written outside the output directory: %v", entries)
	}
	for _, p := range []string{filepath.Join(base, "escape.txt"), "/abs.txt"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}

func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		status string
		code   int
		want   int
	}{
		{pybox.StatusSuccess, 0, 0},
		{pybox.StatusRunError, 7, 7},
		{pybox.StatusRunError, 1, 1},
		{pybox.StatusRunError, -1, 1},
		{pybox.StatusRunError, 0, 1},
		{pybox.StatusTimeout, -1, 124},
		{pybox.StatusMemoryLimit, -1, 137},
		{pybox.StatusOutputLimit, 0, 137},
		{pybox.StatusKilled, -1, 137},
		{pybox.StatusSandboxError, -1, 125},
		{pybox.StatusInputError, -1, 2},
		{"something-new", 0, 125},
	}
	for _, tt := range tests {
		if got := exitCode(&pybox.Result{Status: tt.status, ExitCode: tt.code}); got != tt.want {
			t.Errorf("exitCode(%s, %d) = %d, want %d", tt.status, tt.code, got, tt.want)
		}
	}
}

// TestEarlyInit: a `pybox run` starts its sandbox's init from a package
// initialiser (internal/spawn/early) and runs the code in it, unless
// PYBOX_EARLY_INIT=0 or the host is cgroup v2 only; with the embedded init
// or (PYBOX_INIT=self, and in a build without one) pybox itself.
func TestEarlyInit(t *testing.T) {
	needBackend(t)
	var st syscall.Statfs_t
	v2only := syscall.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == 0x63677270
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"PYBOX_EARLY_INIT=1", map[bool]string{true: "early=false", false: "early=true"}[v2only]},
		{"PYBOX_EARLY_INIT=0", "early=false"},
		{"PYBOX_INIT=self", map[bool]string{true: "early=false", false: "early=true"}[v2only]},
	} {
		cmd := exec.Command(bin, "run", "-c", "import os; print(os.getppid(), os.getuid())")
		cmd.Env = append(os.Environ(), "PYBOX_TRACE=1", tc.env)
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil || string(out) != "1 1000\n" {
			t.Errorf("%s: %q, %v (stderr %q)", tc.env, out, err, errb.String())
		}
		if !strings.Contains(errb.String(), "pybox trace: "+tc.want+" ") {
			t.Errorf("%s: the trace does not say %s:\n%s", tc.env, tc.want, errb.String())
		}
		if !strings.Contains(errb.String(), "pybox trace:   timeline (µs after pybox's start): init cloned ") {
			t.Errorf("%s: the trace has no timeline:\n%s", tc.env, errb.String())
		}
	}
}

// TestEarlyInitLayout: an early init builds the sandbox's root while its
// config is on its way (initproc's speculate); for a default request it
// goes on to start the interpreter (spawn.Options.Ahead), in the same
// sandbox a late one gets. A run whose config has another layout (another
// disk size) gets its root rebuilt from the config; a user mount keeps
// the root built ahead (its source comes from pybox as a detached copy,
// here from below /tmp, which the root built ahead covers, and below a
// directory only root may search).
// The code comes on stdin, 300 ms late: pybox sends no config before it
// has the request, so the init has built all it can ahead by then.
func TestEarlyInitLayout(t *testing.T) {
	needBackend(t)
	var st syscall.Statfs_t
	v2only := syscall.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == 0x63677270
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	const code = "import os\nv = os.statvfs('/work')\n" +
		"print(v.f_blocks * v.f_frsize, open('/data/f').read() if os.path.exists('/data') else '-')\n" +
		"st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n" +
		"print(os.getuid(), os.getppid(), os.getcwd(), st['Seccomp'], st['NoNewPrivs'], st['CapEff'], st['CapBnd'])\n" +
		"try:\n    open('/usr/x', 'w')\nexcept OSError as e:\n    print(e.errno)\n" +
		"try:\n    open('/work/x', 'w').write('x'); print('work ok')\nexcept OSError as e:\n    print(e)\n"
	const sandboxed = "1000 1 /work 2 1 0000000000000000 0000000000000000\n30\nwork ok\n"
	for _, tc := range []struct {
		args    []string
		want    string
		outcome string
	}{
		{nil, "67108864 -\n" + sandboxed, "interpreter"},
		{[]string{"--mount", data + ":/data:ro"}, "67108864 from the host\n" + sandboxed, "kept"},
		{[]string{"--disk", "100MiB"}, "104857600 -\n" + sandboxed, "undone"},
	} {
		cmd := exec.Command(bin, append(append([]string{"run"}, tc.args...), "-")...)
		cmd.Env = append(os.Environ(), "PYBOX_TRACE=1")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb strings.Builder
		cmd.Stderr = &errb
		go func() {
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(stdin, code)
			stdin.Close()
		}()
		out, err := cmd.Output()
		if err != nil || string(out) != tc.want {
			t.Errorf("%q: %q, %v, want %q (stderr %q)", tc.args, out, err, tc.want, errb.String())
			continue
		}
		if !v2only && !strings.Contains(errb.String(), " layout="+tc.outcome+" ") {
			t.Errorf("%q: the trace does not say layout=%s:\n%s", tc.args, tc.outcome, errb.String())
		}
	}
}

// TestEarlyInitAheadNotTaken: an early init started ahead whose assumed
// config is not the run's (here the runner as source, PYBOX_RUNNER_CODE=0,
// not its compiled code: other interpreter arguments) is not taken: it
// may already run an interpreter for another config. A new init runs the
// code.
func TestEarlyInitAheadNotTaken(t *testing.T) {
	needBackend(t)
	var st syscall.Statfs_t
	v2only := syscall.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == 0x63677270
	cmd := exec.Command(bin, "run", "-c", "import os; print(os.getuid(), os.getppid())")
	cmd.Env = append(os.Environ(), "PYBOX_TRACE=1", "PYBOX_RUNNER_CODE=0")
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil || string(out) != "1000 1\n" {
		t.Fatalf("%q, %v (stderr %q)", out, err, errb.String())
	}
	if !v2only && (!strings.Contains(errb.String(), "early init not taken") || !strings.Contains(errb.String(), "pybox trace: early=false ")) {
		t.Errorf("the early init was taken:\n%s", errb.String())
	}
}

// TestEarlyInitRunnerCode: once the compiled runner is cached (and named
// by the cache's ahead index, which the second run writes), pybox run's
// early start puts it on the input of the interpreter started ahead
// (codecache.PreSend), and the backend does not send it again. An index
// that names other code (here a file under another key) gets the early
// init discarded: a new one runs the code.
func TestEarlyInitRunnerCode(t *testing.T) {
	needBackend(t)
	var st syscall.Statfs_t
	if syscall.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == 0x63677270 {
		t.Skip("no early init on a cgroup v2-only host")
	}
	cache := t.TempDir()
	// The init is executed from the cache by an unprivileged host uid.
	for _, d := range []string{filepath.Dir(cache), cache} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// run runs code in a sandbox and returns pybox's trace.
	run := func() string {
		t.Helper()
		cmd := exec.Command(bin, "run", "-c", "import os; print(os.getuid(), os.getppid())")
		cmd.Env = append(os.Environ(), "PYBOX_TRACE=1", "PYBOX_CACHE_DIR="+cache)
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil || string(out) != "1000 1\n" {
			t.Fatalf("%q, %v (stderr %q)", out, err, errb.String())
		}
		return errb.String()
	}
	const sent = "early init got the runner code from the early start"
	for range 2 { // installs the init and compiles the runner; indexes it
		if trace := run(); strings.Contains(trace, sent) {
			t.Fatalf("code sent early before it was indexed:\n%s", trace)
		}
	}
	if trace := run(); !strings.Contains(trace, sent) || !strings.Contains(trace, "pybox trace: early=true ") {
		t.Fatalf("the runner code was not sent early:\n%s", trace)
	}

	idx := codecache.IndexPath(codecache.Dir(cache))
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	exe, interp, interpID, key, ok := codecache.ParseIndex(b)
	if !ok {
		t.Fatalf("index %q", b)
	}
	code, err := os.ReadFile(codecache.CodePath(codecache.Dir(cache), key))
	if err != nil {
		t.Fatal(err)
	}
	// Other code under another key: valid for PreSend, not the run's.
	other := append([]byte(nil), code...)
	other[len(other)-1] ^= 1
	if err := os.WriteFile(codecache.CodePath(codecache.Dir(cache), "0e0e"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(idx, codecache.Index(exe, interp, interpID, "0e0e"), 0o600); err != nil {
		t.Fatal(err)
	}
	if trace := run(); !strings.Contains(trace, "early init not taken: it got other runner code") || !strings.Contains(trace, "pybox trace: early=false ") {
		t.Errorf("an early init that got other code was taken:\n%s", trace)
	}
}

// TestMountBelowRootOnlyDir: a mount source below a directory only root
// may search, which the sandbox's init (an unprivileged host uid) cannot
// reach, is mounted from the detached copy pybox makes (open_tree), with
// and without an early init; read-only unless asked.
func TestMountBelowRootOnlyDir(t *testing.T) {
	needBackend(t)
	data := t.TempDir() // its parent is 0700
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	const code = "import os\nprint(open('/data/f').read())\n" +
		"try:\n    open('/data/g', 'w')\nexcept OSError as e:\n    print(e.errno)\n"
	for _, env := range []string{"PYBOX_EARLY_INIT=1", "PYBOX_EARLY_INIT=0"} {
		cmd := exec.Command(bin, "run", "--mount", data+":/data", "-c", code)
		cmd.Env = append(os.Environ(), env)
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil || string(out) != "from the host\n30\n" {
			t.Errorf("%s: %q, %v, stderr %q", env, out, err, errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(data, "g")); !os.IsNotExist(err) {
		t.Errorf("the read-only mount was written to: %v", err)
	}
}

// TestEarlyInitUnused: an early init that pybox does not use (the request
// is refused) does not outlive pybox.
func TestEarlyInitUnused(t *testing.T) {
	needBackend(t)
	for range 5 {
		o := runBin(t, "", "run", "--memory", "lots", "-c", "print(1)")
		if o.code != exitUsage {
			t.Fatalf("bad --memory: exit %d (%q)", o.code, o.stderr)
		}
	}
	// Orphaned inits: pybox's die with it (parent-death signal, and end of
	// file on their control socket); the native backend's tests' inits
	// have a live parent.
	var left []string
	for range 50 {
		left = orphanInits(t)
		if len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("sandbox inits left without their pybox: %q", left)
}

func orphanInits(t *testing.T) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		s := string(b)
		if strings.HasPrefix(s, "Name:\tpybox-init-") && strings.Contains(s, "\nPPid:\t1\n") {
			left = append(left, e.Name())
		}
	}
	return left
}

// TestNotRoot: run by an unprivileged user, `pybox run` on the native
// backend fails with a one-line error that says root is needed, and
// `pybox doctor` says the same of the userns check.
func TestNotRoot(t *testing.T) {
	require.Root(t)
	dir, err := os.MkdirTemp("", "pybox-notroot-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	exe := filepath.Join(dir, "pybox")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	as := func(args ...string) (string, int) {
		cmd := exec.Command(exe, args...)
		cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := as("run", "--best-effort", "-c", "print(1)")
	if code != exitSandbox || !strings.Contains(out, "needs root") || strings.Count(out, "\n") != 1 || strings.Contains(out, "panic") {
		t.Errorf("pybox run as nobody: exit %d, %q", code, out)
	}
	out, _ = as("doctor")
	if !strings.Contains(out, "userns") || !strings.Contains(out, "run pybox as root") {
		t.Errorf("pybox doctor as nobody does not say root is needed:\n%s", out)
	}
}

// TestSignalCancelsRun: SIGINT or SIGTERM during `pybox run` kills the run
// (exit 137, status killed with --json), leaves no sandbox init behind,
// and a second signal is not needed.
func TestSignalCancelsRun(t *testing.T) {
	needBackend(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := exec.Command(bin, "run", "--json", "--stream", "-c", "import time\nprint('started', flush=True)\ntime.sleep(30)")
		var out strings.Builder
		cmd.Stdout = &out
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		var seen string
		for !strings.Contains(seen, "started") {
			n, err := stderr.Read(buf)
			if err != nil {
				t.Fatalf("%v: the code never started: %q", sig, seen)
			}
			seen += string(buf[:n])
		}
		cmd.Process.Signal(sig)
		go io.Copy(io.Discard, stderr)
		err = cmd.Wait()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != exitKilled {
			t.Errorf("%v: exit %v, want %d", sig, err, exitKilled)
		}
		if time.Since(start) > 20*time.Second {
			t.Errorf("%v: pybox took %v to end", sig, time.Since(start))
		}
		var res pybox.Result
		if err := json.Unmarshal([]byte(out.String()), &res); err != nil || res.Status != pybox.StatusKilled {
			t.Errorf("%v: result %q (%v), want status killed", sig, out.String(), err)
		}
	}
	for range 50 {
		if len(orphanInits(t)) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("sandbox inits left without their pybox: %q", orphanInits(t))
}
