package victim_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
	"github.com/pybox-dev/pybox/internal/testing/victim"
)

func TestI386Syscall(t *testing.T) {
	require.Feature(t, runtime.GOARCH == "amd64", "needs amd64")
	r, err := victim.I386Syscall(20) // i386 getpid
	require.NoError(t, err)
	if r == -38 { // ENOSYS: the kernel runs without IA32 emulation
		require.Feature(t, false, "kernel without IA32 emulation")
	}
	require.Equal(t, int64(os.Getpid()), r)
}
