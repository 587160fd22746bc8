package doctor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/spawn"
)

// nsFlags are the namespaces the native backend creates.
var nsFlags = []struct {
	name string
	flag uintptr
}{
	{"user", syscall.CLONE_NEWUSER},
	{"mount", syscall.CLONE_NEWNS},
	{"pid", syscall.CLONE_NEWPID},
	{"net", syscall.CLONE_NEWNET},
	{"ipc", syscall.CLONE_NEWIPC},
	{"uts", syscall.CLONE_NEWUTS},
	{"cgroup", syscall.CLONE_NEWCGROUP},
}

// startInNS really runs /bin/true in new namespaces, mapping the caller's
// ids to root inside, as the native backend does.
func startInNS(flags uintptr) error {
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 flags,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	return cmd.Run()
}

func checkUserNS() Item {
	c := Item{Name: NameUserNS, Required: true}
	var all uintptr
	var names []string
	for _, ns := range nsFlags {
		all |= ns.flag
		names = append(names, ns.name)
	}
	err := startInNS(all)
	if err == nil {
		// The namespaces work; now as a sandbox's init really starts:
		// the same clone flags and id maps (spawn.Start).
		if serr := startLikeInit(); serr != nil {
			c.Detail, c.Fix = mapDenied(serr, os.Geteuid())
			return c
		}
		c.OK = true
		c.Detail = "created " + strings.Join(names, ", ") + " namespaces with the sandbox's uid/gid map"
		return c
	}
	c.Detail = "cannot create namespaces: " + oneLine(err)
	// Find the first namespace that fails on its own (user is needed by
	// all of them when not root).
	if uerr := startInNS(syscall.CLONE_NEWUSER); uerr != nil {
		c.Detail = "cannot create a user namespace: " + oneLine(uerr)
	} else {
		for _, ns := range nsFlags[1:] {
			if err := startInNS(syscall.CLONE_NEWUSER | ns.flag); err != nil {
				c.Detail = fmt.Sprintf("user namespaces work, %s namespaces do not: %s", ns.name, oneLine(err))
				break
			}
		}
	}
	c.Fix = userNSFix(err)
	return c
}

// startLikeInit starts /bin/true as the native backend starts a sandbox's
// init, and waits for it.
func startLikeInit() error {
	in, err := spawn.Start(spawn.Options{Path: "/bin/true", RunnerIn: -1, CgroupFD: -1})
	if err != nil {
		return err
	}
	in.Close()
	var ws syscall.WaitStatus
	_, err = syscall.Wait4(in.Pid, &ws, 0, nil)
	return err
}

// mapDenied explains a failed start of an init when namespaces alone work:
// the sandbox's id map (its root and uid 1000 onto unused host ids) needs
// CAP_SETUID and CAP_SETGID over the host's user namespace, that is root.
func mapDenied(err error, euid int) (detail, fix string) {
	detail = fmt.Sprintf("namespaces work, but a sandbox's init cannot start: %s", oneLine(err))
	fix = "the error says why; `PYBOX_TRACE=1 pybox run -c 1` shows a real run's start"
	if euid != 0 || errors.Is(err, syscall.EPERM) {
		detail = fmt.Sprintf("namespaces work, but mapping the sandbox's uids (0 and %d onto host uids %d and %d) is not permitted: %s",
			spawn.SandboxUID, spawn.HostUIDBase, spawn.HostUIDBase+spawn.SandboxUID, oneLine(err))
		fix = "run pybox as root (the map needs CAP_SETUID and CAP_SETGID on the host), or use --backend wasm"
	}
	return detail, fix
}

