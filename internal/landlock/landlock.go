// Package landlock restricts the sandbox init, and so the interpreter it
// execs, with Landlock: filesystem access to a list of paths, TCP bind and
// connect, and IPC scopes (abstract unix sockets, signals).
//
// It wraps github.com/landlock-lsm/go-landlock. Restrict handles every
// filesystem access right the host's ABI knows, so anything not granted by
// [Config] is denied; the network and scope layers are requested
// explicitly. Without BestEffort a requested layer the host lacks is an
// error, never a silent downgrade.
//
// # All threads
//
// Landlock restricts the calling thread and its future children. go-landlock
// applies the ruleset to every OS thread of the Go process: on ABI 8 and
// later with LANDLOCK_RESTRICT_SELF_TSYNC in one landlock_restrict_self
// call; before that through kernel.org/.../libcap/psx, which runs
// prctl(PR_SET_NO_NEW_PRIVS) and landlock_restrict_self on each thread
// (with cgo, libpsx signals every pthread; without cgo, it is
// syscall.AllThreadsSyscall, where the Go runtime stops the world and runs
// the syscall on every M). Restrict also sets no_new_privs on all threads.
//
// # Known gaps
//
// Before ABI 8 each thread's landlock_restrict_self makes a domain of its
// own, so with Scope a thread may not signal (or reach the abstract
// sockets of) a process another thread started: sibling domains. The
// sandbox init restricts one thread (ThisThread) and starts the
// interpreter from it, so this does not arise there.
//
// Landlock's TCP rules do not cover Multipath TCP sockets
// (socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)); see
// https://github.com/landlock-lsm/linux/issues/54. The seccomp layer closes
// this. UDP is restricted only from ABI 10.
package landlock

import "errors"

// Config says what stays reachable after [Restrict].
type Config struct {
	// RO and RW are directories (and everything below them) the process
	// may read and execute, or also write. RW directories also allow
	// renaming and linking files between them (the "refer" right).
	RO []string `json:"ro,omitempty"`
	RW []string `json:"rw,omitempty"`
	// ROFiles and RWFiles are single files, such as /dev/null.
	ROFiles []string `json:"ro_files,omitempty"`
	RWFiles []string `json:"rw_files,omitempty"`
	// DenyNet denies every TCP bind and connect (ABI 4), and UDP bind,
	// connect and send where the host has ABI 10.
	DenyNet bool `json:"deny_net,omitempty"`
	// Scope forbids connecting to abstract unix sockets and signalling
	// processes outside this Landlock domain (ABI 6).
	Scope bool `json:"scope,omitempty"`
	// ThisThread restricts only the calling OS thread (locked with
	// runtime.LockOSThread) and the processes it starts afterwards, instead
	// of every thread of the Go process. Cheaper; used by the sandbox init,
	// which forks the interpreter from its locked main thread.
	ThisThread bool `json:"this_thread,omitempty"`
	// BestEffort enforces what the host supports and reports the rest in
	// Info.Missing instead of failing.
	BestEffort bool `json:"best_effort,omitempty"`
}

// Info reports what [Restrict] enforced.
type Info struct {
	// ABI is the host's Landlock ABI version, 0 without Landlock.
	ABI int `json:"abi"`
	// Enforced lists the layers in force: "filesystem", "network", "scope".
	Enforced []string `json:"enforced,omitempty"`
	// Missing lists requested layers the host cannot enforce (only with
	// BestEffort).
	Missing []string `json:"missing,omitempty"`
}

// Layer names used in Info.
const (
	LayerFilesystem = "filesystem"
	LayerNetwork    = "network"
	LayerScope      = "scope"
)

// Minimum ABI for each layer.
const (
	MinABIFilesystem = 1
	MinABINetwork    = 4
	MinABIScope      = 6
)

// ErrUnsupported is returned when the host lacks a requested layer and
// BestEffort is off.
var ErrUnsupported = errors.New("landlock: not supported")

// Masks are the numbers needed to build, in another program, the same
// ruleset that Restrict builds: the fork server's Python template applies
// it in every child with landlock_create_ruleset, landlock_add_rule and
// landlock_restrict_self.
type Masks struct {
	HandledFS  uint64 `json:"handled_fs"`
	HandledNet uint64 `json:"handled_net"`
	Scoped     uint64 `json:"scoped"`
	// ReadRights are granted on read-only paths, FileRights is the subset
	// that applies to a single file; read-write paths get HandledFS.
	ReadRights uint64 `json:"read_rights"`
	FileRights uint64 `json:"file_rights"`
}
