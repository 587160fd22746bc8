package cgroup

import (
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

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
