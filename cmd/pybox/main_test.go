package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/initbin/stamp"
)

// bin is the pybox binary built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pybox-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "pybox")
	// With the embedded init's stamp when this test binary has it (make
	// test), so that the binary runs its sandboxes as a make-built one.
	args := []string{"build", "-o", bin}
	if stamp.Value != "" {
		args = append(args, "-ldflags", "-X github.com/pybox-dev/pybox/internal/initbin/stamp.Value="+stamp.Value)
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type outcome struct {
	code   int
	stdout string
	stderr string
}

// runBin runs the binary with args and stdin.
func runBin(t *testing.T, stdin string, args ...string) outcome {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	o := outcome{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		o.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("pybox %q: %v", args, err)
	}
	return o
}

// oneLine fails the test unless stderr is a single "pybox: ..." line
// mentioning want, with no trace of a panic.
func oneLine(t *testing.T, o outcome, want string) {
	t.Helper()
	s := o.stderr
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || !strings.HasPrefix(s, "pybox: ") {
		t.Errorf("stderr is not one \"pybox: \" line: %q", s)
	}
	if !strings.Contains(s, want) {
		t.Errorf("stderr %q does not mention %q", s, want)
	}
	for _, bad := range []string{"goroutine ", "panic:", "Usage:", "flag.(*FlagSet)"} {
		if strings.Contains(s, bad) {
			t.Errorf("stderr contains %q: %q", bad, s)
		}
	}
}

func TestTopLevel(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		o := runBin(t, "", args...)
		if o.code != 0 || o.stderr != "" {
			t.Errorf("%q: exit %d, stderr %q", args, o.code, o.stderr)
		}
		for _, want := range []string{"doctor", "help", "run", "version"} {
			if !strings.Contains(o.stdout, "\n  "+want+" ") {
				t.Errorf("%q: usage does not list %q:\n%s", args, want, o.stdout)
			}
		}
		if strings.Index(o.stdout, "  doctor") > strings.Index(o.stdout, "  run") {
			t.Errorf("%q: commands are not sorted:\n%s", args, o.stdout)
		}
	}

	o := runBin(t, "")
	if o.code != 2 || !strings.Contains(o.stderr, "Commands:") || o.stdout != "" {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q; want usage on stderr, exit 2", o.code, o.stdout, o.stderr)
	}

	o = runBin(t, "", "frobnicate")
	if o.code != 2 {
		t.Errorf("unknown command: exit %d, want 2", o.code)
	}
	oneLine(t, o, `unknown command "frobnicate"`)

	o = runBin(t, "", "version")
	if o.code != 0 || !strings.HasPrefix(o.stdout, "pybox ") || !strings.Contains(o.stdout, runtime.Version()) {
		t.Errorf("version: exit %d, stdout %q", o.code, o.stdout)
	}

	o = runBin(t, "", "help", "run")
	if o.code != 0 || !strings.Contains(o.stdout, "--timeout") {
		t.Errorf("help run: exit %d, stdout %q", o.code, o.stdout)
	}
}

