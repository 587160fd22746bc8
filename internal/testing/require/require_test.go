package require_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

// mockT records failures and skips instead of stopping the test.
type mockT struct {
	testing.TB
	failed, skipped string
}

func (m *mockT) Helper()                           {}
func (m *mockT) Fatal(args ...any)                 { m.failed = sprint(args...) }
func (m *mockT) Fatalf(format string, args ...any) { m.failed = sprintf(format, args...) }
func (m *mockT) Skipf(format string, args ...any)  { m.skipped = sprintf(format, args...) }

func TestAssertions(t *testing.T) {
	errBase := errors.New("base")
	tests := []struct {
		name    string
		check   func(t testing.TB)
		wantErr string
	}{
		{name: "Equal ok", check: func(t testing.TB) { require.Equal(t, []int{1}, []int{1}) }},
		{name: "Equal bytes", check: func(t testing.TB) { require.Equal(t, []byte("a"), []byte("a")) }},
		{name: "Equal fails", check: func(t testing.TB) { require.Equal(t, 1, 2, "n=%d", 3) },
			wantErr: "n=3: expected 1, but was 2"},
		{name: "NoError fails", check: func(t testing.TB) { require.NoError(t, errBase) },
			wantErr: "expected no error, but was base"},
		{name: "Error fails", check: func(t testing.TB) { require.Error(t, nil) },
			wantErr: "expected an error, but was nil"},
		{name: "ErrorIs ok", check: func(t testing.TB) {
			require.ErrorIs(t, &fs.PathError{Op: "open", Err: fs.ErrNotExist}, fs.ErrNotExist)
		}},
		{name: "ErrorIs fails", check: func(t testing.TB) { require.ErrorIs(t, errBase, fs.ErrNotExist) },
			wantErr: "expected errors.Is(base, file does not exist), but it wasn't"},
		{name: "EqualError fails", check: func(t testing.TB) { require.EqualError(t, errBase, "other") },
			wantErr: `expected error "other", but was "base"`},
		{name: "Contains fails", check: func(t testing.TB) { require.Contains(t, "abc", "x", "ctx") },
			wantErr: `ctx: expected "abc" to contain "x"`},
		{name: "True fails", check: func(t testing.TB) { require.True(t, false) },
			wantErr: "expected true, but was false"},
		{name: "False fails", check: func(t testing.TB) { require.False(t, true) },
			wantErr: "expected false, but was true"},
		{name: "Nil typed nil", check: func(t testing.TB) { require.Nil(t, (*int)(nil)) }},
		{name: "Len fails", check: func(t testing.TB) { require.Len(t, "ab", 3) },
			wantErr: `expected length 3, but was 2: "ab"`},
		{name: "Zero ok", check: func(t testing.TB) { require.Zero(t, struct{ A int }{}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &mockT{}
			tc.check(m)
			if m.failed != tc.wantErr {
				t.Fatalf("failure %q, want %q", m.failed, tc.wantErr)
			}
		})
	}
}

func TestFeature(t *testing.T) {
	t.Setenv(require.IsolationEnv, "")
	m := &mockT{}
	require.Feature(m, true, "x")
	if m.failed != "" || m.skipped != "" {
		t.Fatalf("ok feature stopped the test: %+v", m)
	}
	require.Feature(m, false, "needs %s", "thing")
	if m.skipped != "skipping: needs thing" || m.failed != "" {
		t.Fatalf("missing feature: %+v, want a skip", m)
	}

	t.Setenv(require.IsolationEnv, "1")
	m = &mockT{}
	require.Feature(m, false, "needs %s", "thing")
	want := "isolation test cannot run: needs thing (PYBOX_REQUIRE_ISOLATION=1)"
	if m.failed != want || m.skipped != "" {
		t.Fatalf("missing feature under %s=1: %+v, want failure %q", require.IsolationEnv, m, want)
	}
}

// TestFeature_realTest proves with a real test binary run that a missing
// feature skips normally and fails under PYBOX_REQUIRE_ISOLATION=1.
func TestFeature_realTest(t *testing.T) {
	if os.Getenv("PYBOX_REQUIRE_SELFTEST") != "" {
		require.Feature(t, false, "a feature this host lacks")
		return
	}
	for _, tc := range []struct {
		env     string
		wantErr bool
		want    string
	}{
		{env: "0", want: "--- SKIP: TestFeature_realTest"},
		{env: "1", wantErr: true, want: "isolation test cannot run: a feature this host lacks (PYBOX_REQUIRE_ISOLATION=1)"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFeature_realTest$", "-test.v")
		cmd.Env = append(os.Environ(), "PYBOX_REQUIRE_SELFTEST=1", require.IsolationEnv+"="+tc.env)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s=%s: err %v, wantErr %v\n%s", require.IsolationEnv, tc.env, err, tc.wantErr, out)
		}
		require.Contains(t, string(out), tc.want)
	}
}

func TestGates(t *testing.T) {
	// The gates must not fail on this host unless isolation is required:
	// each either passes or skips.
	t.Run("Root", func(t *testing.T) { require.Root(t) })
	t.Run("UserNS", func(t *testing.T) { require.UserNS(t) })
	t.Run("Landlock", func(t *testing.T) { require.Landlock(t, 1) })
	t.Run("Seccomp", func(t *testing.T) { require.Seccomp(t) })
	t.Run("Python", func(t *testing.T) { require.Equal(t, require.PythonPath, require.Python(t)) })
	t.Run("PythonModule", func(t *testing.T) { require.PythonModule(t, "json") })
	t.Run("PythonModule missing", func(t *testing.T) {
		t.Setenv(require.IsolationEnv, "")
		m := &mockT{}
		require.PythonModule(m, "no_such_module_pybox")
		require.Contains(t, m.skipped+m.failed, "needs Python module no_such_module_pybox")
	})
}
