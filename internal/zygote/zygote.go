// Package zygote holds the fork-server template: a Python program that runs
// inside a native sandbox with numpy and friends already imported and forks
// one fresh, fully isolated sandbox per execution (new pid, mount, ipc, uts
// and network namespaces, its own cgroup, fresh /proc, /work and /tmp,
// Landlock, seccomp, uid 1000, no capabilities).
//
// The Go side that starts templates and sends them executions lives in
// internal/native (forkserver_linux.go); RATIONALE.md has the design and the
// security argument.
//
// # Protocol
//
// The template's fd 3 is a SOCK_SEQPACKET socket. The supervisor first sends
// one [Config] message; the template answers {"type":"ready"}. Then, per
// execution, the supervisor sends {"type":"fork","id":N} with SCM_RIGHTS
// file descriptors, in this order: a pipe the child reads its [Exec] frame
// from (input files), stdout, stderr, the runner's exec-frame pipe, the
// runner's result-frame pipe, a status pipe, and one opened cgroup.procs
// file per cgroup hierarchy of the execution's cgroup (a child made for the
// request moves itself there; a prepared one is there). The message also
// carries the execution's disk size and file-collection settings. The
// supervisor may write the runner's exec frame before it sends the
// request: the child reads it only once it is in its cgroup. The template
// hands the request to a child it made ahead (a spare) or makes one now,
// and answers {"type":"forked","id":N,"pid":P} or {"type":"fork-error",...}.
//
// While no execution runs, the supervisor may send
// {"type":"prepare","id":N,"disk":D,"cgroup":C} with the cgroup.procs files
// of the cgroup the next execution will use: the template makes its spare
// there (the spare moves itself in while it sets up) and answers
// {"type":"prepared",...}. A fork request with "prepared":C is served by
// that spare, without a move; any other by a child made for it. On the status pipe, with the frames of
// internal/initproc, the child reports collected files (or an error frame
// when its setup failed), then the template reports the exit status once
// the code's process is reaped, and done once the execution's pid namespace
// has ended (its holder, which keeps the code's memory, included). Once the
// exit status is in, an empty execution cgroup means nothing of the code
// runs any more; done may come later.
package zygote

import (
	_ "embed"

	"github.com/pybox-dev/pybox/internal/landlock"
)

// Source is the template program.
//
//go:embed zygote.py
var Source string

// Config is the template's first message.
type Config struct {
	Type string `json:"type"` // "config"
	// Runner is the runner's source (internal/runner.Source).
	Runner string `json:"runner"`
	// Preload are modules imported once in the template.
	Preload []string `json:"preload,omitempty"`
	// Seccomp is the per-child filter (struct sock_filter array).
	Seccomp []byte `json:"seccomp"`
	// Landlock are the masks of the per-child ruleset; nil skips Landlock
	// (best effort on a host without it).
	Landlock *landlock.Masks `json:"landlock,omitempty"`
	// RO, RW and RWFiles are the Landlock rule paths.
	RO      []string `json:"ro"`
	RW      []string `json:"rw"`
	RWFiles []string `json:"rw_files"`
	// ChildEnv undoes, in each child before the code runs, variables the
	// template runs with for itself (one BLAS thread): a variable maps to
	// the request's value, or to null when the request did not set it.
	// The code sees the request's environment, as in a cold sandbox.
	ChildEnv map[string]*string `json:"child_env,omitempty"`
	// Trace asks for WokeUS and Faults in "forked" replies (PYBOX_TRACE=1).
	Trace bool `json:"trace,omitempty"`
}

// File is an input file of one execution (Data is base64 in JSON).
type File struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
	Mode uint32 `json:"mode,omitempty"`
}

// Exec is the per-execution frame the child reads from its config pipe
// when the fork request says input files follow.
type Exec struct {
	Files []File `json:"files,omitempty"`
}

// Reply is the template's answer to a config or fork message.
type Reply struct {
	Type string `json:"type"`
	ID   uint64 `json:"id,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// Spare and TookUS (of "forked") say whether the child was made ahead
	// and how long the template took to answer, in µs; with Config.Trace,
	// WokeUS and Faults say how long since its poll's wake-up and how
	// many page faults it took meanwhile (PYBOX_TRACE=1).
	Spare     bool     `json:"spare,omitempty"`
	TookUS    int64    `json:"took_us,omitempty"`
	WokeUS    int64    `json:"woke_us,omitempty"`
	Faults    int64    `json:"faults,omitempty"`
	Error     string   `json:"error,omitempty"`
	Preloaded []string `json:"preloaded,omitempty"`
	Errors    []string `json:"errors,omitempty"`
}
