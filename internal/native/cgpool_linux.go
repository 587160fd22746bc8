package native

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/cgroup"
)

// Kits made ahead for warm executions.
//
// Besides its template, a warm execution needs a new cgroup (a directory
// per v1 hierarchy, the limits written: 100-250 µs), its cgroup.procs files
// opened for the template (~100 µs) and five pipes (~100 µs; two more for
// a run with input files or files to collect): a tenth of an execution
// that takes about 2-3 ms in all, on its critical path. Warm runs take a
// kit made ahead instead: a few per set of limits, made in the background
// after each take. A pooled kit is unused, exactly what newKit returns: an
// empty cgroup and empty pipes. After its run, a kit's cgroup is reused
// for the next kit of the same limits when it is clean
// (cgroup.Group.Reuse: cgroup v1 only, no limit hit, counters reset),
// with its cgroup.procs files still open, else deleted. Close deletes what
// is left.

// cgPoolSize is how many kits are kept ready per set of limits, and
// cgPoolKeys for how many sets of limits at most: a new set takes the
// place of the one used longest ago (requests may vary their limits
// endlessly; each kit holds a cgroup, its files and 10 fds of pipes).
const (
	cgPoolSize = 2
	cgPoolKeys = 4
	// cgPoolMax is how many kits a set of limits may have pooled when
	// reused cgroups come back (fillKits makes new ones up to cgPoolSize).
	cgPoolMax = 2 * cgPoolSize
)

type cgPool struct {
	ready   map[cgroup.Limits][]*warmKit
	filling map[cgroup.Limits]bool
	used    map[cgroup.Limits]uint64 // when each set was last taken (a counter)
	clock   uint64
}

// warmKit is one warm execution's cgroup, its cgroup.procs files (one per
// hierarchy, in the order of the group's directories) and its pipes: the
// input-files frame, stdout, stderr, the runner's input and output, the
// template's status reports and the collected files.
type warmKit struct {
	cg    *cgroup.Group
	procs []int // the group's, kept open by it (cgroup.Group.ProcsFiles)
	pipes [kitPipes]kitPipe
}

// kitPipe is a pipe of a kit: the supervisor's end, non-blocking in Go's
// poller, and the template's, a plain blocking fd that is only passed on
// (SCM_RIGHTS) and closed: an *os.File for it cost a fcntl, two epoll_ctl
// and allocations per end, seven times per execution.
type kitPipe struct {
	ours   *os.File
	theirs int // -1 once closed
}

// A kit's pipes, in the order of the fork request's fds.
const (
	pipeCfg    = iota // the input files (made only for a run that has some)
	pipeOut           // stdout
	pipeErr           // stderr
	pipeRin           // the runner's input
	pipeRout          // the runner's output
	pipeStatus        // the template's reports
	pipeFiles         // the collected files (made only for a run that collects)
	kitPipes          // how many
)

// kitOursWrites says which of a kit's pipes the supervisor writes (the
// input files and the runner's input); it reads the others.
var kitOursWrites = [kitPipes]bool{pipeCfg: true, pipeRin: true}

// devNull is /dev/null opened for reading and for writing, once: what the
// template gets in place of a pipe a run does not need (no input files,
// nothing to collect), which saves making, polling and closing it.
var devNull = sync.OnceValues(func() ([2]int, error) {
	r, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return [2]int{-1, -1}, err
	}
	w, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(r)
		return [2]int{-1, -1}, err
	}
	return [2]int{r, w}, nil
})

// newKit makes a kit with a new cgroup with limits l.
func newKit(l cgroup.Limits) (*warmKit, error) {
	g, err := cgroup.New(cgroup.RunName(runSeq.Add(1)), l)
	if err != nil {
		return nil, err
	}
	k := &warmKit{cg: g}
	if err := k.open(); err != nil {
		k.closeFiles()
		return nil, errors.Join(err, g.Delete())
	}
	return k, nil
}

func (k *warmKit) open() error {
	for i := range k.pipes {
		k.pipes[i].theirs = -1
	}
	for i := range k.pipes {
		if i == pipeCfg || i == pipeFiles {
			continue // made by the run that needs it (openPipe)
		}
		if err := k.openPipe(i); err != nil {
			return err
		}
	}
	procs, err := k.cg.ProcsFiles()
	if err != nil {
		return fmt.Errorf("open cgroup: %w", err)
	}
	k.procs = procs
	return nil
}

// openPipe makes the kit's pipe i.
func (k *warmKit) openPipe(i int) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	ours, theirs := p[0], p[1]
	if kitOursWrites[i] {
		ours, theirs = p[1], p[0]
	}
	k.pipes[i].theirs = theirs
	// A new pipe's status flags are 0: set O_NONBLOCK alone.
	if _, err := unix.FcntlInt(uintptr(ours), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		unix.Close(ours)
		return fmt.Errorf("pipe: %w", err)
	}
	k.pipes[i].ours = os.NewFile(uintptr(ours), "|kit")
	return nil
}

