package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// cfsPeriod is the CFS period (µs) used for CPU quotas, the kernel default.
const cfsPeriod = 100000

// deleteWait bounds how long Kill and Delete wait for processes to exit.
const deleteWait = 5 * time.Second

// Group is one run's cgroup. Its methods are safe for concurrent use.
type Group struct {
	name   string
	v2     bool
	suffix string // "/<parent base>/<name>": how /proc/<pid>/cgroup names it

	// dirs are the group's directories: v2 one; v1 one per hierarchy,
	// memory first.
	dirs []string
	// v1 per-controller directories ("" when absent) and whether
	// memory.memsw.* exists.
	mem, pids, cpu, acct string
	memsw                bool

	mu      sync.Mutex
	fd      int // v2 directory fd, -1 when closed or on v1
	deleted bool

	// files are the counter files Stats and Reuse read and write, and
	// the cgroup.procs files ProcsFiles hands out, kept open ("r:" or
	// "w:" and the path -> fd); counters are read with pread at offset
	// 0, which makes the kernel generate a file's text anew. A
	// fork-server group serves thousands of executions, and opening and
	// closing its ~20 files every time was a fifth of the supervisor's
	// CPU per execution. cgroup.procs is never read through a kept fd:
	// on v1 that can return a pid list cached up to a second. Closed by
	// Delete.
	fmu   sync.Mutex
	files map[string]int
}

// v2setup caches that the v2 parent chain has its controllers enabled.
var v2setup struct {
	mu   sync.Mutex
	done map[string]bool // parent dir -> set up
}

// New creates the group <parent>/<name> (see the package doc for where the
// parent is) and applies l. Every one of memory, pids and cpu must be
// enforceable, else New returns an error naming what is missing. The name
// must be unique on the host; [RunName] makes one.
//
// Groups are made with plain mkdir/open/write/close syscalls instead of
// github.com/containerd/cgroups/v3, for two measured reasons (2-core 6.18
// v1/v2 hybrid host, 2000 runs, limits on memory+swap, pids and cpu):
//
//   - Speed. New + AddProc + Delete costs about 215 µs here
//     (BenchmarkLifecycle 232 µs minus one extra move of 18 µs), of which
//     the kernel's mkdir+rmdir of the four v1 groups is about 125 µs. The
//     same work through cgroup1.New/AddProc/Delete with a custom
//     memory/pids/cpu/cpuacct hierarchy costs about 590 µs (New 148,
//     AddProc 55, Delete 390: Delete walks the tree for processes and uses
//     os.RemoveAll), and its Delete refuses a non-empty group instead of
//     killing it.
//   - Dependencies. Both cgroup1 and cgroup2 import go-systemd/dbus,
//     godbus, cilium/ebpf and containerd/log, none of which pybox needs.
func New(name string, l Limits) (*Group, error) {
	p, err := hostPlan()
	if err != nil {
		return nil, err
	}
	return newGroup(p, required, name, l)
}

// newGroup is New against plan p, enabling ctrls on v2 (tests pass none to
// exercise the v2 code on a controller-less cgroup2 mount).
func newGroup(p *plan, ctrls []string, name string, l Limits) (*Group, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if l.MemoryBytes < 0 || l.Pids < 0 || l.CPUs < 0 || l.CPUs > 1e6 {
		return nil, fmt.Errorf("cgroup: invalid limits %+v: must not be negative", l)
	}
	if p.fatal != "" {
		return nil, fmt.Errorf("cgroup: %s (run pybox doctor)", p.fatal)
	}
	if len(p.missing) > 0 && len(ctrls) > 0 {
		return nil, fmt.Errorf("cgroup: cannot enforce limits: %s controller missing on cgroup %s (run pybox doctor)",
			strings.Join(p.missing, ", "), p.info.Version)
	}
	if p.v2 {
		return newV2(p, ctrls, name, l)
	}
	return newV1(p, name, l)
}

