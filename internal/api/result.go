package api

import "encoding/json"

// Status values of a Result. Every status caused by a limit (timeout,
// memory-limit, output-limit, killed) is decided by the supervisor from what
// it observed, never from a message sent by the sandboxed side.
const (
	StatusSuccess      = "success"
	StatusRunError     = "run-error"
	StatusTimeout      = "timeout"
	StatusMemoryLimit  = "memory-limit"
	StatusOutputLimit  = "output-limit"
	StatusKilled       = "killed"
	StatusInputError   = "input-error"
	StatusSandboxError = "sandbox-error"
)

// Result is the outcome of one run. Front ends only re-format it.
type Result struct {
	// Status is one of the Status* constants.
	Status string `json:"status"`
	// ExitCode is the interpreter's exit code; -1 when it was killed by a
	// signal or never started.
	ExitCode int `json:"exit_code"`
	// Signal names the signal that ended the interpreter, if any.
	Signal string `json:"signal,omitempty"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// StdoutTruncated and StderrTruncated say an output limit cut the stream.
	StdoutTruncated bool `json:"stdout_truncated,omitempty"`
	StderrTruncated bool `json:"stderr_truncated,omitempty"`
	// ReturnValue is the JSON value of the trailing expression, if any.
	ReturnValue json.RawMessage `json:"return_value,omitempty"`
	// Error is the traceback (starting at File "main.py") for run-error, or
	// a one-line explanation for every other non-success status.
	Error string `json:"error,omitempty"`
	// Outputs are rich display outputs (MIME bundles).
	Outputs []Output `json:"outputs,omitempty"`
	// OutputsTruncated says the output limit left some outputs out.
	OutputsTruncated bool `json:"outputs_truncated,omitempty"`
	// Files lists what the program left in its work directory when the
	// request asked for it.
	Files []OutFile `json:"files,omitempty"`
	// FilesTruncated says some files were left out by the files limit.
	FilesTruncated bool      `json:"files_truncated,omitempty"`
	Usage          Usage     `json:"usage"`
	Isolation      Isolation `json:"isolation"`
}

// Output is one rich display output.
type Output struct {
	MIME string `json:"mime"`
	// Data is text for text/* and JSON types, base64 for binary types.
	Data string `json:"data"`
}

// OutFile is a file collected from the work directory.
type OutFile struct {
	// Name is the path relative to the work directory.
	Name string `json:"name"`
	Size int64  `json:"size"`
	Mode uint32 `json:"mode,omitempty"`
	// Data is the content; front ends that write files to disk omit it.
	Data []byte `json:"data,omitempty"`
}

// Usage is what the run consumed.
type Usage struct {
	WallMS          int64 `json:"wall_ms"`
	CPUMS           int64 `json:"cpu_ms"`
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
}

// Isolation reports every layer that was actually in force for the run.
type Isolation struct {
	Backend string `json:"backend"`
	// Namespaces lists the Linux namespaces the sandbox got (native).
	Namespaces []string `json:"namespaces,omitempty"`
	// UID is the user id the code ran as inside the sandbox.
	UID *int `json:"uid,omitempty"`
	// Capabilities is "none" when every capability was dropped.
	Capabilities string `json:"capabilities,omitempty"`
	NoNewPrivs   bool   `json:"no_new_privs,omitempty"`
	// Seccomp describes the syscall filter, e.g. "deny-list, 74 syscalls".
	Seccomp string `json:"seccomp,omitempty"`
	// LandlockABI is the Landlock ABI version enforced; 0 = not enforced.
	LandlockABI int `json:"landlock_abi,omitempty"`
	// Landlock lists which Landlock rule kinds were enforced
	// (filesystem, network, scope).
	Landlock []string `json:"landlock,omitempty"`
	// Cgroup is "v1" or "v2"; empty when no cgroup was used.
	Cgroup string `json:"cgroup,omitempty"`
	// Limits are the enforced resource limits.
	Limits Limits `json:"limits"`
	// Network is the network mode in force ("none": loopback only).
	Network string `json:"network,omitempty"`
	// Filesystem describes the root: e.g. "pivot_root, read-only binds".
	Filesystem string `json:"filesystem,omitempty"`
	// ForkServer says the sandbox was forked from a warm template (same
	// layers, built per execution by the template; see RATIONALE.md).
	ForkServer bool `json:"fork_server,omitempty"`
	// Prebooted says the sandbox came from the pool of pre-booted
	// sandboxes (the fork server's fallback): a cold-path sandbox booted
	// before the request, with the same policy and limits, used once.
	Prebooted bool `json:"prebooted,omitempty"`
	// Missing lists layers that best-effort mode skipped.
	Missing []string `json:"missing,omitempty"`
}

// Limits are the resource limits in force.
type Limits struct {
	TimeoutMS   int64   `json:"timeout_ms"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	Pids        int     `json:"pids,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
	OutputBytes int64   `json:"output_bytes"`
	DiskBytes   int64   `json:"disk_bytes,omitempty"`
}
