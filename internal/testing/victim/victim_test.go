package victim_test

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
	"github.com/pybox-dev/pybox/internal/testing/victim"
)

// childEnv makes the test binary make the i386 call and print its result.
const childEnv = "PYBOX_VICTIM_I386_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		r, _ := victim.I386Syscall(20) // i386 getpid
		os.Stdout.WriteString(strconv.FormatInt(r, 10) + " " + strconv.Itoa(os.Getpid()) + "\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestI386Syscall: the helper makes the i386 getpid, which returns the
// pid. It runs in a child: where the kernel has no int $0x80 entry (a PVM
// guest) the instruction faults and the Go runtime ends the process. This
// tests a test helper, not the sandbox: where the kernel offers no i386
// syscalls there is nothing for a filter to stop, so it skips.
func TestI386Syscall(t *testing.T) {
	require.Feature(t, runtime.GOARCH == "amd64", "needs amd64")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unexpected fault address") {
		t.Skipf("this kernel has no int $0x80 entry: %.120s", out)
	}
	require.NoError(t, err, "%s", out)
	f := strings.Fields(string(out))
	require.Equal(t, 2, len(f), "output %q", out)
	if f[0] == "-38" { // ENOSYS: the kernel runs without IA32 emulation
		t.Skip("kernel without IA32 emulation")
	}
	require.Equal(t, f[1], f[0], "i386 getpid returned another number than the pid")
}