func newV1(p *plan, name string, l Limits) (*Group, error) {
	if l.MemoryBytes > 0 && !p.memsw && p.swapOn && !l.AllowSwap {
		return nil, errors.New("cgroup: cannot limit memory+swap: no memory.memsw.limit_in_bytes (boot with swapaccount=1 or swapoff -a)")
	}
	g := &Group{name: name, fd: -1, memsw: p.memsw}
	g.suffix = "/" + filepath.Base(p.v1dir["memory"]) + "/" + name
	for _, parent := range p.v1hier {
		d := filepath.Join(parent, name)
		if err := mkdir(parent, d); err != nil {
			g.removeDirs()
			return nil, err
		}
		g.dirs = append(g.dirs, d)
	}
	at := func(c string) string {
		if d, ok := p.v1dir[c]; ok {
			return filepath.Join(d, name)
		}
		return ""
	}
	g.mem, g.pids, g.cpu, g.acct = at("memory"), at("pids"), at("cpu"), at("cpuacct")
	// memory.oom_control is left at oom_kill_disable 0: the kernel kills
	// the biggest task at once, and its oom_kill counter (Linux 4.13+,
	// counted in the victim's memcg and its ancestors, so a host-level OOM
	// of a sandbox task counts too) makes Stats.OOMKills reliable; the
	// backend then kills the rest of the tree with Kill. v1 has no
	// oom.group, and oom_kill_disable 1 would leave the tasks hanging
	// until a userspace listener reacted.
	err := func() error {
		if l.MemoryBytes > 0 {
			v := strconv.FormatInt(l.MemoryBytes, 10)
			// limit first: memsw must never be below it.
			if err := writeFile(g.mem, "memory.limit_in_bytes", v); err != nil {
				return err
			}
			if g.memsw {
				if err := writeFile(g.mem, "memory.memsw.limit_in_bytes", v); err != nil {
					return err
				}
			}
		}
		if l.Pids > 0 {
			if err := writeFile(g.pids, "pids.max", strconv.Itoa(l.Pids)); err != nil {
				return err
			}
		}
		if l.CPUs > 0 {
			if err := writeFile(g.cpu, "cpu.cfs_quota_us", strconv.FormatInt(quota(l.CPUs), 10)); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		g.removeDirs()
		return nil, err
	}
	return g, nil
}

// quota converts CPUs to a CFS quota in µs per cfsPeriod (kernel minimum 1 ms).
func quota(cpus float64) int64 {
	q := int64(cpus * cfsPeriod)
	if q < 1000 {
		q = 1000
	}
	return q
}

// mkdir creates d, creating its parent on ENOENT. EEXIST is an error: names
// are unique, and reusing a stale group would inherit its counters.
func mkdir(parent, d string) error {
	err := unix.Mkdir(d, 0o755)
	if err == unix.ENOENT {
		if err = os.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("cgroup: create %s: %w", parent, err)
		}
		err = unix.Mkdir(d, 0o755)
	}
	if err == unix.EEXIST {
		return fmt.Errorf("cgroup: group %s already exists (names must be unique; pybox cleans stale ones at start)", d)
	}
	if err != nil {
		return fmt.Errorf("cgroup: create %s: %w", d, err)
	}
	return nil
}

func newV2(p *plan, ctrls []string, name string, l Limits) (*Group, error) {
	if err := setupV2(p, ctrls); err != nil {
		return nil, err
	}
	d := filepath.Join(p.parent, name)
	err := unix.Mkdir(d, 0o755)
	if err == unix.ENOENT {
		// Someone removed the parent: set it up again, once.
		v2setup.mu.Lock()
		delete(v2setup.done, p.parent)
		v2setup.mu.Unlock()
		if err := setupV2(p, ctrls); err != nil {
			return nil, err
		}
		err = unix.Mkdir(d, 0o755)
	}
	if err == unix.EEXIST {
		return nil, fmt.Errorf("cgroup: group %s already exists (names must be unique; pybox cleans stale ones at start)", d)
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup: create %s: %w", d, err)
	}
	g := &Group{name: name, v2: true, dirs: []string{d}, fd: -1}
	g.suffix = "/" + filepath.Base(p.parent) + "/" + name
	err = func() error {
		if l.MemoryBytes > 0 {
			if err := writeFile(d, "memory.max", strconv.FormatInt(l.MemoryBytes, 10)); err != nil {
				return err
			}
			if err := writeFile(d, "memory.swap.max", "0"); err != nil {
				if !errors.Is(err, unix.ENOENT) || (p.swapOn && !l.AllowSwap) {
					return fmt.Errorf("%w (cannot limit swap: boot with swapaccount=1 or swapoff -a)", err)
				}
			}
		}
		if contains(ctrls, "memory") {
			// Kill the whole tree on any OOM (group limit or host), init
			// included.
			if err := writeFile(d, "memory.oom.group", "1"); err != nil {
				return err
			}
		}
		if l.Pids > 0 {
			if err := writeFile(d, "pids.max", strconv.Itoa(l.Pids)); err != nil {
				return err
			}
		}
		if l.CPUs > 0 {
			if err := writeFile(d, "cpu.max", strconv.FormatInt(quota(l.CPUs), 10)+" "+strconv.Itoa(cfsPeriod)); err != nil {
				return err
			}
		}
		fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cgroup: open %s: %w", d, err)
		}
		g.fd = fd
		return nil
	}()
	if err != nil {
		g.removeDirs()
		return nil, err
	}
	return g, nil
}

