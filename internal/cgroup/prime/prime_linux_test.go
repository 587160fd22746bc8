package prime

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

// TestMigrationMovesNothing: priming is a migration to where the thread
// already is: every thread of the process is in the same cgroups
// afterwards, in every hierarchy. On a host with a v1 hierarchy the write
// really happens (a wrong directory or tid would fail it).
func TestMigrationMovesNothing(t *testing.T) {
	require.Root(t)
	mi, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	_, _, _, v1 := v1Mount(string(mi))
	_, v2err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	require.Feature(t, v1 || v2err == nil, "no cgroup hierarchy")
	before := threadCgroups(t)
	require.NoError(t, Migration())
	require.NoError(t, Migration()) // and again, within the fast window
	require.True(t, Since() < 10e9, "Since after Migration: %v", Since())
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

const hybrid = `24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 24 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
28 27 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
31 27 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
32 27 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
33 27 0:30 /sub /sys/fs/cgroup/my\040pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
`

func TestV1Mount(t *testing.T) {
	ctrl, root, point, ok := v1Mount(hybrid)
	require.True(t, ok, "no v1 mount found")
	require.Equal(t, "pids", ctrl)
	require.Equal(t, "/sub", root)
	require.Equal(t, "/sys/fs/cgroup/my pids", point)

	noPids := hybrid[:len(hybrid)-len("33 27 0:30 /sub /sys/fs/cgroup/my\\040pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids\n")]
	ctrl, _, point, ok = v1Mount(noPids)
	require.True(t, ok && ctrl == "memory" && point == "/sys/fs/cgroup/memory", "without pids: %v %q %q", ok, ctrl, point)

	v2 := "28 27 0:25 / /sys/fs/cgroup rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
	_, _, _, ok = v1Mount(v2)
	require.False(t, ok, "a v2-only host has no v1 mount")
	_, _, _, ok = v1Mount("40 27 0:40 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n")
	require.False(t, ok, "a freezer-only hierarchy is not one runs move into")
}

func TestOwnPath(t *testing.T) {
	self := "13:pids:/user.slice/a\n12:cpu,cpuacct:/b\n0::/c\n"
	require.Equal(t, "/user.slice/a", ownPath(self, "pids"))
	require.Equal(t, "/b", ownPath(self, "cpu"))
	require.Equal(t, "", ownPath(self, "memory"))
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
		got, ok := MountDir(tc.root, "/sys/fs/cgroup/pids", tc.path)
		require.Equal(t, tc.ok, ok, "MountDir(root %q, %q)", tc.root, tc.path)
		if ok {
			require.Equal(t, tc.want, got, "MountDir(root %q, %q)", tc.root, tc.path)
		}
	}
}
