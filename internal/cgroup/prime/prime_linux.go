package prime

import (
	"errors"
	"runtime"
	"sync/atomic"
	"syscall"
)

// started is when Migration was last called, in Unix nanoseconds.
var started atomic.Int64

// Since returns how long ago Migration was last called, in nanoseconds.
// (Package time is not imported: package early, which imports this one,
// is initialised right after syscall, before time, see internal/spawn.)
func Since() int64 {
	t := started.Load()
	if t == 0 {
		return 1 << 62
	}
	return unixNano() - t
}

func unixNano() int64 {
	var tv syscall.Timeval
	_ = syscall.Gettimeofday(&tv)
	return tv.Nano()
}

// Migration makes the kernel's cgroup v1 migrations of the next few
// milliseconds fast, so that a one-shot run's late join (internal/native
// moves the interpreter into its group once it exists) does not wait for
// an RCU grace period while the interpreter, ready, waits for its code.
//
// Every migration takes the kernel's global cgroup_threadgroup_rwsem, a
// per-cpu rwsem, for writing: the first writer after the lock went unused
// for a while (~50 ms here) waits for an RCU grace period, 4-7 ms on an
// idle 2-core host and up to ~15 ms on a busy one, and writers that come
// soon after do not (0.01-0.1 ms). Migration is that first migration, made
// early and for nothing: it writes the calling thread's id to the tasks
// file of the v1 cgroup the thread is already in (the kernel takes the
// lock, then finds nothing to move). It blocks for the grace period,
// holding the cgroup mutex, which mkdir in cgroupfs and other migrations
// take (reads do not): call it on a goroutine of its own, where no mkdir
// of a group waits behind it on the critical path.
//
// It does nothing without a v1 hierarchy of the pids, memory or cpu
// controller (on cgroup v2 runs are cloned straight into their group,
// CLONE_INTO_CGROUP, and nothing migrates), and it refuses when the
// thread's cgroup is outside the hierarchy's mount (a bind of another
// subtree), where the write could only move the thread elsewhere. Errors
// only say that the priming did not happen; nothing depends on it.
func Migration() error {
	started.Store(unixNano())
	mi, err := readFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	ctrl, root, point, ok := v1Mount(mi)
	if !ok {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cg, err := readFile("/proc/thread-self/cgroup")
	if err != nil {
		return err
	}
	dir, ok := MountDir(root, point, ownPath(cg, ctrl))
	if !ok {
		return errors.New("cgroup: this thread's cgroup is not under the hierarchy's mount")
	}
	fd, err := syscall.Open(dir+"/tasks", syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	_, err = syscall.Write(fd, []byte(itoa(syscall.Gettid())))
	return err
}

func readFile(name string) (string, error) {
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer syscall.Close(fd)
	var b []byte
	buf := make([]byte, 16<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return "", err
		}
		if n == 0 {
			return string(b), nil
		}
		b = append(b, buf[:n]...)
	}
}

// v1Mount finds, in mountinfo's text, the mount of the first v1 hierarchy
// that has the pids, memory or cpu controller: the controller, the mount's
// root within the hierarchy and its mount point.
func v1Mount(mountinfo string) (ctrl, root, point string, ok bool) {
	best := 3
	for _, m := range Mounts(mountinfo) {
		if m.FSType != "cgroup" {
			continue
		}
		for _, o := range m.Options {
			for rank, c := range []string{"pids", "memory", "cpu"} {
				if o == c && rank < best {
					best, ctrl, root, point, ok = rank, c, m.Root, m.Point, true
				}
			}
		}
	}
	return ctrl, root, point, ok
}

// ownPath is the path, in /proc/self/cgroup's text, of the v1 hierarchy
// that has ctrl.
func ownPath(cgroup, ctrl string) string {
	for _, line := range split(cgroup, '\n') {
		parts := splitN(line, ':', 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range split(parts[1], ',') {
			if c == ctrl {
				return parts[2]
			}
		}
	}
	return ""
}

// MountDir is the directory of cgroup path under a mount of its hierarchy
// whose root (within the hierarchy) and mount point are given; false when
// path is empty, relative or outside the mount's root.
func MountDir(root, point, path string) (string, bool) {
	if path == "" || path[0] != '/' {
		return "", false
	}
	if root != "/" {
		if len(path) < len(root) || path[:len(root)] != root || (len(path) > len(root) && path[len(root)] != '/') {
			return "", false
		}
		path = path[len(root):]
	}
	if path == "/" {
		path = ""
	}
	return point + path, true
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
