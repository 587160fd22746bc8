package native

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/pybox-dev/pybox/internal/cgroup"
)

// Kits made ahead for warm executions.
//
// Besides its template, a warm execution needs a new cgroup (a directory
// per v1 hierarchy, the limits written: 100-250 µs), its cgroup.procs files
// opened for the template (~100 µs) and seven pipes (~100 µs): a tenth of
// an execution that takes about 2-3 ms in all, on its critical path. Warm
// runs take a kit made ahead instead: a few per set of limits, made in the
// background after each take. A pooled kit is unused, exactly what newKit
// returns: an empty cgroup and empty pipes. After its run, a kit's cgroup
// is reused for the next kit of the same limits when it is clean
// (cgroup.Group.Reuse: cgroup v1 only, no limit hit, counters reset),
// else deleted. Close deletes what is left.

// cgPoolSize is how many kits are kept ready per set of limits, and
// cgPoolKeys for how many sets of limits at most: a new set takes the
// place of the one used longest ago (requests may vary their limits
// endlessly; each kit holds a cgroup and 18 fds).
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
	procs []*os.File
	pipes [7][2]*os.File
}

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
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		k.pipes[i] = [2]*os.File{r, w}
	}
	for _, d := range k.cg.Dirs() {
		f, err := os.OpenFile(filepath.Join(d, "cgroup.procs"), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open cgroup: %w", err)
		}
		k.procs = append(k.procs, f)
	}
	return nil
}

// closeFiles closes the kit's pipes and cgroup.procs files (not its
// cgroup), but for keep.
func (k *warmKit) closeFiles(keep ...*os.File) {
	for _, p := range k.pipes {
		for _, f := range p {
			if f != nil && !slices.Contains(keep, f) {
				f.Close()
			}
		}
	}
	for _, f := range k.procs {
		f.Close()
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
