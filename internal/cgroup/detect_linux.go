package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/pybox-dev/pybox/internal/cgroup/prime"
)

// required are the controllers [New] needs; cpuacct (v1) only feeds Stats.
var required = []string{"memory", "pids", "cpu"}

// hostPaths says where the host's files are. Tests point prefix at a fake
// root directory; production uses "".
type hostPaths struct {
	prefix    string // prepended to every absolute path read
	envParent string // PYBOX_CGROUP_PARENT
}

func (h hostPaths) read(p string) ([]byte, error) { return os.ReadFile(h.prefix + p) }

func (h hostPaths) exists(p string) bool { return fileExists(h.prefix + p) }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// plan is the result of detection: the public Info plus what New needs.
type plan struct {
	info    Info
	v2      bool
	missing []string // required controllers New cannot enforce
	fatal   string   // non-empty: New cannot work at all (with a hint)
	swapOn  bool     // /proc/swaps lists an active swap area

	// v1: parent dir per controller (…/pybox), and the unique hierarchies
	// (cpu and cpuacct are often co-mounted) that AddProc writes to.
	v1dir  map[string]string
	v1hier []string
	memsw  bool

	// v2: the parent dir and the chain of dirs, root first, whose
	// cgroup.subtree_control must enable the required controllers (the
	// last one is parent itself, created if missing).
	parent string
	chain  []string
}

// parseSelfCgroup maps each v1 controller (and "" for v2) to this
// process's cgroup path, from /proc/self/cgroup.
func parseSelfCgroup(data []byte) map[string]string {
	own := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own
}

// inMount converts a cgroup path to a directory under Mount m. A path
// outside m's root (a bind Mount of another subtree) maps to m's top.
func inMount(h hostPaths, m Mount, cgpath string) string {
	m.Point = h.prefix + m.Point
	if d, ok := prime.MountDir(m.Root, m.Point, cgpath); ok {
		return filepath.Clean(d)
	}
	return filepath.Clean(m.Point)
}

func hasOpt(m Mount, o string) bool {
	for _, x := range m.Options {
		if x == o {
			return true
		}
	}
	return false
}

// detect inspects the host described by h. It only reads files.
func detect(h hostPaths) (*plan, error) {
	mi, err := h.read("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: read mountinfo: %w", err)
	}
	sc, err := h.read("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup: read /proc/self/cgroup: %w", err)
	}
	if e := h.envParent; e != "" && (!filepath.IsAbs(e) || filepath.Clean(e) != e || e == "/") {
		return nil, fmt.Errorf("cgroup: PYBOX_CGROUP_PARENT=%q must be a clean absolute cgroup path other than /, like /pybox", e)
	}
	mounts := Mounts(mi)
	own := parseSelfCgroup(sc)
	p := &plan{}
	if sw, err := h.read("/proc/swaps"); err == nil {
		p.swapOn = len(strings.Split(strings.TrimSpace(string(sw)), "\n")) > 1
	}

	v1 := map[string]Mount{} // controller -> first Mount
	var v2 *Mount
	for i, m := range mounts {
		if m.FSType == "cgroup2" {
			if v2 == nil {
				v2 = &mounts[i]
			}
			continue
		}
		for _, c := range []string{"memory", "pids", "cpu", "cpuacct", "freezer", "cpuset", "devices", "blkio"} {
			if _, dup := v1[c]; !dup && hasOpt(m, c) {
				v1[c] = m
			}
		}
	}
	var v2ctrls []string
	if v2 != nil {
		b, _ := h.read(filepath.Join(v2.Point, "cgroup.controllers"))
		v2ctrls = strings.Fields(string(b))
	}
	switch {
	case len(v1) > 0 && v2 != nil:
		p.info.Mode = "hybrid"
	case len(v1) > 0:
		p.info.Mode = "v1"
	case v2 != nil:
		p.info.Mode = "v2"
	default:
		return nil, errors.New("cgroup: no cgroup filesystem is mounted: Mount cgroup2 at /sys/fs/cgroup")
	}
	// Use v2 when it has memory (the controller that cannot be split), else
	// v1 when it has it, else whichever exists, reporting what is missing.
	switch {
	case v2 != nil && contains(v2ctrls, "memory"):
		p.v2 = true
	case len(v1) > 0:
		p.v2 = false
	default:
		p.v2 = true
	}
	if p.v2 {
		detectV2(h, p, *v2, v2ctrls, own[""])
	} else {
		detectV1(h, p, v1, own)
	}
	sort.Strings(p.info.Controllers)
	return p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func detectV1(h hostPaths, p *plan, v1 map[string]Mount, own map[string]string) {
	p.info.Version = "v1"
	p.v1dir = map[string]string{}
	seen := map[string]bool{}
	var parents []string
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct"} {
		m, ok := v1[c]
		if !ok {
			if c == "cpuacct" {
				p.info.Problems = append(p.info.Problems,
					"cgroup v1 controller cpuacct is not mounted, so CPU time is not reported: Mount -t cgroup -o cpuacct cgroup /sys/fs/cgroup/cpuacct")
				continue
			}
			p.missing = append(p.missing, c)
			p.info.Problems = append(p.info.Problems, fmt.Sprintf(
				"cgroup v1 controller %s is not mounted: mkdir -p /sys/fs/cgroup/%[1]s && Mount -t cgroup -o %[1]s cgroup /sys/fs/cgroup/%[1]s (or boot without cgroup_disable=%[1]s)", c))
			continue
		}
		p.info.Controllers = append(p.info.Controllers, c)
		var dir string
		if h.envParent != "" {
			dir = filepath.Join(h.prefix+m.Point, h.envParent)
		} else {
			dir = filepath.Join(inMount(h, m, own[c]), "pybox")
		}
		p.v1dir[c] = dir
		if !seen[m.Point] {
			seen[m.Point] = true
			p.v1hier = append(p.v1hier, dir)
			parents = append(parents, c+"="+dir)
			if hasOpt(m, "ro") {
				p.info.Problems = append(p.info.Problems, fmt.Sprintf(
					"cgroup v1 hierarchy %s is mounted read-only: remount it read-write (in a container: give it a writable cgroup Mount)", m.Point))
				p.fatal = "cgroup v1 hierarchy " + m.Point + " is mounted read-only"
			}
		}
	}
	p.info.Parent = strings.Join(parents, ", ")
	if md, ok := p.v1dir["memory"]; ok {
		// The parent may not exist yet: its parent (the own cgroup) has
		// the same files.
		p.memsw = fileExists(filepath.Join(filepath.Dir(md), "memory.memsw.limit_in_bytes"))
		if !p.memsw && p.swapOn {
			p.info.Problems = append(p.info.Problems,
				"cgroup v1 cannot limit swap (no memory.memsw.limit_in_bytes) while swap is on, so --memory does not cover swap: boot with swapaccount=1, or swapoff -a")
		}
	}
}