func TestRunHelp(t *testing.T) {
	for _, args := range [][]string{{"run", "--help"}, {"run", "-h"}, {"run", "--timeout", "5s", "--help"}} {
		o := runBin(t, "", args...)
		if o.code != 0 || o.stderr != "" {
			t.Fatalf("%q: exit %d, stderr %q", args, o.code, o.stderr)
		}
		for _, want := range []string{
			"--backend NAME", "(default native)",
			"--timeout LIMIT", "(default 30s)",
			"--memory SIZE", "(default 512MiB)",
			"--pids N", "(default 64)",
			"--cpus CORES",
			"--output-limit SIZE", "(default 1MiB)",
			"--disk SIZE", "(default 64MiB)",
			"--net MODE", "(default none)",
			"--mount HOST:GUEST[:ro|rw]",
			"--file NAME=@HOSTPATH",
			"--out DIR",
			"--env K=V",
			"--python PATH", "(default /usr/bin/python3)",
			"--globals JSON",
			"--best-effort",
			"--stream",
			"--json",
			"-c CODE",
		} {
			if !strings.Contains(o.stdout, want) {
				t.Errorf("%q: help lacks %q", args, want)
			}
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s.py")
	if err := os.WriteFile(script, []byte("print(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus", "-c", "1"}, "unknown flag --bogus"},
		{"flag without value", []string{"-c", "1", "--timeout"}, "--timeout"},
		{"negative timeout", []string{"--timeout", "-1s", "-c", "1"}, "negative"},
		{"negative timeout seconds", []string{"--timeout=-2", "-c", "1"}, "negative"},
		{"zero timeout", []string{"--timeout", "0", "-c", "1"}, "--timeout must be greater than zero"},
		{"bad timeout", []string{"--timeout", "soon", "-c", "1"}, "invalid duration"},
		{"huge timeout", []string{"--timeout", "1000h", "-c", "1"}, "timeout"},
		{"bad memory", []string{"--memory", "lots", "-c", "1"}, "invalid size"},
		{"zero memory", []string{"--memory=0", "-c", "1"}, "--memory must be greater than zero"},
		{"tiny memory", []string{"--memory", "1k", "-c", "1"}, "memory"},
		{"negative memory", []string{"--memory", "-5m", "-c", "1"}, "negative"},
		{"zero pids", []string{"--pids", "0", "-c", "1"}, "--pids must be greater than zero"},
		{"negative pids", []string{"--pids", "-3", "-c", "1"}, "negative"},
		{"bad pids", []string{"--pids", "many", "-c", "1"}, "not a whole number"},
		{"bad cpus", []string{"--cpus", "two", "-c", "1"}, "not a number"},
		{"negative cpus", []string{"--cpus", "-1", "-c", "1"}, "cpus"},
		{"zero output limit", []string{"--output-limit", "0", "-c", "1"}, "--output-limit must be greater than zero"},
		{"bad output limit", []string{"--output-limit", "1x", "-c", "1"}, "invalid size"},
		{"zero disk", []string{"--disk", "0", "-c", "1"}, "--disk must be greater than zero"},
		{"bad disk", []string{"--disk", "big", "-c", "1"}, "invalid size"},
		{"unknown backend", []string{"--backend", "docker", "-c", "1"}, "unknown backend"},
		{"unknown net", []string{"--net", "host", "-c", "1"}, "network mode"},
		{"mount without guest", []string{"--mount", dir, "-c", "1"}, "HOST:GUEST"},
		{"mount bad mode", []string{"--mount", dir + ":/data:rx", "-c", "1"}, "ro or rw"},
		{"mount missing host", []string{"--mount", filepath.Join(dir, "nope") + ":/data", "-c", "1"}, "no such file"},
		{"mount relative guest", []string{"--mount", dir + ":data", "-c", "1"}, "guest path"},
		{"mount over /proc", []string{"--mount", dir + ":/proc", "-c", "1"}, "/proc"},
		{"file without @", []string{"--file", "a.txt=" + script, "-c", "1"}, "NAME=@HOSTPATH"},
		{"file without name", []string{"--file", "=@" + script, "-c", "1"}, "NAME=@HOSTPATH"},
		{"file missing", []string{"--file", "a.txt=@" + filepath.Join(dir, "nope"), "-c", "1"}, "no such file"},
		{"file is a directory", []string{"--file", "a.txt=@" + dir, "-c", "1"}, "is a directory"},
		{"file name climbs", []string{"--file", "../a.txt=@" + script, "-c", "1"}, "climbs out"},
		{"file name absolute", []string{"--file", "/etc/a=@" + script, "-c", "1"}, "relative"},
		{"file twice", []string{"--file", "a=@" + script, "--file", "a=@" + script, "-c", "1"}, "twice"},
		{"env without =", []string{"--env", "FOO", "-c", "1"}, "K=V"},
		{"env empty key", []string{"--env", "=x", "-c", "1"}, "K=V"},
		{"globals not JSON", []string{"--globals", "{x", "-c", "1"}, "--globals"},
		{"globals not object", []string{"--globals", "[1]", "-c", "1"}, "--globals"},
		{"globals bad key", []string{"--globals", `{"not valid": 1}`, "-c", "1"}, "identifier"},
		{"relative python", []string{"--python", "python3", "-c", "1"}, "python"},
		{"empty python", []string{"--python", "", "-c", "1"}, "--python"},
		{"empty out", []string{"--out=", "-c", "1"}, "--out"},
		{"code and file", []string{"-c", "1", script}, "not both"},
		{"code and stdin", []string{"-c", "1", "-"}, "not both"},
		{"two files", []string{script, script}, "too many arguments"},
		{"no code", []string{"--timeout", "5s"}, "no code"},
		{"missing file", []string{filepath.Join(dir, "missing.py")}, "no such file"},
		{"directory as file", []string{dir}, "is a directory"},
		{"bad json bool", []string{"--json=maybe", "-c", "1"}, "--json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := runBin(t, "", append([]string{"run"}, tt.args...)...)
			if o.code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", o.code, o.stderr)
			}
			if o.stdout != "" {
				t.Errorf("stdout %q, want nothing", o.stdout)
			}
			oneLine(t, o, tt.want)
		})
	}
}

