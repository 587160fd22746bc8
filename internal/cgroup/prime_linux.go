package cgroup

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// PrimeMigration makes the kernel's cgroup v1 migrations of the next few
// milliseconds fast, so that a one-shot run's late join (internal/native
// moves the interpreter into its group once it exists) does not wait for
// an RCU grace period while the interpreter, ready, waits for its code.
//
// Every migration takes the kernel's global cgroup_threadgroup_rwsem, a
// per-cpu rwsem, for writing: the first writer after the lock went unused
// for a while (~50 ms here) waits for an RCU grace period, 4-7 ms on an
// idle 2-core host and up to ~15 ms on a busy one, and writers that come
// soon after do not (0.01-0.1 ms). PrimeMigration is that first
// migration, made early and for nothing: it writes the calling thread's
// id to the tasks file of the v1 cgroup the thread is already in (the
// kernel takes the lock, then finds nothing to move). It blocks for the
// grace period, holding the cgroup mutex (which mkdir in cgroupfs and
// other migrations take): call it on a goroutine of its own once the
// run's group exists.
//
// It does nothing on cgroup v2, where runs are cloned straight into their
// group (CLONE_INTO_CGROUP) and nothing migrates, and it refuses when the
// thread's cgroup is outside the hierarchy's mount (a bind of another
// subtree), where the write could only move the thread elsewhere. Errors
// only say that the priming did not happen; nothing depends on it.
func PrimeMigration() error {
	p, err := hostPlan()
	if err != nil {
		return err
	}
	if p.v2 || p.primeCtrl == "" {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	dir, ok := mountDir(p.primeMount, parseSelfCgroup(b)[p.primeCtrl])
	if !ok {
		return errors.New("cgroup: this thread's cgroup is not under the hierarchy's mount")
	}
	return writeFile(dir, "tasks", strconv.Itoa(unix.Gettid()))
}
