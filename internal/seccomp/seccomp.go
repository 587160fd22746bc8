// Package seccomp builds and installs the native backend's seccomp filter: a
// deny-list of the kernel attack surface that untrusted Python never needs.
//
// The sandbox init installs it on itself last, just before it execs the
// interpreter, so the filter must allow everything the Go init still does
// (clone without namespace flags, execve, wait4, pipes, signals) and
// everything CPython and numpy, pandas and matplotlib do.
//
// # Filter layout
//
//  1. A hand-written prefix: a syscall from a foreign architecture (i386 via
//     int 0x80 on x86_64, arm32 on arm64) kills the process; x32 syscalls on
//     x86_64 fail with ENOSYS; then [argFilters]: ioctl TIOCSTI and
//     TIOCLINUX, and personality other than PER_LINUX or the 0xffffffff
//     query, fail with EPERM; socket(..., IPPROTO_MPTCP) fails with
//     EPROTONOSUPPORT. These compare only the low 32 bits of the argument,
//     as the kernel does for an int: go-seccomp-bpf's Equal compares all 64
//     bits, which the caller could dodge by setting the high ones.
//  2. The deny-list, assembled by github.com/elastic/go-seccomp-bpf:
//     [denyList] fails with EPERM (clone3 with ENOSYS so that glibc falls
//     back to clone), and clone with any CLONE_NEW* flag fails with EPERM.
//     Every other syscall is allowed.
//
// Since Linux 5.11 the kernel caches "allow" per syscall number for filters
// whose result does not depend on the arguments, so only ioctl, personality,
// socket and clone pay for running the filter.
//
// Install sets no_new_privs and loads the filter with
// SECCOMP_FILTER_FLAG_TSYNC, so it applies to every thread of the Go process
// and to every process it starts.
package seccomp

import "errors"

// Options selects variations of the filter. The zero value is the default
// sandbox filter.
//
// The fork server (internal/zygote) splits the filter in two stacked
// halves: its long-lived template gets the default filter minus the few
// namespace and mount syscalls it needs to build each child's sandbox
// (Allow), and every child adds a small filter that denies exactly those
// (Only). A child's effective filter is the union of both denials.
type Options struct {
	// Allow leaves these syscalls out of the deny-list.
	Allow []string `json:"allow,omitempty"`
	// Only, when non-empty, builds a filter that denies just these
	// syscalls with EPERM, plus clone with any CLONE_NEW* flag. The
	// architecture check stays; the argument filters and the rest of the
	// deny-list do not (the template's filter has them).
	Only []string `json:"only,omitempty"`
	// Arch is the GOARCH to build for (say, "arm64"); empty means this
	// machine's. The filter is in this machine's byte order, so only
	// architectures of the same byte order can be built here.
	Arch string `json:"arch,omitempty"`
}

// Info describes a built filter.
type Info struct {
	// Syscalls is the number of syscalls the filter denies, fully or for
	// some arguments.
	Syscalls int `json:"syscalls"`
	// Instructions is the length of the BPF program.
	Instructions int `json:"instructions"`
	// Summary is a one-line description for Result.isolation and doctor.
	Summary string `json:"summary"`
}

// ErrUnsupported is returned on platforms without seccomp.
var ErrUnsupported = errors.New("seccomp is only supported on Linux")

// errnoKind is how a denied syscall fails.
type errnoKind int

const (
	eperm  errnoKind = iota // the caller lacks permission: the usual answer
	enosys                  // "not implemented", so libc falls back
)

// denial is one fully denied syscall and why.
type denial struct {
	name   string
	errno  errnoKind
	reason string
}

