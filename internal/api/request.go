// Package api holds the one request and result schema shared by every front
// end (library, CLI, HTTP, MCP) and every backend, plus its validation.
//
// The root package pybox re-exports these types as aliases so embedders never
// import internal packages; backends import this package directly, which keeps
// the dependency graph acyclic (root -> backend -> api).
package api

import (
	"encoding/json"
	"time"
)

// Backend names.
const (
	BackendNative = "native"
	BackendGVisor = "gvisor"
	BackendWasm   = "wasm"
)

// Network modes. Only NetNone exists today.
const (
	NetNone = "none"
)

// Defaults applied by [Request.WithDefaults].
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMemory      = 512 << 20
	DefaultPids        = 64
	DefaultOutputLimit = 1 << 20
	DefaultDisk        = 64 << 20
	DefaultFilesLimit  = 16 << 20
	DefaultPython      = "/usr/bin/python3"
	DefaultIdleTimeout = 10 * time.Minute
	DefaultMaxLifetime = time.Hour

	// MaxCodeSize bounds Request.Code.
	MaxCodeSize = 4 << 20
	// MaxInputFiles bounds the total size of Request.Files.
	MaxInputFiles = 64 << 20
	// MaxGlobalsSize bounds the encoded size of Request.Globals.
	MaxGlobalsSize = 4 << 20
)

// Request is everything needed to run one piece of Python: the code, its
// inputs and the policy it runs under. It is flat and JSON-tagged on purpose:
// CLI flags, HTTP bodies, MCP arguments and the sandbox init payload all decode
// into it. The zero value of each limit means "use the default"; there is no
// way to ask for "unlimited".
type Request struct {
	// Backend selects the isolation tier: "native", "gvisor" or "wasm".
	// Empty means the platform default (native on Linux).
	Backend string `json:"backend,omitempty"`

	// Code is the Python source, run as main.py. A trailing expression is
	// evaluated and returned as Result.ReturnValue.
	Code string `json:"code"`
	// Globals is a JSON object whose keys are injected as global variables.
	Globals json.RawMessage `json:"globals,omitempty"`
	// Files are copied into the work directory before the code runs.
	Files []File `json:"files,omitempty"`
	// CollectFiles asks for the files the program left in its work
	// directory to be returned in Result.Files (with their contents).
	CollectFiles bool `json:"collect_files,omitempty"`

	// Timeout is the wall-clock limit of the whole run.
	Timeout Duration `json:"timeout,omitempty"`
	// Memory caps memory plus swap of the whole process tree, in bytes.
	Memory Size `json:"memory,omitempty"`
	// Pids caps the number of processes and threads.
	Pids int `json:"pids,omitempty"`
	// CPUs is a CPU bandwidth quota (1.5 = one and a half cores); 0 = no quota.
	CPUs float64 `json:"cpus,omitempty"`
	// OutputLimit caps stdout and stderr, each.
	OutputLimit Size `json:"output_limit,omitempty"`
	// Disk caps each writable tmpfs (/work and /tmp).
	Disk Size `json:"disk,omitempty"`
	// FilesLimit caps the total size of collected output files.
	FilesLimit Size `json:"files_limit,omitempty"`

	// Net is the network mode; only "none" (loopback only) is supported.
	Net string `json:"net,omitempty"`
	// Mounts are host paths made visible in the sandbox.
	Mounts []Mount `json:"mounts,omitempty"`
	// Env adds environment variables. The host environment never leaks.
	Env map[string]string `json:"env,omitempty"`
	// Python is the interpreter's host path (default /usr/bin/python3).
	Python string `json:"python,omitempty"`

	// IdleTimeout ends a session after this long without an execution
	// (sessions only).
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
	// MaxLifetime ends a session this long after it started (sessions only).
	MaxLifetime Duration `json:"max_lifetime,omitempty"`

	// BestEffort lets the run go ahead when an isolation layer cannot be
	// enforced on this host. Result.Isolation.Missing then lists what was
	// skipped. Without it such a run fails with status sandbox-error.
	BestEffort bool `json:"best_effort,omitempty"`
}

// File is an input file placed in the work directory.
type File struct {
	// Name is a relative path inside the work directory; it may not climb
	// out of it.
	Name string `json:"name"`
	// Data is the content (base64 in JSON).
	Data []byte `json:"data"`
	// Mode is the permission bits; 0 means 0644.
	Mode uint32 `json:"mode,omitempty"`
}

// Mount makes a host path visible inside the sandbox.
type Mount struct {
	// Host is an absolute host path.
	Host string `json:"host"`
	// Guest is the absolute path inside the sandbox.
	Guest string `json:"guest"`
	// RW makes the mount writable; the default is read-only.
	RW bool `json:"rw,omitempty"`
}

// WithDefaults returns a copy of r with every unset limit filled in.
func (r Request) WithDefaults() Request {
	if r.Timeout == 0 {
		r.Timeout = Duration(DefaultTimeout)
	}
	if r.Memory == 0 {
		r.Memory = DefaultMemory
	}
	if r.Pids == 0 {
		r.Pids = DefaultPids
	}
	if r.OutputLimit == 0 {
		r.OutputLimit = DefaultOutputLimit
	}
	if r.Disk == 0 {
		r.Disk = DefaultDisk
	}
	if r.FilesLimit == 0 {
		r.FilesLimit = DefaultFilesLimit
	}
	if r.Net == "" {
		r.Net = NetNone
	}
	if r.IdleTimeout == 0 {
		r.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if r.MaxLifetime == 0 {
		r.MaxLifetime = Duration(DefaultMaxLifetime)
	}
	if r.Python == "" {
		r.Python = DefaultPython
	}
	return r
}
