package sbtest_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
	"github.com/pybox-dev/pybox/internal/testing/sbtest"
)

func TestRunInSubprocess(t *testing.T) {
	ran := false
	sbtest.RunInSubprocess(t, func() {
		ran = true
		require.True(t, sbtest.InSubprocess())
		require.Equal(t, t.Name(), os.Getenv(sbtest.Env))
		dir := sbtest.TempDir(t)
		require.NoError(t, os.WriteFile(dir+"/f", []byte("x"), 0o600))
	})
	if !sbtest.InSubprocess() {
		require.False(t, ran, "fn must not run in the parent")
	}
}

func TestRunInSubprocess_subtest(t *testing.T) {
	t.Run("a b/c", func(t *testing.T) {
		sbtest.RunInSubprocess(t, func() {
			require.Equal(t, t.Name(), os.Getenv(sbtest.Env))
		})
	})
}

// selfTestEnv makes the helper tests below act; without it they skip.
const selfTestEnv = "PYBOX_SBTEST_SELFTEST"

func TestRunInSubprocess_propagates(t *testing.T) {
	if sbtest.InSubprocess() || os.Getenv(selfTestEnv) != "" {
		t.Skip("meta test")
	}
	tests := []struct {
		name     string
		run      string
		wantErr  bool
		wantText string
	}{
		{name: "failure", run: "^TestHelperFails$", wantErr: true, wantText: "boom from child"},
		{name: "skip", run: "^TestHelperSkips$", wantText: "--- SKIP: TestHelperSkips"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run="+tc.run, "-test.v")
			cmd.Env = append(os.Environ(), selfTestEnv+"=1")
			out, err := cmd.CombinedOutput()
			if tc.wantErr {
				require.Error(t, err, string(out))
				require.Contains(t, string(out), "test failed in subprocess")
			} else {
				require.NoError(t, err, string(out))
			}
			require.Contains(t, string(out), tc.wantText)
		})
	}
}

func TestHelperFails(t *testing.T) {
	if os.Getenv(selfTestEnv) == "" {
		t.Skip("helper for TestRunInSubprocess_propagates")
	}
	sbtest.RunInSubprocess(t, func() {
		t.Error("boom from child")
	})
}

func TestHelperSkips(t *testing.T) {
	if os.Getenv(selfTestEnv) == "" {
		t.Skip("helper for TestRunInSubprocess_propagates")
	}
	sbtest.RunInSubprocess(t, func() {
		t.Skip("skip from child")
	})
}