// denyList is every syscall the filter denies whatever its arguments.
// Sources: Docker's default profile (profiles/seccomp/default.json),
// nsjail, flatpak's and bubblewrap's --seccomp lists, and gVisor's host
// filters. Names missing from an architecture's table (legacy x86 calls on
// arm64) are skipped there.
var denyList = []denial{
	// Namespaces, mounts and root changes: the classic container escapes.
	{"mount", eperm, "mounts change what the sandbox can see"},
	{"umount2", eperm, "unmounting could reveal what the sandbox mounts hid"},
	{"pivot_root", eperm, "changes the root filesystem"},
	{"chroot", eperm, "chroot tricks escape a chroot-style root"},
	{"unshare", eperm, "new namespaces grant capabilities over fresh kernel objects"},
	{"setns", eperm, "joining another namespace escapes the sandbox's"},
	{"clone3", enosys, "its flags live in memory BPF cannot read; ENOSYS makes glibc use clone"},
	{"fsopen", eperm, "new mount API: creates a filesystem context"},
	{"fsconfig", eperm, "new mount API: configures a filesystem context"},
	{"fsmount", eperm, "new mount API: creates a mount"},
	{"fspick", eperm, "new mount API: reconfigures an existing mount"},
	{"move_mount", eperm, "new mount API: attaches a mount"},
	{"open_tree", eperm, "new mount API: clones a mount tree"},
	{"open_tree_attr", eperm, "new mount API: clones a mount tree with attributes"},
	{"mount_setattr", eperm, "new mount API: changes mount attributes"},
	{"listmount", eperm, "lists mounts, leaking the host's mount tree"},
	{"statmount", eperm, "describes mounts, leaking the host's mount tree"},

	// Looking into or controlling other processes.
	{"ptrace", eperm, "reads and writes other processes; seccomp bypasses on old kernels"},
	{"process_vm_readv", eperm, "reads another process's memory"},
	{"process_vm_writev", eperm, "writes another process's memory"},
	{"kcmp", eperm, "compares kernel objects of other processes, leaking addresses"},
	{"pidfd_getfd", eperm, "steals a file descriptor from another process"},
	{"process_madvise", eperm, "advises on another process's memory"},

	// Kernel keyrings: not namespaced.
	{"keyctl", eperm, "kernel keyrings are not namespaced"},
	{"add_key", eperm, "kernel keyrings are not namespaced"},
	{"request_key", eperm, "kernel keyrings are not namespaced"},

	// Big kernel attack surface with a history of exploits.
	{"bpf", eperm, "eBPF verifier and maps: a frequent source of kernel exploits"},
	{"perf_event_open", eperm, "performance events leak kernel state and have had many bugs"},
	{"userfaultfd", eperm, "used to win kernel races in exploits"},
	{"io_uring_setup", eperm, "io_uring has had many exploits and bypasses seccomp for its operations"},
	{"io_uring_enter", eperm, "io_uring has had many exploits and bypasses seccomp for its operations"},
	{"io_uring_register", eperm, "io_uring has had many exploits and bypasses seccomp for its operations"},
	{"fanotify_init", eperm, "filesystem-wide event monitoring"},
	{"lookup_dcookie", eperm, "kernel profiling interface"},
	{"modify_ldt", eperm, "16-bit segments: old kernel bugs, never needed"},
	{"move_pages", eperm, "moves other processes' pages across NUMA nodes"},
	{"migrate_pages", eperm, "moves other processes' pages across NUMA nodes"},
	{"memfd_secret", eperm, "memory removed from the kernel's direct map; not needed"},

	// Kernel modules, kexec, reboot.
	{"init_module", eperm, "loads kernel code"},
	{"finit_module", eperm, "loads kernel code"},
	{"delete_module", eperm, "unloads kernel code"},
	{"create_module", eperm, "legacy module loading"},
	{"get_kernel_syms", eperm, "legacy module symbol table"},
	{"query_module", eperm, "legacy module query"},
	{"kexec_load", eperm, "replaces the running kernel"},
	{"kexec_file_load", eperm, "replaces the running kernel"},
	{"reboot", eperm, "reboots or halts the machine"},

	// Host administration.
	{"swapon", eperm, "host swap configuration"},
	{"swapoff", eperm, "host swap configuration"},
	{"acct", eperm, "host process accounting"},
	{"quotactl", eperm, "filesystem quotas"},
	{"quotactl_fd", eperm, "filesystem quotas"},
	{"syslog", eperm, "reads the kernel log, which leaks addresses"},
	{"vhangup", eperm, "hangs up the controlling terminal"},
	{"sethostname", eperm, "the sandbox's hostname is set by pybox"},
	{"setdomainname", eperm, "the sandbox's domain name is set by pybox"},
	{"nfsservctl", eperm, "removed NFS server control"},
	{"_sysctl", eperm, "removed binary sysctl interface"},
	{"uselib", eperm, "legacy a.out shared libraries"},
	{"ustat", eperm, "legacy filesystem statistics"},
	{"sysfs", eperm, "legacy filesystem type information"},

	// Filesystem handles: bypass path-based checks (the "shocker" escape).
	{"open_by_handle_at", eperm, "opens files by handle, bypassing the mount namespace"},
	{"name_to_handle_at", eperm, "makes file handles for open_by_handle_at"},

	// Raw hardware access.
	{"iopl", eperm, "raises I/O privilege level"},
	{"ioperm", eperm, "grants I/O port access"},

	// The host's clocks are not namespaced.
	{"settimeofday", eperm, "sets the host clock"},
	{"clock_settime", eperm, "sets the host clock"},
	{"adjtimex", eperm, "tunes the host clock"},
	{"clock_adjtime", eperm, "tunes the host clock"},
}

// Argument filters (see the package documentation for the layout).
const (
	// cloneNewFlags are every CLONE_NEW* flag clone(2) takes: NEWNS,
	// NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID and NEWNET. (CLONE_NEWTIME
	// is only for unshare and clone3, which are denied.)
	cloneNewFlags = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 |
		0x10000000 | 0x20000000 | 0x40000000

	tiocsti   = 0x5412 // ioctl: push a byte into a terminal's input
	tioclinux = 0x541c // ioctl: virtual console tricks, including selection paste

	perLinux       = 0x0        // personality: the default
	personalityGet = 0xffffffff // personality: query only

	ipprotoMPTCP = 262 // socket protocol: Multipath TCP
)