func userNSFix(err error) string {
	switch {
	case readSysctl("user/max_user_namespaces") == "0":
		return "sysctl -w user.max_user_namespaces=15000"
	case readSysctl("kernel/unprivileged_userns_clone") == "0" && os.Geteuid() != 0:
		return "sysctl -w kernel.unprivileged_userns_clone=1"
	case readSysctl("kernel/apparmor_restrict_unprivileged_userns") == "1" && os.Geteuid() != 0:
		return "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give pybox an AppArmor profile with the userns permission"
	case errors.Is(err, syscall.EPERM) && seccompMode() != "0":
		return "this process runs under a seccomp filter that forbids namespaces (a container?): run it with --security-opt seccomp=unconfined, or use the gvisor backend"
	case errors.Is(err, syscall.EINVAL):
		return "the kernel lacks some namespaces: build it with CONFIG_USER_NS, CONFIG_PID_NS, CONFIG_NET_NS, CONFIG_IPC_NS, CONFIG_UTS_NS and CONFIG_CGROUPS"
	}
	return "enable unprivileged user namespaces (CONFIG_USER_NS, user.max_user_namespaces > 0), or run pybox as root"
}

// seccompMode is the "Seccomp:" field of /proc/self/status: 0 none,
// 1 strict, 2 filter; "" when unknown.
func seccompMode() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func checkSeccomp() Item {
	c := Item{Name: NameSeccomp, Required: true}
	const fix = "use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER"
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		c.Detail = "prctl(PR_GET_SECCOMP): " + err.Error()
		c.Fix = fix
		return c
	}
	actions := readSysctl("kernel/seccomp/actions_avail")
	if actions == "" {
		// Old kernels lack the file. seccomp(SECCOMP_SET_MODE_STRICT, 1,
		// NULL) fails with EINVAL (flags must be 0) only when the syscall
		// exists, and never changes the caller.
		_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_STRICT, 1, 0)
		if errno != unix.EINVAL {
			c.Detail = "the seccomp syscall is not available: " + errno.Error()
			c.Fix = fix
			return c
		}
		c.OK = true
		c.Detail = "filter mode available"
		return c
	}
	have := strings.Fields(actions)
	var missing []string
	for _, a := range []string{"errno", "kill_process", "allow"} {
		if !contains(have, a) {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		c.Detail = "filter actions " + strings.Join(missing, ", ") + " are missing (have: " + actions + ")"
		c.Fix = "use Linux 4.14 or later with CONFIG_SECCOMP_FILTER"
		return c
	}
	c.OK = true
	c.Detail = "filter mode, actions: " + actions
	if seccompMode() == "2" {
		c.Detail += " (this process already runs under a filter; pybox's stacks on top)"
	}
	return c
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// landlockErrataScope is erratum 2 (signal scoping fix); go-landlock treats
// an ABI 6+ kernel without it as ABI 5.
const landlockErrataScope = 0x2

func checkLandlock() (Item, int, []string) {
	c := Item{Name: NameLandlock, Required: true}
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	switch errno {
	case 0:
	case unix.ENOSYS:
		c.Detail = "the kernel has no Landlock (ENOSYS)"
		c.Fix = "use Linux 5.13 or later built with CONFIG_SECURITY_LANDLOCK"
		return c, 0, nil
	case unix.EOPNOTSUPP:
		c.Detail = "Landlock is built in but disabled at boot (EOPNOTSUPP)"
		c.Fix = "add landlock to the lsm= kernel parameter, e.g. lsm=landlock,lockdown,yama,apparmor,bpf"
		return c, 0, nil
	default:
		c.Detail = "landlock_create_ruleset: " + errno.Error()
		c.Fix = "use Linux 5.13 or later with Landlock enabled"
		return c, 0, nil
	}
	abi := int(v)
	features := []string{"filesystem"}
	if abi >= 4 {
		features = append(features, "network")
	}
	scopeNote := ""
	if abi >= 6 {
		errata, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_ERRATA)
		if errno == 0 && errata&landlockErrataScope != 0 {
			features = append(features, "scope")
		} else {
			scopeNote = "; scope left out: the kernel lacks the signal scoping fix (erratum 2)"
		}
	}
	c.OK = true
	c.Detail = fmt.Sprintf("ABI %d: %s%s", abi, strings.Join(features, ", "), scopeNote)
	if abi < 6 {
		c.Detail += " (network rules need ABI 4, scopes ABI 6)"
	}
	return c, abi, features
}
