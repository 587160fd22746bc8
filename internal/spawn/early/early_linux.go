package early

import (
	"syscall"

	"github.com/pybox-dev/pybox/internal/cgroup/prime"
	"github.com/pybox-dev/pybox/internal/initbin/stamp"
	"github.com/pybox-dev/pybox/internal/runner/codecache"
	"github.com/pybox-dev/pybox/internal/spawn"
)

func init() {
	a := args()
	if !Wanted(a, getenv) || cgroup2Only() {
		return
	}
	// An init started ahead assumes the late cgroup join of cgroup v1's
	// memory controller (the native backend uses v2's when v2 has it).
	ahead := Ahead(a) && !v2Memory()
	var prepare func(*spawn.Init) bool
	if ahead {
		prepare = preSend
	}
	if p := program(); p != "" && spawn.Early(p, ahead, prepare) && procChildren() {
		// The run will join its cgroup late (cgroup v1): the kernel's
		// wait for a grace period starts now, not once the run's groups
		// exist (internal/native).
		go prime.Migration()
	}
}

// preSend puts the runner's compiled code on the input of an init started
// ahead, which starts the interpreter before pybox sends anything: the
// interpreter then loads the runner while pybox initialises (1-2.5 ms of a
// cold run here), not once pybox has sent it the code. The native backend
// takes such an init only if it would have sent the same file
// (spawn.Init.Code); a frame written in part spoils it.
func preSend(in *spawn.Init) bool {
	d := spawn.CacheDir()
	if d == "" {
		return true
	}
	src, err := codecache.PreSend(codecache.Dir(d), in.RunnerIn)
	in.Code = src
	return err == nil
}

// selfExe re-executes pybox as the init.
const selfExe = "/proc/self/exe"

// program is the init the native backend would start (internal/native's
// initProgram): the installed copy of the embedded init; pybox itself with
// PYBOX_INIT=self, in a build without an embedded init (go build, go
// install) and where the cache directory is mounted noexec; "" (no early
// init) while the embedded init is not installed yet, which the first run
// of a build does.
func program() string {
	d := spawn.CacheDir()
	switch {
	case getenv("PYBOX_INIT") == "self" || stamp.Value == "":
		return selfExe
	case d == "":
		return selfExe
	case noexec(d + "/init"):
		return selfExe
	}
	if p, ok := stamp.Installed(d + "/init"); ok {
		return p
	}
	return ""
}

// v2Memory says whether a hybrid host's cgroup v2 hierarchy (where
// systemd mounts it) has the memory controller, which internal/cgroup
// then prefers: no late join.
func v2Memory() bool {
	fd, err := syscall.Open("/sys/fs/cgroup/unified/cgroup.controllers", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	buf := make([]byte, 512)
	n, _ := syscall.Read(fd, buf)
	for _, w := range fields(buf[:max(n, 0)]) {
		if w == "memory" {
			return true
		}
	}
	return false
}

// fields splits b at spaces and newlines.
func fields(b []byte) []string {
	var out []string
	start := -1
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == ' ' || b[i] == '\n' {
			if start >= 0 {
				out = append(out, string(b[start:i]))
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// cgroup2Only says whether /sys/fs/cgroup is a cgroup v2 hierarchy alone.
// There a run's init is cloned straight into the run's group, which an
// early init, started before the group exists, could only join by
// migrating: a wait for an RCU grace period when runs are spaced.
func cgroup2Only() bool {
	var st syscall.Statfs_t
	return syscall.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == cgroup2Magic
}

// cgroup2Magic is CGROUP2_SUPER_MAGIC.
const cgroup2Magic = 0x63677270

// noexec says whether dir is on a file system mounted noexec, where the
// installed init cannot run (the native backend then re-executes pybox
// as the init, see internal/native).
func noexec(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Flags&stNoexec != 0
}

// stNoexec is ST_NOEXEC.
const stNoexec = 8

// procChildren says whether /proc/thread-self/children exists, which the
// native backend's late cgroup join needs.
func procChildren() bool {
	var st syscall.Stat_t
	return syscall.Stat("/proc/thread-self/children", &st) == nil
}

func getenv(k string) string {
	v, _ := syscall.Getenv(k)
	return v
}

// args reads this process's arguments from /proc/self/cmdline: package os,
// which has them as os.Args, is not initialised yet.
func args() []string {
	fd, err := syscall.Open("/proc/self/cmdline", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(fd, buf)
		if n <= 0 || err != nil {
			break
		}
		b = append(b, buf[:n]...)
	}
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		out = append(out, string(b[:i]))
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}

// aheadFlags are the `pybox run` flags that change the init's config from
// a default request's (initproc.AheadConfig).
var aheadFlags = []string{"mount", "file", "disk", "python", "env", "best-effort"}

// Ahead says whether args (a Wanted `pybox run`) set none of aheadFlags,
// so that its init may start the interpreter before its config comes
// (spawn.Options.Ahead). A false yes costs only speed: the native backend
// does not take an early init whose assumptions its config breaks.
func Ahead(args []string) bool {
	for i := 2; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		name, _, _, ok := flag(args[i])
		if !ok {
			continue
		}
		for _, f := range aheadFlags {
			if name == f {
				return false
			}
		}
	}
	return true
}

// flag splits a command-line flag (-name, --name, with =value or not);
// ok is false for anything else.
func flag(a string) (name, value string, hasValue, ok bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", "", false, false
	}
	name = a[1:]
	if name[0] == '-' {
		name = name[1:]
	}
	for j := 0; j < len(name); j++ {
		if name[j] == '=' {
			return name[:j], name[j+1:], true, true
		}
	}
	return name, "", false, true
}

// Wanted says whether args (os.Args) are a `pybox run` that will start a
// native sandbox: no other --backend, no help asked, and no
// PYBOX_EARLY_INIT=0 in the environment. It only reads
// the arguments, loosely: a wrong guess costs an init started for nothing
// (it exits with pybox) or a run started the usual way, nothing else.
func Wanted(args []string, getenv func(string) string) bool {
	if len(args) < 2 || args[1] != "run" || getenv("PYBOX_EARLY_INIT") == "0" {
		return false
	}
	for i := 2; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		name, value, hasValue, ok := flag(args[i])
		if !ok {
			continue
		}
		switch name {
		case "h", "help":
			return false
		case "backend":
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			if value != "native" {
				return false
			}
		}
	}
	return true
}
