package spawn

// Arg0 marks a process started as a sandbox init.
const Arg0 = "pybox-sandbox-init"

// File descriptors an init starts with. 0-2 are the interpreter's stdin
// (/dev/null), stdout and stderr; RunnerIn and RunnerOut are handed on to
// the runner; Control is init's own channel to the parent.
const (
	FDRunnerIn  = 3
	FDRunnerOut = 4
	FDControl   = 5
)

// SandboxUID and SandboxGID are the identity of the code inside.
const (
	SandboxUID = 1000
	SandboxGID = 1000
)

// HostUIDBase is the host uid (and gid) that the sandbox's root maps to; the
// code itself runs as SandboxUID inside, HostUIDBase+SandboxUID outside.
// Neither owns anything on the host.
const HostUIDBase = 1_000_000_000
