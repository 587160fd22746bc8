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
// /run/pybox, which holds the runner's result file. runsc's stdout and
// stderr are pipes read live with the output cap. runsc runs with
// --file-access-mounts=exclusive: no one else changes the mounts during a
// run, so the sentry caches lookups (imports are much faster); a
// host-side change to a user mount made during a run may not be seen by
// that run.
//
// The runner reads its exec frame from its stdin, a pipe (runner IN "0":
// the runner moves it out of the way and gives the code /dev/null as
// stdin), and writes its frames to /run/pybox/out. After its result the
// runner does what Python's finalisation does before exit (it joins the
// code's non-daemon threads, runs the atexit handlers, flushes sys.stdout
// and sys.stderr), writes an "exit" frame with the status it exits with,
// and exits. A run ends as soon as that complete exit frame is there (the
// supervisor watches the file with inotify), not when runsc exits (~10 ms
// later): every process of the sandbox is sent SIGKILL at once, the output
// pipes are drained without waiting for the processes to close them, and
// the rest of the teardown (reaping, unmounting, removing the run
// directory, runsc's state and the cgroup) goes on in the background,
// counted for Close. The exit code is the frame's. So threads, atexit
// handlers and buffered output behave as on the native backend; daemon
// threads and child processes still running then are killed, as there.
// Runs whose interpreter dies without an exit frame (os._exit, a signal, a
// limit) end when runsc exits. The timeout covers the finalisation too: a
// non-daemon thread that never ends times the run out.
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
// # The warm pool
//
// Booting runsc (sentry, gofer, the interpreter) is ~95% of a cold run. So
// the backend keeps, per policy (everything a sandbox is booted with:
// interpreter, environment, mounts, memory, pids, cpus, disk, output limit,
// best_effort), up to [PoolSize] sandboxes booted ahead, their runner
// blocked on its stdin for the frame. A run whose policy has one takes it,
// hands it the frame, and the sandbox is killed and deleted afterwards:
// each sandbox still serves exactly one execution. The timeout covers only
// the execution. Isolation.prebooted says a Result came from the pool.
// Pools are filled in the background after a run of that policy, so a
// policy never asked for costs nothing; a pooled sandbox that died or is
// older than [PoolMaxAge] is discarded, never used, and a run whose
// sandbox died before its runner read a byte of the frame is given to
// another one. Requests with input files are not pooled (they are written
// into /work before boot; written after it, new files are seen but /work's
// own attributes stay those of boot time), nor are runs without a cgroup
// (best_effort on a host without one): they boot a sandbox of their own.
// Close drains the pool and waits for every background teardown.
// Options.NoPool or PYBOX_GVISOR_POOL=0 turn the pool off. docs/gvisor.md
// has the details.
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
	"strings"
	"time"

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
	// EnvPool set to "0" (or "false", "off", "no") turns the warm pool
	// off: every run boots its own sandbox ([Options.NoPool]).
	EnvPool = "PYBOX_GVISOR_POOL"
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

// The warm pool's sizes: PoolSize booted sandboxes per policy, at most
// PoolMax in all (policies beyond that run cold until pooled sandboxes age
// out), each discarded unused after PoolMaxAge (so that host changes, to
// /usr for instance, reach new runs, and an idle pool frees its memory).
const (
	PoolSize   = 2
	PoolMax    = 8
	PoolMaxAge = 2 * time.Minute
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
	// NoPool turns the warm pool off: every run boots a sandbox of its
	// own (see "The warm pool" above).
	NoPool bool
}

// OptionsFromEnv returns the options set by EnvRunsc, EnvPlatform, EnvDir
// and EnvPool.
func OptionsFromEnv(getenv func(string) string) Options {
	o := Options{Runsc: getenv(EnvRunsc), Platform: getenv(EnvPlatform), Dir: getenv(EnvDir)}
	switch strings.ToLower(strings.TrimSpace(getenv(EnvPool))) {
	case "0", "false", "off", "no":
		o.NoPool = true
	}
	return o
}

func init() {
	backend.Register(Name, func() (backend.Backend, error) { return newFromEnv() })
}