// With --json, usage errors still print exactly one Result object.
func TestRunUsageErrorsJSON(t *testing.T) {
	for _, args := range [][]string{
		{"--json", "--pids", "0", "-c", "1"},
		{"--json", "--bogus"},
		{"--bogus", "--json"},
		{"--json"},
		{"--json", "--backend", "docker", "-c", "1"},
		{"--json", "--file", "../x=@/etc/hostname", "-c", "1"},
	} {
		o := runBin(t, "", append([]string{"run"}, args...)...)
		if o.code != 2 {
			t.Errorf("%q: exit %d, want 2", args, o.code)
		}
		res := decodeOne(t, o.stdout)
		if res["status"] != "input-error" || res["error"] == "" {
			t.Errorf("%q: result %v, want status input-error with an error", args, res)
		}
		oneLine(t, o, "")
	}
}

// decodeOne decodes stdout as exactly one JSON object.
func decodeOne(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%q", err, s)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value: %q", s)
	}
	return m
}

func TestDoctor(t *testing.T) {
	o := runBin(t, "", "doctor", "--json")
	if o.code != 0 && o.code != 1 {
		t.Fatalf("doctor --json: exit %d, stderr %q", o.code, o.stderr)
	}
	var r struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name     string `json:"name"`
			OK       bool   `json:"ok"`
			Required bool   `json:"required"`
			Detail   string `json:"detail"`
			Fix      string `json:"fix"`
		} `json:"checks"`
		LandlockABI int `json:"landlock_abi"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &r); err != nil {
		t.Fatalf("doctor --json is not JSON: %v\n%s", err, o.stdout)
	}
	if (o.code == 0) != r.OK {
		t.Errorf("exit %d but ok=%v", o.code, r.OK)
	}
	names := map[string]bool{}
	for _, c := range r.Checks {
		names[c.Name] = true
	}
	for _, want := range []string{"userns", "seccomp", "landlock", "cgroup", "migrations", "python", "numpy", "pandas", "matplotlib", "runsc", "kvm"} {
		if !names[want] {
			t.Errorf("doctor --json lacks check %q", want)
		}
	}

	text := runBin(t, "", "doctor")
	if text.code != o.code {
		t.Errorf("doctor exits %d, doctor --json exits %d", text.code, o.code)
	}
	for _, c := range r.Checks {
		state := "ok"
		if !c.OK {
			state = "missing"
		}
		found := false
		for _, line := range strings.Split(text.stdout, "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == state && f[1] == c.Name {
				found = true
			}
		}
		if !found {
			t.Errorf("doctor output has no %q line for %s:\n%s", state, c.Name, text.stdout)
		}
		if !c.OK && !strings.Contains(text.stdout, "fix: "+c.Fix) {
			t.Errorf("doctor output lacks the fix for %s:\n%s", c.Name, text.stdout)
		}
	}

	bad := runBin(t, "", "doctor", "--bogus")
	if bad.code != 2 {
		t.Errorf("doctor --bogus: exit %d, want 2", bad.code)
	}
	oneLine(t, bad, "--bogus")
}
