package native

import (
	"github.com/pybox-dev/pybox/internal/cgroup"
)

// Pre-made cgroups for warm executions.
//
// Creating a run's cgroup (a directory per v1 hierarchy, the limits
// written) costs 100-250 µs, on the critical path of an execution that
// takes about 2 ms in all. Warm runs take one made ahead instead: a few per
// set of limits, made in the background after each take. A pooled group is
// new and empty, exactly what cgroup.New returns; it is used once and
// deleted like any other. Close deletes what is left.

// cgPoolSize is how many groups are kept ready per set of limits.
const cgPoolSize = 2

type cgPool struct {
	ready   map[cgroup.Limits][]*cgroup.Group
	filling map[cgroup.Limits]bool
}

// runCgroup returns a new cgroup with limits l for a warm run: a pooled one
// when there is one, and starts making the next ones.
func (b *nativeBackend) runCgroup(l cgroup.Limits) (*cgroup.Group, error) {
	b.fsMu.Lock()
	if b.cgPool.ready == nil {
		b.cgPool.ready = map[cgroup.Limits][]*cgroup.Group{}
		b.cgPool.filling = map[cgroup.Limits]bool{}
	}
	var g *cgroup.Group
	if q := b.cgPool.ready[l]; len(q) > 0 {
		g, b.cgPool.ready[l] = q[0], q[1:]
	}
	refill := !b.closed && !b.cgPool.filling[l]
	if refill {
		b.cgPool.filling[l] = true
		b.bg.Add(1)
	}
	b.fsMu.Unlock()
	if refill {
		go b.fillCgroups(l)
	}
	if g != nil {
		return g, nil
	}
	return cgroup.New(cgroup.RunName(runSeq.Add(1)), l)
}

func (b *nativeBackend) fillCgroups(l cgroup.Limits) {
	defer b.bg.Done()
	defer func() {
		b.fsMu.Lock()
		delete(b.cgPool.filling, l)
		b.fsMu.Unlock()
	}()
	for {
		b.fsMu.Lock()
		full := b.closed || len(b.cgPool.ready[l]) >= cgPoolSize
		b.fsMu.Unlock()
		if full {
			return
		}
		g, err := cgroup.New(cgroup.RunName(runSeq.Add(1)), l)
		if err != nil {
			return
		}
		b.fsMu.Lock()
		if b.closed {
			b.fsMu.Unlock()
			_ = g.Delete()
			return
		}
		b.cgPool.ready[l] = append(b.cgPool.ready[l], g)
		b.fsMu.Unlock()
	}
}

// drainCgroups deletes the pooled groups (Close); the caller holds no lock
// and has set b.closed.
func (b *nativeBackend) drainCgroups() {
	b.fsMu.Lock()
	var all []*cgroup.Group
	for _, q := range b.cgPool.ready {
		all = append(all, q...)
	}
	b.cgPool.ready = nil
	b.fsMu.Unlock()
	for _, g := range all {
		_ = g.Delete()
	}
}