// forkFDs returns the fds of a fork request for the kit: the template's
// ends of its pipes, /dev/null for a pipe it does not have (pipeCfg,
// pipeFiles), then its cgroup.procs files.
func (k *warmKit) forkFDs() ([]int, error) {
	fds := make([]int, 0, len(k.pipes)+len(k.procs))
	for i, p := range k.pipes {
		fd := p.theirs
		if fd < 0 {
			null, err := devNull()
			if err != nil {
				return nil, fmt.Errorf("open /dev/null: %w", err)
			}
			fd = null[0]
			if !kitOursWrites[i] {
				fd = null[1]
			}
		}
		fds = append(fds, fd)
	}
	return append(fds, k.procs...), nil
}

// closeFiles closes the kit's pipes (not its cgroup or the cgroup's
// files), but for keep.
func (k *warmKit) closeFiles(keep ...*os.File) {
	k.closeTheirs()
	for _, p := range k.pipes {
		if p.ours != nil && !slices.Contains(keep, p.ours) {
			p.ours.Close()
		}
	}
	k.procs = nil // the group's own (cgroup.Group.ProcsFiles)
}

// closeTheirs closes the template's ends of the pipes (once passed on).
func (k *warmKit) closeTheirs() {
	for i := range k.pipes {
		if k.pipes[i].theirs >= 0 {
			unix.Close(k.pipes[i].theirs)
			k.pipes[i].theirs = -1
		}
	}
}

// runKit returns a new kit with limits l for a warm run: a pooled one when
// there is one, and starts making the next ones.
func (b *nativeBackend) runKit(l cgroup.Limits) (*warmKit, error) {
	b.fsMu.Lock()
	p := &b.cgPool
	if p.ready == nil {
		p.ready = map[cgroup.Limits][]*warmKit{}
		p.filling = map[cgroup.Limits]bool{}
		p.used = map[cgroup.Limits]uint64{}
	}
	var k *warmKit
	if q := p.ready[l]; len(q) > 0 {
		k, p.ready[l] = q[0], q[1:]
	}
	p.clock++
	p.used[l] = p.clock
	var evicted []*warmKit
	if len(p.used) > cgPoolKeys {
		// Forget the set of limits used longest ago (not one filling).
		var old cgroup.Limits
		oldest := p.clock
		for key, t := range p.used {
			if t < oldest && !p.filling[key] {
				old, oldest = key, t
			}
		}
		if oldest < p.clock {
			evicted = p.ready[old]
			delete(p.ready, old)
			delete(p.used, old)
		}
	}
	refill := !b.closed && !p.filling[l]
	if refill {
		p.filling[l] = true
		b.bg.Add(1)
	}
	b.fsMu.Unlock()
	if refill {
		go b.fillKits(l)
	}
	if len(evicted) > 0 {
		b.deletes.Add(1)
		go func() {
			defer b.deletes.Done()
			for _, e := range evicted {
				e.closeFiles()
				_ = e.cg.Delete()
			}
		}()
	}
	if k != nil {
		return k, nil
	}
	return newKit(l)
}

func (b *nativeBackend) fillKits(l cgroup.Limits) {
	defer b.bg.Done()
	defer func() {
		b.fsMu.Lock()
		delete(b.cgPool.filling, l)
		b.fsMu.Unlock()
	}()
	for {
		b.fsMu.Lock()
		_, wanted := b.cgPool.used[l]
		full := b.closed || !wanted || len(b.cgPool.ready[l]) >= cgPoolSize
		b.fsMu.Unlock()
		if full {
			return
		}
		k, err := newKit(l)
		if err != nil {
			return
		}
		b.fsMu.Lock()
		if b.closed {
			b.fsMu.Unlock()
			k.closeFiles()
			_ = k.cg.Delete()
			return
		}
		b.cgPool.ready[l] = append(b.cgPool.ready[l], k)
		b.fsMu.Unlock()
	}
}

// recycle disposes of g once its warm run is over: a new kit around it goes
// to the front of the pool of limits l when the pool wants one and g is
// clean (cgroup.Group.Reuse), else g is deleted. Runs in the background,
// counted in b.deletes.
func (b *nativeBackend) recycle(l cgroup.Limits, g *cgroup.Group) {
	room := func() bool {
		_, wanted := b.cgPool.used[l]
		return !b.closed && wanted && len(b.cgPool.ready[l]) < cgPoolMax
	}
	b.fsMu.Lock()
	ok := room()
	b.fsMu.Unlock()
	if !ok || g.Reuse() != nil {
		_ = g.Delete()
		return
	}
	k := &warmKit{cg: g}
	if err := k.open(); err != nil {
		k.closeFiles()
		_ = g.Delete()
		return
	}
	b.fsMu.Lock()
	if !room() {
		b.fsMu.Unlock()
		k.closeFiles()
		_ = g.Delete()
		return
	}
	b.cgPool.ready[l] = append([]*warmKit{k}, b.cgPool.ready[l]...)
	b.fsMu.Unlock()
}

// drainCgroups deletes the pooled kits (Close); the caller holds no lock
// and has set b.closed.
func (b *nativeBackend) drainCgroups() {
	b.fsMu.Lock()
	var all []*warmKit
	for _, q := range b.cgPool.ready {
		all = append(all, q...)
	}
	b.cgPool.ready = nil
	b.fsMu.Unlock()
	for _, k := range all {
		k.closeFiles()
		_ = k.cg.Delete()
	}
}
