package escape

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/gvisor"
	"github.com/pybox-dev/pybox/internal/testing/require"
	"github.com/pybox-dev/pybox/internal/wasm"
)

// backends are every backend the suite runs on, in table order.
// native-fork is the native backend with Options.ForkServer: every
// execution forked from a warm template.
var backends = []string{"native", "native-fork", "gvisor", "wasm"}

// Unless a case says otherwise, the fork server must give what native
// gives: it promises every guarantee of the cold path.
func init() {
	for i := range cases {
		if _, ok := cases[i].want["native-fork"]; !ok {
			cases[i].want["native-fork"] = "as native (forked from a warm template)"
		}
	}
}

// escapeCase is one attack, run on every backend.
type escapeCase struct {
	name string
	// want says, for each backend, what the attack gets there (and why
	// that is safe when it differs from native). "n/a: why" means the
	// attack cannot be expressed on that backend: the case is skipped
	// there, with the reason.
	want map[string]string
	run  func(t *testing.T, b *sb)
}

// na marks a case as not applicable on a backend.
func na(reason string) string { return "n/a: " + reason }

const (
	naNoProcesses = "WASI has no processes, fork or signals"
	naNoCtypes    = "no ctypes and no system calls in WASI: the guest can call only the WASI imports pybox implements"
	naNoProc      = "WASI has no /proc, /dev or /sys (read-host-files checks that their paths do not exist)"
)

