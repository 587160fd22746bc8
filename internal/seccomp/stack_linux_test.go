package seccomp

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/landlock"
	"github.com/pybox-dev/pybox/internal/testing/require"
	"github.com/pybox-dev/pybox/internal/testing/sbtest"
)

// TestInstall_pythonStack applies the layers in the sandbox init's order
// (no_new_privs, Landlock, seccomp last) and runs the scientific stack:
// numpy writing a file. (pandas and matplotlib work too, checked by hand;
// they take seconds to import, and matplotlib to build its font cache.)
func TestInstall_pythonStack(t *testing.T) {
	require.Seccomp(t)
	require.Landlock(t, landlock.MinABIScope)
	py := require.Python(t)
	require.PythonModule(t, "numpy")
	script := `
import os, numpy as np
y = np.arange(5) ** 2
np.savetxt(os.path.join(os.environ["WORK"], "out.csv"), y)
print(int(y.sum()))
`
	sbtest.RunInSubprocess(t, func() {
		work := sbtest.TempDir(t)
		_, err := landlock.Restrict(landlock.Config{
			RO:      []string{"/usr", "/etc"},
			RW:      []string{work},
			RWFiles: []string{"/dev/null"},
			DenyNet: true,
			Scope:   true,
		})
		require.NoError(t, err)
		install(t)

		cmd := exec.Command(py, "-c", script)
		cmd.Env = []string{"WORK=" + work, "HOME=" + work}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		require.Equal(t, "30", strings.TrimSpace(string(out)))
		fi, err := os.Stat(filepath.Join(work, "out.csv"))
		require.NoError(t, err)
		require.True(t, fi.Size() > 0)
	})
}
