package spawn

// Arg0 marks a process started as a sandbox init; ArgAhead, its argv[1],
// asks it to start the interpreter ahead of its config (Options.Ahead).
const (
	Arg0     = "pybox-sandbox-init"
	ArgAhead = "ahead"
)

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

// TemplateAllow are the syscalls a fork-server template needs that the
// sandbox's seccomp filter otherwise denies; every child denies them again
// with a small stacked filter. (Here, with the other facts the init and
// its parent share, so that the prebuilt filters need not import the
// init's package, which uses them.)
var TemplateAllow = []string{"mount", "umount2", "unshare", "setns"}

// PassEnv are host variables passed through to the interpreter because
// they describe the host CPU, not the user (older OpenBLAS builds crash
// without them on some CPUs): guest.Environ; and to an init started with
// Options.Ahead, which starts the interpreter before its config comes.
var PassEnv = []string{"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