// cases is the suite: every attack, with what each backend must give.
var cases = []escapeCase{
	{"read-host-files", map[string]string{
		"native": "every host path denied: ENOENT (not in the sandbox's root) or EACCES",
		"gvisor": "every host path denied: ENOENT; EACCES for /sys (an empty mode-0 tmpfs: runsc always mounts something there)",
		"wasm":   "every host path denied: ENOENT or ENOTCAPABLE (only /work, /tmp and the stdlib exist)",
	}, testReadHostFiles},
	{"write-runtime-dirs", map[string]string{
		"native": "EROFS/EACCES for /, /usr, /etc, /proc, /dev, /run; /work and /tmp writable; host unchanged",
		"gvisor": "as native",
		"wasm":   "ENOTCAPABLE (nothing outside the preopened /work, /tmp and read-only stdlib; chmod is a wasi-libc stub that changes nothing); host unchanged",
	}, testWriteRuntimeDirs},
	{"symlinks-in-output-files", map[string]string{
		"native": "symlinks, fifos and hard links are never collected as files; no host content",
		"gvisor": "as native",
		"wasm":   "symlink, mkfifo and link fail (not in WASI); only regular files collected",
	}, testSymlinksInOutputFiles},
	{"input-names-dotdot", map[string]string{
		"native": "input-error before any sandbox starts (one validator for every backend)",
		"gvisor": "as native",
		"wasm":   "as native",
	}, testInputNamesWithDotDot},
	{"disk-fill", map[string]string{
		"native": "ENOSPC at the disk cap in /work, /tmp and /dev/shm (size-capped tmpfs)",
		"gvisor": "as native (host tmpfs mounts: gVisor's own tmpfs ignores size=)",
		"wasm":   "EIO (wazero has no ENOSPC) at the disk cap in /work and /tmp; no /dev/shm",
	}, testDiskFill},
	{"devices", map[string]string{
		"native": "/dev holds null zero full random urandom shm and fd links only; mknod EPERM",
		"gvisor": "as native, plus runsc's empty devpts at /dev/pts; device nodes are keys into the sentry's own devices, never host devices",
		"wasm":   na(naNoProc),
	}, testDevices},
	{"dangerous-syscalls", map[string]string{
		"native": "every call fails: EPERM from the seccomp filter (ENOSYS for clone3)",
		"gvisor": "every call fails in the sentry (ENOSYS, EPERM, ...) or succeeds only inside it (unshare of a user namespace, ptrace(TRACEME), io_uring_setup, a synthetic syslog): see syscallWants",
		"wasm":   na(naNoCtypes),
	}, testDangerousSyscalls},
	{"host-env", map[string]string{
		"native": "no host variable visible, to the code or its children",
		"gvisor": "as native",
		"wasm":   "as native (no children)",
	}, testHostEnvDoesNotLeak},
	{"fds", map[string]string{
		"native": "only 0-2 and the runner's channel (>= 100, close-on-exec); host fds without close-on-exec not inherited",
		"gvisor": "as native (the runner moves its path-mode channel fds to >= 100)",
		"wasm":   na("WASI fds are wazero's own handles (stdio, preopened directories); no host fd can be addressed"),
	}, testFDsDoNotLeak},
	{"namespaces", map[string]string{
		"native": "every namespace the code is in (user, pid, mnt, net, ipc, uts, cgroup) is a new one, none the host's",
		"gvisor": na("the sentry's /proc/self/ns has user and pid only; the sentry is the boundary, runsc's own namespaces are the host's concern"),
		"wasm":   na(naNoProc),
	}, testNamespaces},
	{"proc-only-sandbox", map[string]string{
		"native": "/proc shows only the sandbox's processes and mounts; only lo; own hostname",
		"gvisor": "as native (the sentry's /proc); /sys is the empty tmpfs, not the host's",
		"wasm":   na(naNoProc),
	}, testProcShowsOnlySandbox},
	{"daemons-die", map[string]string{
		"native": "setsid/double-fork daemons die with the run",
		"gvisor": "as native",
		"wasm":   na(naNoProcesses),
	}, testDaemonsDie},
	{"signals-to-host", map[string]string{
		"native": "kill and pidfd_open of host pids fail (ESRCH: other pid namespace)",
		"gvisor": "as native (the sentry's pid namespace)",
		"wasm":   na(naNoProcesses),
	}, testSignalsToHost},
	{"kill-all", map[string]string{
		"native": "kill(-1) reaches only the sandbox's own processes; status killed",
		"gvisor": "as native",
		"wasm":   na(naNoProcesses),
	}, testKillAll},
	{"credentials", map[string]string{
		"native": "uid/gid 1000, no groups; setuid family EPERM; all capability sets 0; NoNewPrivs 1; Seccomp 2; /usr nosuid",
		"gvisor": "as native, except: the sentry reports no CapAmb and no Seccomp mode (the code's syscalls never reach the host kernel)",
		"wasm":   na("WASI has no users, credentials or capabilities"),
	}, testCredentials},
	{"landlock", map[string]string{
		"native": "Landlock enforced and reported; TCP bind EACCES (ABI >= 4)",
		"gvisor": na("Landlock is a host-kernel LSM; the code's system calls are served by the sentry (which runs under runsc's own seccomp filter)"),
		"wasm":   na("no system calls, so no host LSM applies; WASI has no sockets"),
	}, testLandlock},
	{"cancel-kills-everything", map[string]string{
		"native": "cancelling the context kills the run and its children: status killed",
		"gvisor": "as native (the whole runsc cgroup is killed)",
		"wasm":   "status killed (wazero closes the module); no processes to leave",
	}, testCancelKillsEverything},
	{"fork-bomb", map[string]string{
		"native": "fork fails with EAGAIN at the pids limit; the run ends at its timeout",
		"gvisor": "fork fails with EAGAIN at the pids limit (RLIMIT_NPROC in the sentry); the retrying bomb then grows the ptrace platform's host tasks until the host backstop stops the run: status killed (or timeout if that comes first)",
		"wasm":   na(naNoProcesses),
	}, testForkBomb},
	{"memory-bomb-interpreter", map[string]string{
		"native": "memory-limit; peak within the limit",
		"gvisor": "memory-limit; peak within the limit plus gvisor.MemoryOverhead (the sentry and gofer share the cgroup)",
		"wasm":   "memory-limit (memory.grow refused past the limit); peak within the limit",
	}, testMemoryBomb(memInterpreter)},
	{"memory-bomb-child", map[string]string{
		"native": "memory-limit: the child is in the same cgroup",
		"gvisor": "as native, within the limit plus gvisor.MemoryOverhead",
		"wasm":   na(naNoProcesses),
	}, testMemoryBomb(memChild)},
	{"memory-bomb-tmpfs", map[string]string{
		"native": "memory-limit: tmpfs pages are charged to the run's cgroup",
		"gvisor": "as native, within the limit plus gvisor.MemoryOverhead",
		"wasm":   na("/work and /tmp are host directories capped by the disk limit, not memory (see disk-fill)"),
	}, testMemoryBomb(memTmpfs)},
	{"output-flood", map[string]string{
		"native": "output-limit; stdout and stderr each cut at the limit",
		"gvisor": "as native",
		"wasm":   "as native",
	}, testOutputFlood(floodPython)},
	{"output-flood-child", map[string]string{
		"native": "output-limit: a child's output goes through the same capped pipes",
		"gvisor": "as native",
		"wasm":   na(naNoProcesses),
	}, testOutputFlood(floodChild)},
	{"cpu-spin", map[string]string{
		"native": "timeout, whether spinning, sleeping or ignoring signals (SIGKILL of the cgroup)",
		"gvisor": "as native",
		"wasm":   "timeout (wazero stops even a spinning guest); no signals to ignore",
	}, testCPUSpin(spinPython)},
	{"cpu-spin-children", map[string]string{
		"native": "timeout; every child dies with the cgroup",
		"gvisor": "as native",
		"wasm":   na(naNoProcesses),
	}, testCPUSpin(spinChildren)},
	{"concurrent-runs", map[string]string{
		"native": "run B sees none of run A's files, abstract socket or processes",
		"gvisor": "as native (one sentry per run)",
		"wasm":   "as native (one module instance and fresh directories per run; no sockets or processes)",
	}, testConcurrentRuns},
	{"loopback-to-host", map[string]string{
		"native": "TCP to the host's 127.0.0.1 and ::1 and the host's abstract socket fail (own network namespace); nothing reaches the host",
		"gvisor": "as native (--network=none: the sentry's own loopback)",
		"wasm":   "every socket call fails (WASI preview 1 cannot create sockets)",
	}, testLoopbackToHost},
}