// setupV2 makes sure every dir in p.chain exists and enables ctrls for its
// children, once per process.
func setupV2(p *plan, ctrls []string) error {
	v2setup.mu.Lock()
	defer v2setup.mu.Unlock()
	if v2setup.done[p.parent] {
		return nil
	}
	want := ""
	for _, c := range ctrls {
		want += " +" + c
	}
	for i, d := range p.chain {
		if i > 0 || len(p.chain) == 1 {
			if err := unix.Mkdir(d, 0o755); err != nil && err != unix.EEXIST {
				return fmt.Errorf("cgroup: create %s: %w", d, err)
			}
		}
		if want == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "cgroup.subtree_control"))
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		have := strings.Fields(string(b))
		ok := true
		for _, c := range ctrls {
			ok = ok && contains(have, c)
		}
		if ok {
			continue
		}
		if err := writeFile(d, "cgroup.subtree_control", want[1:]); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("%w: %s holds processes (no internal processes rule): move them to a leaf cgroup or set PYBOX_CGROUP_PARENT", err, d)
			}
			return err
		}
	}
	if v2setup.done == nil {
		v2setup.done = map[string]bool{}
	}
	v2setup.done[p.parent] = true
	return nil
}

// writeFile writes v to dir/file with one write(2), as cgroupfs wants.
func writeFile(dir, file, v string) error {
	p := dir + "/" + file
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroup: open %s: %w", p, err)
	}
	for {
		_, err = unix.Write(fd, []byte(v))
		if err != unix.EINTR {
			break
		}
	}
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", v, p, err)
	}
	return nil
}

// readFile reads a small cgroupfs file.
func readFile(dir, file string) (string, error) {
	p := dir + "/" + file
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("cgroup: open %s: %w", p, err)
	}
	defer unix.Close(fd)
	var buf [4096]byte
	var out []byte
	for {
		n, err := unix.Read(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("cgroup: read %s: %w", p, err)
		}
		if n == 0 {
			return string(out), nil
		}
		out = append(out, buf[:n]...)
	}
}

// Version is "v1" or "v2".
func (g *Group) Version() string {
	if g.v2 {
		return "v2"
	}
	return "v1"
}

// Name is the group's name.
func (g *Group) Name() string { return g.name }

// Dirs are the group's directories (one per v1 hierarchy; one on v2).
func (g *Group) Dirs() []string { return append([]string(nil), g.dirs...) }

// AddProc moves process pid (with its threads) into the group: on v1 into
// every hierarchy, on v2 through cgroup.procs.
func (g *Group) AddProc(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("cgroup: invalid pid %d", pid)
	}
	s := strconv.Itoa(pid)
	for _, d := range g.dirs {
		if err := writeFile(d, "cgroup.procs", s); err != nil {
			return err
		}
	}
	return nil
}

// FD returns a directory fd of the group for SysProcAttr.UseCgroupFD
// (CLONE_INTO_CGROUP). It is v2 only: ok is false on v1. The fd stays
// owned by g and is closed by Delete.
func (g *Group) FD() (fd int, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.v2 || g.fd < 0 {
		return -1, false
	}
	return g.fd, true
}

