package cgroup

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

// threadCgroups returns every thread's /proc/self/task/*/cgroup, sorted.
func threadCgroups(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/cgroup")
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}

// TestPrimeMigrationMovesNothing: priming is a migration to where the
// thread already is: every thread of the process is in the same cgroups
// afterwards, in every hierarchy.
func TestPrimeMigrationMovesNothing(t *testing.T) {
	require.Root(t)
	_, err := Detect()
	require.Feature(t, err == nil, "no cgroups: %v", err)
	before := threadCgroups(t)
	require.NoError(t, PrimeMigration())
	require.NoError(t, PrimeMigration()) // and again, within the fast window
	after := threadCgroups(t)
	// Threads may have come and gone; each one's placement must be one
	// that existed before.
	seen := map[string]bool{}
	for _, c := range before {
		seen[c] = true
	}
	for _, c := range after {
		require.True(t, seen[c], "a thread is in cgroups it was not in before priming:\n%s\nbefore:\n%v", c, before)
	}
}

func TestMountDir(t *testing.T) {
	for _, tc := range []struct {
		root, path string
		want       string
		ok         bool
	}{
		{"/", "/", "/sys/fs/cgroup/pids", true},
		{"/", "/a/b", "/sys/fs/cgroup/pids/a/b", true},
		{"/a", "/a/b", "/sys/fs/cgroup/pids/b", true},
		{"/a", "/a", "/sys/fs/cgroup/pids", true},
		{"/a", "/ab", "", false},
		{"/a", "/b", "", false},
		{"/", "", "", false},
		{"/", "a", "", false},
	} {
		got, ok := mountDir(mount{point: "/sys/fs/cgroup/pids", root: tc.root}, tc.path)
		require.Equal(t, tc.ok, ok, "mountDir(root %q, %q)", tc.root, tc.path)
		if ok {
			require.Equal(t, tc.want, got, "mountDir(root %q, %q)", tc.root, tc.path)
		}
	}
}
