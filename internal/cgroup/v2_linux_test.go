package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

// v2Plan returns a plan for a test parent on the host's cgroup2 mount with
// no controllers to enable, so that the v2 code (CLONE_INTO_CGROUP fd,
// cgroup.procs, cgroup.kill, rmdir) runs even on a hybrid host whose
// cgroup2 mount has no controllers.
func v2Plan(t *testing.T) *plan {
	t.Helper()
	require.Root(t)
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var top string
	for _, m := range Mounts(mi) {
		if m.FSType == "cgroup2" && m.Root == "/" {
			top = m.Point
			break
		}
	}
	require.Feature(t, top != "", "no cgroup2 mount")
	require.Feature(t, !fileExists(filepath.Join(top, "cgroup.type")), "cgroup2 mount %s is not the root cgroup", top)
	parent := filepath.Join(top, "pybox-v2test-"+strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { os.Remove(parent) })
	return &plan{v2: true, parent: parent, chain: []string{top, parent}, info: Info{Version: "v2"}}
}

func TestV2GroupWithoutControllers(t *testing.T) {
	p := v2Plan(t)
	g, err := newGroup(p, nil, RunName(seq.Add(1)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndCheck(t, g) })
	if g.Version() != "v2" {
		t.Fatalf("Version = %q", g.Version())
	}
	fd, ok := g.FD()
	if !ok {
		t.Fatal("FD not ok on v2")
	}
	// CLONE_INTO_CGROUP: born in the group.
	born := exec.Command("/bin/sleep", "1000")
	born.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if err := born.Start(); err != nil {
		t.Fatalf("start with CgroupFD: %v", err)
	}
	// AddProc: moved in.
	moved := exec.Command("/bin/sleep", "1000")
	if err := moved.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.AddProc(moved.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{born, moved} {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(c.Process.Pid) + "/cgroup")
		if !strings.Contains(string(b), "0::"+strings.TrimPrefix(g.Dirs()[0], filepath.Dir(p.parent))+"\n") {
			t.Errorf("pid %d: /proc/pid/cgroup = %q, want it in %s", c.Process.Pid, b, g.Dirs()[0])
		}
	}
	if _, err := g.Stats(); err != nil {
		t.Errorf("Stats: %v", err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{born, moved} {
		if err := c.Wait(); !sigkilled(err) {
			t.Errorf("pid %d exit = %v, want SIGKILL", c.Process.Pid, err)
		}
	}
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.FD(); ok {
		t.Error("FD ok after Delete")
	}
}

func TestV2FailedLimitLeavesNothing(t *testing.T) {
	p := v2Plan(t)
	avail, _ := os.ReadFile(filepath.Join(p.chain[0], "cgroup.subtree_control"))
	require.Feature(t, !strings.Contains(string(avail), "pids"), "this cgroup2 mount has pids enabled")
	name := RunName(seq.Add(1))
	_, err := newGroup(p, nil, name, Limits{Pids: 8})
	if err == nil || !strings.Contains(err.Error(), "pids.max") {
		t.Fatalf("newGroup with pids on a pids-less mount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.parent, name)); !os.IsNotExist(err) {
		t.Errorf("failed New left %s behind", filepath.Join(p.parent, name))
	}
}

func TestV1FDNotOK(t *testing.T) {
	g := testGroup(t, Limits{})
	if _, ok := g.FD(); ok != (g.Version() == "v2") {
		t.Errorf("FD ok = %v on %s", ok, g.Version())
	}
}
