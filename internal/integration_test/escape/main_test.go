package escape

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/gvisor"
)

// Sentinels planted in the test process before any sandbox starts. Neither
// may ever be visible inside a sandbox.
var (
	// sentinelEnv is the name of an environment variable whose value is
	// sentinelToken.
	sentinelEnv   = "PYBOX_ESCAPE_SENTINEL"
	sentinelToken string
	// sentinelFDPath is a host file held open, without close-on-exec, at
	// sentinelFDs.
	sentinelFDPath string
	sentinelFDs    []int
)

func TestMain(m *testing.M) {
	// The native backend re-executes this test binary as the sandbox init.
	pybox.Init()
	os.Exit(realMain(m))
}

func realMain(m *testing.M) int {
	sentinelToken = "sentinel-" + token()
	os.Setenv(sentinelEnv, sentinelToken)
	dir, err := os.MkdirTemp("", "pybox-escape-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "escape: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// A private TMPDIR (world-traversable, as /tmp is), so that the
	// wasm backend's per-run directories can be counted afterwards
	// without seeing other processes' ones.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil || os.Chmod(dir, 0o755) != nil {
		fmt.Fprintln(os.Stderr, "escape: temp dir:", err)
		return 1
	}
	os.Setenv("TMPDIR", tmp)
	sentinelFDPath = filepath.Join(dir, "leaked-fd-"+sentinelToken)
	if err := plantFDs(sentinelFDPath); err != nil {
		fmt.Fprintln(os.Stderr, "escape: plant fds:", err)
		return 1
	}
	mountsBefore := mountSet()

	code := m.Run()

	// Whole-package host checks, after every run has returned and the
	// backends are closed (the wasm pool's instances end on Close).
	var problems []string
	if err := sandbox().Close(context.Background()); err != nil {
		problems = append(problems, "close: "+err.Error())
	}
	if forkUsed.Load() {
		if err := forkSandbox().Close(context.Background()); err != nil {
			problems = append(problems, "close the fork server: "+err.Error())
		}
	}
	for _, p := range sandboxProcesses() {
		problems = append(problems, "sandbox process still running on the host: "+p)
	}
	// gvisor: runsc, its sentry and gofer carry the container id
	// "pybox-<pid>-<n>" or the run directory "<dir>/<pid>-run<n>".
	gvDir := gvisor.OptionsFromEnv(os.Getenv).Dir
	if gvDir == "" {
		gvDir = gvisor.DefaultDir
	}
	for _, s := range []string{fmt.Sprintf("pybox-%d-", os.Getpid()), filepath.Join(gvDir, fmt.Sprintf("%d-run", os.Getpid()))} {
		for _, p := range processesWith(s) {
			problems = append(problems, "gVisor process still running on the host: "+p)
		}
	}
	runDirs, _ := filepath.Glob(filepath.Join(gvDir, fmt.Sprintf("%d-run*", os.Getpid())))
	for _, d := range runDirs {
		problems = append(problems, "gVisor run directory left behind: "+d)
	}
	// wasm: per-run directories under TMPDIR.
	left, _ := filepath.Glob(filepath.Join(tmp, "pybox-wasm-*"))
	for _, d := range left {
		problems = append(problems, "wasm run directory left behind: "+d)
	}
	for _, d := range leftoverCgroups() {
		problems = append(problems, "cgroup left behind: "+d)
	}
	for _, mnt := range newMounts(mountsBefore, mountSet()) {
		problems = append(problems, "new mount in the host's mount namespace: "+mnt)
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: escape: the host changed:\n\t"+strings.Join(problems, "\n\t"))
		return 1
	}
	return code
}

// plantFDs opens path twice without close-on-exec: once at whatever number
// the kernel picks and once at a high fixed number.
func plantFDs(path string) error {
	if err := os.WriteFile(path, []byte(sentinelToken), 0o600); err != nil {
		return err
	}
	fd, err := unix.Open(path, unix.O_RDONLY, 0) // no O_CLOEXEC on purpose
	if err != nil {
		return err
	}
	if err := unix.Dup3(fd, 77, 0); err != nil {
		return err
	}
	for _, f := range []int{fd, 77} {
		if _, err := unix.FcntlInt(uintptr(f), unix.F_SETFD, 0); err != nil {
			return err
		}
	}
	sentinelFDs = []int{fd, 77}
	return nil
}

func mountSet() map[string]bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	set := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 5 {
			// Drop the mount and parent ids, which change on remounts by
			// others; keep root, mount point, options and source.
			set[strings.Join(f[2:], " ")] = true
		}
	}
	return set
}

// otherGvisorRun matches a mount of a gVisor run directory, capturing the
// pid of the pybox process that owns it.
var otherGvisorRun = regexp.MustCompile(` /run/pybox-gvisor[^/ ]*/(\d+)-`)

func newMounts(before, after map[string]bool) []string {
	var out []string
	for m := range after {
		if before[m] {
			continue
		}
		// Another test binary's gVisor runs (go test runs packages in
		// parallel) mount their tmpfs in the same namespace.
		if g := otherGvisorRun.FindStringSubmatch(m); g != nil && g[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
