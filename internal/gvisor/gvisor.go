// Package gvisor is the gvisor backend: it runs the same sandbox as the
// native backend (the runner under /usr/bin/python3, read-only /usr, a
// generated /etc, size-capped /work and /tmp, no network, uid 1000, the same
// limits and Result) inside gVisor's runsc, a user-space kernel, so that the
// code never talks to the host kernel directly.
//
// # How a run works
//
// For each run the backend makes a private run directory under
// [DefaultDir] (mode 0700) holding an OCI bundle it generates (a
// read-only rootfs of empty mount points and symlinks, config.json), runsc's
// state directory (--root, so nothing accumulates in a shared one), and three
// host tmpfs mounts with kernel-enforced size caps: /work (input files are
// written there before the run and output files read back from it after,
// without following symlinks), /tmp, /dev/shm (gVisor 20221219 ignores
// tmpfs size=, so its own tmpfs would only be bounded by memory), and
// /run/pybox, the runner's protocol channel (the exec frame as a file, the
// result frames as a file). runsc's stdout and stderr are pipes read live
// with the output cap. runsc runs with --file-access-mounts=exclusive: no
// one else changes the mounts during a run, so the sentry caches lookups
// (imports are much faster); a host-side change to a user mount made
// during a run may not be seen by that run.
//
// Limits are not left to runsc: it is started with --ignore-cgroups inside a
// pybox cgroup (package cgroup, the same code as the native backend, v1, v2
// or hybrid) that holds every process of the run: runsc itself, the sentry,
// the gofer and the platform's stub processes. So a timeout, an output
// overrun or a cancelled context kills the whole tree at once, and the OOM
// counter of that group decides memory-limit. The cgroup also pays for
// gVisor's own memory and threads, so the backend adds [MemoryOverhead] and
// [PidsOverhead] on top of the request's limits.
//
// # Choosing the platform
//
// runsc 20221219 (Debian 12's runsc package) has two platforms: ptrace
// (the default here: works everywhere, slower system calls) and kvm (fast
// system calls, needs /dev/kvm; on some hosts it hangs at 100% CPU, so it is
// never picked automatically). Set PYBOX_RUNSC_PLATFORM=kvm (or any
// platform name the installed runsc knows) to choose; PYBOX_RUNSC names the
// runsc binary (default: runsc in PATH).
package gvisor

import (
	"github.com/pybox-dev/pybox/internal/backend"
)

// Name is the backend's name.
const Name = "gvisor"

// Environment variables read by the default factory.
const (
	// EnvRunsc is the runsc binary to use (default "runsc" in PATH).
	EnvRunsc = "PYBOX_RUNSC"
	// EnvPlatform is the runsc platform (default "ptrace").
	EnvPlatform = "PYBOX_RUNSC_PLATFORM"
	// EnvDir is the directory run directories are made in (default
	// [DefaultDir]).
	EnvDir = "PYBOX_GVISOR_DIR"
)

// DefaultPlatform is the runsc platform used unless EnvPlatform says
// otherwise.
const DefaultPlatform = "ptrace"

// DefaultDir is where run directories live unless EnvDir says otherwise.
const DefaultDir = "/run/pybox-gvisor"

// MemoryOverhead is added to Request.Memory for the cgroup limit: the
// sentry, the gofer and runsc itself live in the run's cgroup too (about
// 25 MiB in all for print(1) with the ptrace platform, python included).
const MemoryOverhead = 64 << 20

// Request.Pids is enforced inside the sandbox, exactly: the sentry applies
// RLIMIT_NPROC, which counts every task (process or thread) of the sandbox
// user, the only user code runs as. The host cgroup's pids limit is a
// backstop sized for gVisor: PidsOverhead tasks for runsc, the sentry and
// the gofer (about 50 measured) plus PidsPerTask host tasks per guest task
// (about 5 measured with ptrace: each guest address space has a stub
// process and the sentry adds threads; a fork bomb that keeps hitting
// the guest limit needs more, and the sentry dies when the host limit is
// hit first).
const (
	PidsOverhead = 64
	PidsPerTask  = 16
)

// Options configure a backend made by [New]. Empty fields take their
// defaults.
type Options struct {
	// Runsc is the runsc binary: a path, or a name looked up in PATH.
	Runsc string
	// Platform is runsc's --platform ("ptrace" or "kvm").
	Platform string
	// Dir is the parent of the run directories.
	Dir string
}

// OptionsFromEnv returns the options set by EnvRunsc, EnvPlatform and
// EnvDir.
func OptionsFromEnv(getenv func(string) string) Options {
	return Options{Runsc: getenv(EnvRunsc), Platform: getenv(EnvPlatform), Dir: getenv(EnvDir)}
}

func init() {
	backend.Register(Name, func() (backend.Backend, error) { return newFromEnv() })
}
