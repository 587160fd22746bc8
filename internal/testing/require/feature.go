package require

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// IsolationEnv is the environment variable that turns missing features into
// test failures when set to "1".
const IsolationEnv = "PYBOX_REQUIRE_ISOLATION"

// PythonPath is where tests expect the host's CPython.
const PythonPath = "/usr/bin/python3"

// Feature skips the test when ok is false, with the reason given by format
// and args. When PYBOX_REQUIRE_ISOLATION=1 it fails the test instead.
func Feature(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	reason := fmt.Sprintf(format, args...)
	if os.Getenv(IsolationEnv) == "1" {
		t.Fatalf("isolation test cannot run: %s (%s=1)", reason, IsolationEnv)
		return
	}
	t.Skipf("skipping: %s", reason)
}

// Root requires an effective uid of 0.
func Root(t testing.TB) {
	t.Helper()
	Feature(t, os.Geteuid() == 0, "needs root (euid is %d)", os.Geteuid())
}

// UserNS requires that this process can create a user namespace: it really
// starts /bin/true in a new one with a uid and gid map.
func UserNS(t testing.TB) {
	t.Helper()
	err := userNSErr()
	Feature(t, err == nil, "cannot create a user namespace: %v", err)
}

// Landlock requires a Landlock ABI of at least minABI.
func Landlock(t testing.TB, minABI int) {
	t.Helper()
	abi := LandlockABI()
	Feature(t, abi >= minABI, "needs Landlock ABI >= %d, host has %d", minABI, abi)
}

// Seccomp requires seccomp filter mode.
func Seccomp(t testing.TB) {
	t.Helper()
	Feature(t, seccompSupported(), "seccomp filter mode is not available")
}

// Python requires the host's CPython and returns its path.
func Python(t testing.TB) string {
	t.Helper()
	fi, err := os.Stat(PythonPath)
	Feature(t, err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0,
		"needs %s", PythonPath)
	return PythonPath
}

// PythonModule requires the host's CPython and a module it can import, such
// as "numpy".
func PythonModule(t testing.TB, module string) {
	t.Helper()
	py := Python(t)
	err := importErr(py, module)
	Feature(t, err == nil, "needs Python module %s: %v", module, err)
}

var modules sync.Map // module name -> func() error

func importErr(py, module string) error {
	f, _ := modules.LoadOrStore(module, sync.OnceValue(func() error {
		out, err := exec.Command(py, "-c", "import "+module).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}))
	return f.(func() error)()
}
