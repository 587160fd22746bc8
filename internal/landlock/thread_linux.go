package landlock

import (
	"fmt"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// fileRights are the rights that apply to a single file (the kernel rejects
// directory-only rights in a rule for a file).
const fileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile |
	ll.AccessFSTruncate | ll.AccessFSIoctlDev

// readRights are granted on RO paths.
const readRights = ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir

// restrictThisThread enforces cfg's ruleset on the calling OS thread only,
// with one landlock_restrict_self call: no psx, no stop-the-world, and it
// works in cgo binaries. The caller must hold runtime.LockOSThread and start
// the restricted children from this thread; they inherit the domain.
//
// It is hand-rolled over go-landlock's syscall package because go-landlock
// only offers all-threads enforcement, which costs a signal round trip per
// OS thread on every sandbox start (measured: 0.3 ms idle, many ms on a
// loaded 2-core host) for threads the sandbox never uses.
func restrictThisThread(c Config, cfg landlock.Config) error {
	handled := uint64(cfg.HandledAccessFS)
	attr := ll.RulesetAttr{
		HandledAccessFS:  handled,
		HandledAccessNet: uint64(cfg.HandledAccessNet),
		Scoped:           uint64(cfg.Scoped),
	}
	fd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return fmt.Errorf("landlock: create ruleset: %w", err)
	}
	defer unix.Close(fd)
	add := func(path string, rights uint64) error {
		pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("landlock: %s: %w", path, err)
		}
		defer unix.Close(pfd)
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err != nil {
			return fmt.Errorf("landlock: %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			rights &= fileRights
		}
		rights &= handled
		if rights == 0 {
			return nil
		}
		if err := ll.LandlockAddPathBeneathRule(fd, &ll.PathBeneathAttr{AllowedAccess: rights, ParentFd: pfd}, 0); err != nil {
			return fmt.Errorf("landlock: rule for %s: %w", path, err)
		}
		return nil
	}
	for _, p := range c.RO {
		if err := add(p, readRights); err != nil {
			return err
		}
	}
	for _, p := range c.ROFiles {
		if err := add(p, readRights); err != nil {
			return err
		}
	}
	for _, p := range c.RW {
		if err := add(p, handled); err != nil {
			return err
		}
	}
	for _, p := range c.RWFiles {
		if err := add(p, handled); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("landlock: no_new_privs: %w", err)
	}
	if err := ll.LandlockRestrictSelf(fd, 0); err != nil {
		return fmt.Errorf("landlock: restrict_self: %w", err)
	}
	return nil
}

// PlanMasks decides, for this host's ABI, what Restrict(c) would enforce,
// without enforcing anything. Without c.BestEffort a requested layer the
// host lacks is an error, as in Restrict.
func PlanMasks(c Config) (Masks, Info, error) {
	cfg, info, err := plan(c, ABI())
	if err != nil {
		return Masks{}, info, err
	}
	if len(info.Enforced) == 0 {
		return Masks{}, info, nil
	}
	return Masks{
		HandledFS:  uint64(cfg.HandledAccessFS),
		HandledNet: uint64(cfg.HandledAccessNet),
		Scoped:     uint64(cfg.Scoped),
		ReadRights: readRights & uint64(cfg.HandledAccessFS),
		FileRights: fileRights,
	}, info, nil
}
