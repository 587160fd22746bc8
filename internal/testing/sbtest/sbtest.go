// Package sbtest runs irreversible restrictions (seccomp, Landlock, setuid)
// in a subprocess, so that they never poison the `go test` process itself.
// It follows go-landlock's lltest.
//
// # Usage
//
//	func TestDeny(t *testing.T) {
//		sbtest.RunInSubprocess(t, func() {
//			_, err := seccomp.Install(seccomp.Options{})
//			require.NoError(t, err)
//			// ... assert denials with the real kernel ...
//		})
//	}
//
// The parent re-executes the test binary with -test.run matching exactly
// this test and an environment marker naming it. In the child, the same test
// function runs again, RunInSubprocess sees the marker and calls fn with the
// child's own t, so t.Fatal, t.Error and t.Skip work as usual there. The
// parent then fails with the child's output if the child failed, and skips
// if the child skipped.
package sbtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Env is the environment variable that marks a subprocess; its value is the
// full name of the test the subprocess runs.
const Env = "PYBOX_SBTEST_SUBPROCESS"

// InSubprocess reports whether this process is a sbtest subprocess.
func InSubprocess() bool {
	return os.Getenv(Env) != ""
}

// RunInSubprocess runs fn in a fresh copy of the test binary that runs only
// t. Everything fn does to its process (seccomp, Landlock, credentials, rlimits)
// stays in that copy.
//
// Preconditions:
//   - t is the test (or subtest) that calls RunInSubprocess, and it calls
//     RunInSubprocess once, before any other side effects that the child
//     should not repeat.
func RunInSubprocess(t *testing.T, fn func()) {
	t.Helper()
	if os.Getenv(Env) == t.Name() {
		fn()
		return
	}

	args := []string{
		"-test.run=" + runPattern(t.Name()),
		"-test.v=true",
		"-test.count=1",
	}
	cmd := exec.Command(os.Args[0], args...)
	// The child's own TempDir cleanup may be impossible under its
	// restrictions; [TempDir] puts its directories here and the parent
	// removes them.
	cmd.Env = append(os.Environ(), Env+"="+t.Name(), "TMPDIR="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()

	var exitErr *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exitErr):
		t.Fatalf("cannot start the test subprocess: %v", err)
	case err != nil:
		t.Fatalf("test failed in subprocess (%v):\n%s", err, indent(out.String()))
	case !strings.Contains(out.String(), "--- PASS: "+t.Name()+" ") &&
		!strings.Contains(out.String(), "--- SKIP: "+t.Name()+" "):
		t.Fatalf("test subprocess did not run %s:\n%s", t.Name(), indent(out.String()))
	case strings.Contains(out.String(), "--- SKIP: "+t.Name()+" "):
		t.Skipf("skipped in subprocess:\n%s", indent(out.String()))
	case testing.Verbose():
		t.Logf("subprocess output:\n%s", indent(out.String()))
	}
}

// TempDir is like t.TempDir, but inside a subprocess it makes a directory
// that the parent test removes, since the child may lack the rights to.
func TempDir(t testing.TB) string {
	t.Helper()
	if !InSubprocess() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "sbtest")
	if err != nil {
		t.Fatalf("cannot make a temporary directory: %v", err)
	}
	return dir
}

// runPattern matches exactly the test named name, subtests included: the
// -test.run pattern has one anchored element per level.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}