// TestEscape runs every case on every backend. A backend this host cannot
// run is skipped, or fails under PYBOX_REQUIRE_ISOLATION=1.
// PYBOX_ESCAPE_BACKEND (a comma-separated list) narrows the backends.
func TestEscape(t *testing.T) {
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			if only := os.Getenv("PYBOX_ESCAPE_BACKEND"); only != "" && !slices.Contains(strings.Split(only, ","), name) {
				t.Skipf("PYBOX_ESCAPE_BACKEND=%s", only)
			}
			b := &sb{name: name}
			b.require(t)
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					if reason, ok := strings.CutPrefix(c.want[name], "n/a: "); ok {
						t.Skip("not applicable: " + reason)
					}
					t.Parallel()
					c.run(t, b)
				})
			}
		})
	}
}

// require skips (fails under PYBOX_REQUIRE_ISOLATION=1) when this host
// cannot run the backend. `make test` installs runsc and builds python.wasm.
func (b *sb) require(t *testing.T) {
	t.Helper()
	switch b.name {
	case "native", "native-fork":
		require.Feature(t, runtime.GOOS == "linux", "the native backend needs Linux")
		require.Root(t)
		require.UserNS(t)
		require.Python(t)
	case "gvisor":
		err := gvisor.Available(gvisor.OptionsFromEnv(os.Getenv))
		require.Feature(t, err == nil, "the gvisor backend cannot run here: %v", err)
		require.Python(t)
	case "wasm":
		_, err := wasm.FindDir()
		require.Feature(t, err == nil, "the wasm backend cannot run here: %v", err)
	default:
		t.Fatalf("unknown backend %q", b.name)
	}
}

// TestTableComplete: every case says what every backend gives.
func TestTableComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Errorf("case %q appears twice", c.name)
		}
		seen[c.name] = true
		for _, b := range backends {
			if strings.TrimSpace(c.want[b]) == "" {
				t.Errorf("case %q has no expectation for backend %s", c.name, b)
			}
		}
		if len(c.want) != len(backends) {
			t.Errorf("case %q names backends %v, want exactly %v", c.name, c.want, backends)
		}
	}
}

// docTable renders the table as markdown for docs/security.md.
func docTable() string {
	var sb strings.Builder
	sb.WriteString("| case | " + strings.Join(backends, " | ") + " |\n|---|" + strings.Repeat("---|", len(backends)) + "\n")
	for _, c := range cases {
		row := []string{"`" + c.name + "`"}
		for _, b := range backends {
			row = append(row, strings.ReplaceAll(c.want[b], "|", `\|`))
		}
		sb.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return sb.String()
}

const (
	docPath     = "../../../docs/security.md"
	docBegin    = "<!-- escape-table: generated by TestSecurityDoc, do not edit -->\n"
	docEnd      = "<!-- /escape-table -->\n"
	docUpdating = "PYBOX_UPDATE_DOC"
)

// TestSecurityDoc keeps the table in docs/security.md equal to cases.
// PYBOX_UPDATE_DOC=1 rewrites it.
func TestSecurityDoc(t *testing.T) {
	b, err := os.ReadFile(docPath)
	require.NoError(t, err)
	doc := string(b)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	require.True(t, i >= 0 && j > i, "docs/security.md has no %q ... %q section", docBegin, docEnd)
	want := doc[:i] + docBegin + docTable() + docEnd + doc[j+len(docEnd):]
	if want == doc {
		return
	}
	if os.Getenv(docUpdating) == "1" {
		require.NoError(t, os.WriteFile(docPath, []byte(want), 0o644))
		return
	}
	t.Errorf("the escape table in docs/security.md is out of date: run %s=1 go test -run TestSecurityDoc ./internal/integration_test/escape/", docUpdating)
}
