package require

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

var userNSErr = sync.OnceValue(func() error {
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	return cmd.Run()
})

// LandlockABI returns the host's Landlock ABI version, or 0 without Landlock.
// Like go-landlock, it reports 5 for a kernel of ABI 6 or later that lacks
// the signal scoping fix (erratum 2).
func LandlockABI() int {
	return landlockABI()
}

var landlockABI = sync.OnceValue(func() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	if v >= 6 {
		errata, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_ERRATA)
		if errno != 0 || errata&0x2 == 0 {
			v = 5
		}
	}
	return int(v)
})

func seccompSupported() bool {
	// PR_GET_SECCOMP fails with EINVAL on a kernel without CONFIG_SECCOMP;
	// seccomp(SECCOMP_SET_MODE_STRICT, 1, NULL) fails with EINVAL (flags must
	// be 0) only when the seccomp syscall exists.
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		return false
	}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_STRICT, 1, 0)
	return errors.Is(errno, unix.EINVAL)
}