// keyed parses "key value" lines into a map.
func keyed(s string) map[string]int64 {
	m := map[string]int64{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

// counter returns the kept fd of one of g's counter files, opening it
// with flags (O_RDONLY or O_WRONLY) the first time. The caller holds
// g.fmu until it is done with the fd (so that Delete cannot close it, and
// its number be reused, meanwhile).
func (g *Group) counter(dir, file string, flags int) (int, error) {
	key := "r:"
	if flags == unix.O_WRONLY {
		key = "w:"
	}
	p := dir + "/" + file
	key += p
	if fd, ok := g.files[key]; ok {
		return fd, nil
	}
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroup: open %s: %w", p, err)
	}
	if g.files == nil {
		g.files = map[string]int{}
	}
	g.files[key] = fd
	return fd, nil
}

// readCounter reads one of g's counter files through its kept fd.
func (g *Group) readCounter(dir, file string) (string, error) {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	fd, err := g.counter(dir, file, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	var buf [4096]byte
	var out []byte
	for {
		n, err := unix.Pread(fd, buf[:], int64(len(out)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("cgroup: read %s/%s: %w", dir, file, err)
		}
		out = append(out, buf[:n]...)
		if n < len(buf) {
			// A cgroup file is one seq_file record, generated whole
			// at offset 0 and copied out up to the buffer's size: a
			// short read is its end (saves a syscall per file).
			return string(out), nil
		}
	}
}

// writeCounter writes v to one of g's counter files through its kept fd.
func (g *Group) writeCounter(dir, file, v string) error {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	fd, err := g.counter(dir, file, unix.O_WRONLY)
	if err != nil {
		return err
	}
	for {
		_, err = unix.Pwrite(fd, []byte(v), 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cgroup: write %q to %s/%s: %w", v, dir, file, err)
	}
	return nil
}

// ProcsFiles returns the group's cgroup.procs files (one per directory,
// in the order of Dirs) open for writing, for a process that is to move
// itself in: writing "0" moves the writer. The fds stay owned by g (do
// not close them) and are valid until Delete.
func (g *Group) ProcsFiles() ([]int, error) {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	fds := make([]int, 0, len(g.dirs))
	for _, d := range g.dirs {
		fd, err := g.counter(d, "cgroup.procs", unix.O_WRONLY)
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// closeCounters closes the kept fds.
func (g *Group) closeCounters() {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	for _, fd := range g.files {
		unix.Close(fd)
	}
	g.files = nil
}

// readInt reads a counter file holding one integer; a missing file reads
// as 0.
func (g *Group) readInt(dir, file string) (int64, error) {
	if dir == "" {
		return 0, nil
	}
	s, err := g.readCounter(dir, file)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, nil
		}
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
}

// readKeyed reads a flat-keyed counter file; a missing file reads as
// empty.
func (g *Group) readKeyed(dir, file string) (map[string]int64, bool, error) {
	if dir == "" {
		return map[string]int64{}, false, nil
	}
	s, err := g.readCounter(dir, file)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return map[string]int64{}, false, nil
		}
		return nil, false, err
	}
	return keyed(s), true, nil
}

// Stats reads the group's counters.
func (g *Group) Stats() (Stats, error) {
	g.mu.Lock()
	deleted := g.deleted
	g.mu.Unlock()
	if deleted {
		return Stats{}, fmt.Errorf("cgroup: group %s is deleted", g.name)
	}
	if g.v2 {
		return g.statsV2()
	}
	return g.statsV1()
}

func (g *Group) statsV1() (Stats, error) {
	var st Stats
	var errs []error
	num := func(dir, file string) int64 {
		n, err := g.readInt(dir, file)
		if err != nil {
			errs = append(errs, err)
		}
		return n
	}
	failcnt := num(g.mem, "memory.failcnt")
	var swFail int64
	if g.memsw {
		st.PeakMemoryBytes = num(g.mem, "memory.memsw.max_usage_in_bytes")
		swFail = num(g.mem, "memory.memsw.failcnt")
	} else {
		st.PeakMemoryBytes = num(g.mem, "memory.max_usage_in_bytes")
	}
	oc, _, err := g.readKeyed(g.mem, "memory.oom_control")
	if err != nil {
		errs = append(errs, err)
	}
	if n, ok := oc["oom_kill"]; ok {
		st.OOMKills = int(n)
	} else if swFail > 0 && oc["under_oom"] > 0 {
		st.OOMKills = 1 // kernels before 4.13 have no oom_kill counter
	}
	st.MemoryLimitHit = failcnt > 0 || swFail > 0 || st.OOMKills > 0
	st.CPUNanos = num(g.acct, "cpuacct.usage")
	pe, _, err := g.readKeyed(g.pids, "pids.events")
	if err != nil {
		errs = append(errs, err)
	}
	st.PidsLimitHit = pe["max"] > 0
	return st, errors.Join(errs...)
}

func (g *Group) statsV2() (Stats, error) {
	var st Stats
	d := g.dirs[0]
	var errs []error
	peak, err := g.readInt(d, "memory.peak")
	errs = append(errs, err)
	swap, err := g.readInt(d, "memory.swap.peak")
	errs = append(errs, err)
	st.PeakMemoryBytes = peak + swap
	cs, _, err := g.readKeyed(d, "cpu.stat")
	errs = append(errs, err)
	st.CPUNanos = cs["usage_usec"] * 1000
	me, _, err := g.readKeyed(d, "memory.events")
	errs = append(errs, err)
	st.OOMKills = int(me["oom_kill"])
	st.MemoryLimitHit = me["max"] > 0 || me["oom"] > 0 || me["oom_kill"] > 0
	pe, _, err := g.readKeyed(d, "pids.events")
	errs = append(errs, err)
	st.PidsLimitHit = pe["max"] > 0
	return st, errors.Join(errs...)
}

// procs lists the pids in every directory of the group.
func (g *Group) procs() ([]int, error) {
	var pids []int
	seen := map[int]bool{}
	for _, d := range g.dirs {
		s, err := readFile(d, "cgroup.procs")
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, err
		}
		for _, f := range strings.Fields(s) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// Empty reports whether no process is in the group (in any of its
// directories).
func (g *Group) Empty() (bool, error) {
	pids, err := g.procs()
	return len(pids) == 0, err
}

// PidsCurrent returns the group's pids.current: how many tasks (threads)
// are charged to its pids controller. A task is charged from the moment
// it enters the group's pids directory (or is forked there) until it is
// reaped, so a zombie still counts. It reads a kept fd: one syscall,
// where Empty reads cgroup.procs in every directory. What it says of the
// group's other directories (v1) is up to how the caller moves processes
// in. A missing counter is an error, never 0.
func (g *Group) PidsCurrent() (int64, error) {
	d := g.pids
	if g.v2 {
		d = g.dirs[0]
	}
	if d == "" {
		return 0, errors.New("cgroup: the group has no pids controller")
	}
	s, err := g.readCounter(d, "pids.current")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
}

// Kill sends SIGKILL to every process in the group and waits until the
// group is empty. On v2 it writes cgroup.kill (Linux 5.14+). On v1 (and
// older v2) it loops over cgroup.procs until it is empty: each round kills
// every listed process through a pidfd after checking the pid is still in
// this group (so a reused pid is never hit); forks racing with a round are
// caught by the next one and the pids limit bounds them. The freezer is not
// used: it would cost another hierarchy per run on the hot path.
func (g *Group) Kill() error {
	if g.v2 {
		err := writeFile(g.dirs[0], "cgroup.kill", "1")
		if err == nil {
			return g.waitEmpty()
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	deadline := time.Now().Add(deleteWait)
	sleep := 50 * time.Microsecond
	for {
		pids, err := g.procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			g.killPid(pid)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: %s: %d processes still alive after SIGKILL for %v", g.dirs[0], len(pids), deleteWait)
		}
		time.Sleep(sleep)
		sleep = min(2*sleep, 10*time.Millisecond)
	}
}

// killPid SIGKILLs pid if it is (still) a member of g.
func (g *Group) killPid(pid int) {
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if err == unix.ENOSYS {
			// Before Linux 5.3: accept the small reuse race.
			if g.member(pid) {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		return
	}
	defer unix.Close(pfd)
	if g.member(pid) {
		unix.PidfdSendSignal(pfd, unix.SIGKILL, nil, 0)
	}
}

// member reports whether /proc/<pid>/cgroup puts pid in this group.
func (g *Group) member(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(line, g.suffix) {
			return true
		}
	}
	return false
}

// waitEmpty waits until cgroup.procs is empty in every directory.
func (g *Group) waitEmpty() error {
	deadline := time.Now().Add(deleteWait)
	sleep := 50 * time.Microsecond
	for {
		pids, err := g.procs()
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: %s: %d processes still alive after SIGKILL for %v", g.dirs[0], len(pids), deleteWait)
		}
		time.Sleep(sleep)
		sleep = min(2*sleep, 10*time.Millisecond)
	}
}

// maxReuseLeftover is how much memory a group may still have charged, once
// its processes are gone, to be reused (the kernel frees some objects
// lazily; more than this would eat into the next run's limit).
const maxReuseLeftover = 1 << 20

// Reuse readies an emptied cgroup v1 group for another run with the same
// limits, in place of Delete and New: the kernel's mkdir and rmdir of a v1
// group's four directories, and the workers that then free a memory
// cgroup, cost warm executions about a sixth of their throughput. It
// resets the counters that Stats reads (peak memory, CPU time), so that
// the next run's Stats are its own. It refuses, changing nothing (the
// caller deletes the group instead), when the group is v2 (its peak
// counter resets only per open file), still has processes, still holds
// more than maxReuseLeftover of memory, or saw a limit hit: an OOM kill or
// a failed fork leaves counters that cannot be reset, so a group that hit
// a limit is never reused.
func (g *Group) Reuse() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.deleted:
		return errors.New("cgroup: reuse of a deleted group")
	case g.v2:
		return errors.New("cgroup: groups are reused on cgroup v1 only")
	}
	pids, err := g.procs()
	if err != nil {
		return err
	}
	if len(pids) > 0 {
		return fmt.Errorf("cgroup: %s still has %d processes", g.dirs[0], len(pids))
	}
	st, err := g.statsV1()
	if err != nil {
		return err
	}
	if st.OOMKills > 0 || st.MemoryLimitHit || st.PidsLimitHit {
		return fmt.Errorf("cgroup: %s hit a limit", g.dirs[0])
	}
	usage, peak := "memory.usage_in_bytes", "memory.max_usage_in_bytes"
	if g.memsw {
		usage = "memory.memsw.usage_in_bytes"
	}
	n, err := g.readInt(g.mem, usage)
	if err != nil {
		return err
	}
	if n > maxReuseLeftover {
		return fmt.Errorf("cgroup: %s still holds %d bytes", g.dirs[0], n)
	}
	// Writing 0 sets a peak to the current usage and CPU time to 0.
	resets := [][2]string{{g.mem, peak}, {g.acct, "cpuacct.usage"}}
	if g.memsw {
		resets = append(resets, [2]string{g.mem, "memory.memsw.max_usage_in_bytes"})
	}
	for _, r := range resets {
		if r[0] == "" {
			continue
		}
		if err := g.writeCounter(r[0], r[1], "0"); err != nil {
			return err
		}
	}
	return nil
}

// Delete kills whatever is left in the group and removes its directories,
// retrying while killed processes exit. After a nil return no directory of
// the group is left. Deleting twice is a no-op.
func (g *Group) Delete() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return nil
	}
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
	g.closeCounters()
	if err := g.removeDirs(); err != nil {
		return err
	}
	g.deleted = true
	return nil
}

