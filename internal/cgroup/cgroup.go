package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/pybox-dev/pybox/internal/cgroup/prime"
)

// Mount is a cgroup or cgroup2 mount, from mountinfo.
type Mount = prime.Mount

// Mounts returns the cgroup and cgroup2 mounts in mountinfo's text.
func Mounts(mountinfo []byte) []Mount { return prime.Mounts(string(mountinfo)) }

// ErrUnsupported is returned on platforms without cgroups.
var ErrUnsupported = errors.New("cgroup: not supported on this platform")

// Limits are the limits of one group. A zero field means "no limit" for
// that resource, but [New] still requires every controller to be present.
type Limits struct {
	// MemoryBytes caps memory plus swap together.
	MemoryBytes int64
	// Pids caps the number of tasks (processes and threads).
	Pids int
	// CPUs is a CFS quota in CPUs (0.5 = half a CPU); 0 means no quota.
	CPUs float64
	// AllowSwap accepts a memory-only limit when the host cannot limit
	// swap (v1 without memory.memsw.*, v2 without memory.swap.max) while
	// swap is active. Best-effort callers set it; others get an error.
	AllowSwap bool
}

// Info describes what this host offers. It is the same for every call in a
// process (see [Detect]).
type Info struct {
	// Version is the cgroup version pybox uses: "v1" or "v2".
	Version string
	// Mode is how the host mounts cgroups: "v1", "v2" or "hybrid".
	Mode string
	// Controllers are the usable controllers of Version, sorted.
	Controllers []string
	// Parent is where pybox creates its groups. On v1 it is one
	// "controller=dir" entry per hierarchy, joined by ", ".
	Parent string
	// Problems lists what is missing, each with a hint on how to fix it.
	Problems []string
}

// Stats are the resource counters of a group.
type Stats struct {
	// PeakMemoryBytes is the peak memory (+swap when accounted) usage.
	PeakMemoryBytes int64
	// CPUNanos is the CPU time used by all tasks, user plus system.
	CPUNanos int64
	// OOMKills counts processes the kernel OOM killer killed in the group.
	OOMKills int
	// MemoryLimitHit is true when usage reached the memory limit at least
	// once (reclaim or OOM).
	MemoryLimitHit bool
	// PidsLimitHit is true when a fork or clone failed on the pids limit.
	PidsLimitHit bool
}

// RunName returns a group name "<pid>-<seq>" that records this process as
// the owner, so that [Cleanup] in a later process can remove the group once
// this process is gone.
func RunName(seq uint64) string {
	return strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(seq, 10)
}

// checkName rejects names that are not a single safe path element.
func checkName(name string) error {
	if name == "" || len(name) > 200 || name == "." || name == ".." {
		return fmt.Errorf("cgroup: invalid group name %q", name)
	}
	for _, c := range name {
		ok := c == '-' || c == '_' || c == '.' ||
			(c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !ok {
			return fmt.Errorf("cgroup: invalid group name %q: use only [A-Za-z0-9._-]", name)
		}
	}
	return nil
}
