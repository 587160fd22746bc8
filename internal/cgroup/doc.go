// Package cgroup gives each sandbox run its own cgroup with memory
// (memory + swap), pids and CPU-quota limits, and removes it afterwards.
//
// It supports pure cgroup v2 hosts, pure v1 hosts and v1/v2 hybrids (v1
// controllers plus a controller-less cgroup2 mount, as on older systemd
// hosts). [Detect] says what this host can enforce; [New] creates one group
// per run; [Cleanup] removes groups left behind by crashed supervisors.
//
// # Where groups live
//
// On v1 every group is nested under this process's own cgroup in each
// controller hierarchy (so a host limit on the supervisor still applies):
// <mount>/<own path>/pybox/<name>. On v2 the "no internal processes" rule
// means a cgroup holding processes cannot hand controllers to children, so
// groups go to <own cgroup>/pybox when the own cgroup is the root, else to
// /sys/fs/cgroup/pybox (controllers enabled from the root). The environment
// variable PYBOX_CGROUP_PARENT overrides the parent: a cgroup path relative
// to each hierarchy's root (for example "/pybox.slice/pybox"); groups are
// then created directly under it.
//
// # Names and cleanup
//
// Group names must be unique per host. Use [RunName] ("<pid>-<seq>") so that
// [Cleanup] can tell which supervisor owned a group: it kills and removes
// groups whose owner pid no longer exists and leaves everything else alone.
//
// # Hot path
//
// The v1 and v2 managers are hand-rolled plain file writes rather than
// github.com/containerd/cgroups/v3: see [New] for the measured reason. One
// run's New + AddProc + Delete costs about 215 µs on a v1 host.
package cgroup