// removeDirs removes every directory of g, killing on EBUSY.
func (g *Group) removeDirs() error {
	var killed bool
	var deadline time.Time
	sleep := 50 * time.Microsecond
	for i := len(g.dirs) - 1; i >= 0; {
		err := unix.Rmdir(g.dirs[i])
		if err == nil || err == unix.ENOENT {
			i--
			continue
		}
		if err != unix.EBUSY {
			return fmt.Errorf("cgroup: remove %s: %w", g.dirs[i], err)
		}
		if !killed {
			killed = true
			deadline = time.Now().Add(deleteWait)
			if err := g.Kill(); err != nil {
				return err
			}
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: remove %s: still busy after %v", g.dirs[i], deleteWait)
		}
		time.Sleep(sleep)
		sleep = min(2*sleep, 10*time.Millisecond)
	}
	return nil
}

// Cleanup removes groups left behind by supervisors that died. It looks
// only at groups named "<pid>-…" (see [RunName]) whose pid is not a live
// process, kills what is left in them and removes them. Groups of live
// owners, this process's own groups and groups with other names are never
// touched: another supervisor may be between New and AddProc. On v1 only
// the pybox parent under this process's own memory cgroup is visible.
func Cleanup() error {
	p, err := hostPlan()
	if err != nil {
		return err
	}
	if p.fatal != "" {
		return nil
	}
	var parents []string
	if p.v2 {
		parents = []string{p.parent}
	} else {
		parents = p.v1hier
	}
	names := map[string]bool{}
	for _, parent := range parents {
		ents, err := os.ReadDir(parent)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("cgroup: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() && staleName(e.Name()) {
				names[e.Name()] = true
			}
		}
	}
	var errs []error
	for name := range names {
		g := &Group{name: name, v2: p.v2, fd: -1, memsw: p.memsw}
		for _, parent := range parents {
			g.dirs = append(g.dirs, filepath.Join(parent, name))
		}
		if p.v2 {
			g.suffix = "/" + filepath.Base(p.parent) + "/" + name
		} else {
			g.suffix = "/" + filepath.Base(p.v1dir["memory"]) + "/" + name
		}
		// Another pybox may be removing the same stale group right now
		// (each cleans up when its native backend starts): a group that
		// vanished under us is gone, which is what we wanted.
		if err := g.Delete(); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// staleName reports whether name is "<pid>-…" for a pid that is neither
// this process nor alive.
func staleName(name string) bool {
	s, _, ok := strings.Cut(name, "-")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	err = unix.Kill(pid, 0)
	return err == unix.ESRCH
}