func detectV2(h hostPaths, p *plan, m Mount, avail []string, ownPath string) {
	p.info.Version = "v2"
	for _, c := range []string{"memory", "pids", "cpu", "cpuset", "io", "hugetlb"} {
		if contains(avail, c) {
			p.info.Controllers = append(p.info.Controllers, c)
		}
	}
	for _, c := range required {
		if !contains(avail, c) {
			p.missing = append(p.missing, c)
			p.info.Problems = append(p.info.Problems, fmt.Sprintf(
				"cgroup v2 controller %s is not available at %s: boot without cgroup_disable=%[1]s and, on a hybrid host, without systemd.unified_cgroup_hierarchy=0", c, m.Point))
		}
	}
	if hasOpt(m, "ro") {
		p.fatal = "cgroup2 at " + m.Point + " is mounted read-only"
		p.info.Problems = append(p.info.Problems, p.fatal+": remount it read-write (in a container: run with a writable cgroup Mount, e.g. --cgroupns=private with rw /sys/fs/cgroup)")
		return
	}
	top := h.prefix + m.Point
	// The true root has no cgroup.type and no internal-process rule; the
	// top of a cgroup namespace in a container is not the true root.
	rootIsReal := !h.exists(filepath.Join(m.Point, "cgroup.type"))
	ownDir := inMount(h, m, ownPath)
	chainTo := func(dir string) []string {
		var c []string
		for d := dir; ; d = filepath.Dir(d) {
			c = append([]string{d}, c...)
			if d == top || len(d) <= len(top) {
				break
			}
		}
		return c
	}
	enabled := func(dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if err != nil {
			return false
		}
		f := strings.Fields(string(b))
		for _, c := range required {
			if !contains(f, c) {
				return false
			}
		}
		return true
	}
	switch {
	case h.envParent != "":
		p.parent = filepath.Join(top, h.envParent)
		p.chain = chainTo(p.parent)
	case ownDir == top && rootIsReal:
		p.parent = filepath.Join(top, "pybox")
		p.chain = []string{top, p.parent}
	case ownDir != top && enabled(filepath.Dir(ownDir)):
		// We are a leaf of a delegated subtree: use a sibling.
		p.parent = filepath.Join(filepath.Dir(ownDir), "pybox")
		p.chain = []string{p.parent}
	case rootIsReal:
		p.parent = filepath.Join(top, "pybox")
		p.chain = []string{top, p.parent}
		p.info.Problems = append(p.info.Problems, fmt.Sprintf(
			"sandbox cgroups go to %s, outside this process's cgroup %s (it holds processes, so it cannot delegate controllers), so limits on %[2]s do not cover them: to nest them, run pybox in a leaf of a delegated cgroup (systemd: Delegate=yes) or set PYBOX_CGROUP_PARENT", p.parent, ownPath))
	default:
		p.fatal = fmt.Sprintf("cgroup v2: this process's cgroup %s holds processes, so it cannot delegate controllers (no internal processes rule)", ownPath)
		p.info.Problems = append(p.info.Problems, p.fatal+
			": move the processes into a leaf first (mkdir /sys/fs/cgroup/init; for p in $(cat /sys/fs/cgroup/cgroup.procs); do echo $p > /sys/fs/cgroup/init/cgroup.procs; done), or set PYBOX_CGROUP_PARENT to a delegated cgroup with no processes")
	}
	p.info.Parent = p.parent
	if p.swapOn && ownDir != top && !fileExists(filepath.Join(ownDir, "memory.swap.max")) {
		p.info.Problems = append(p.info.Problems,
			"cgroup v2 cannot limit swap (no memory.swap.max) while swap is on, so --memory does not cover swap: boot with swapaccount=1, or swapoff -a")
	}
}

var (
	detectOnce sync.Once
	detected   *plan
	detectErr  error
)

func hostPlan() (*plan, error) {
	detectOnce.Do(func() {
		detected, detectErr = detect(hostPaths{envParent: os.Getenv("PYBOX_CGROUP_PARENT")})
	})
	return detected, detectErr
}

// Detect reports which cgroup version pybox uses on this host, where it puts
// its groups and what is missing. It only reads files, and it caches its
// answer for the life of the process. An error means cgroups cannot be used
// at all; missing pieces are listed in Info.Problems instead.
func Detect() (Info, error) {
	p, err := hostPlan()
	if err != nil {
		return Info{}, err
	}
	info := p.info
	info.Controllers = append([]string(nil), info.Controllers...)
	info.Problems = append([]string(nil), info.Problems...)
	return info, nil
}
