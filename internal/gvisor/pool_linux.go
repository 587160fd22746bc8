package gvisor

import (
	"encoding/json"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/guest"
)

// The warm pool (see the package doc): per policy key, up to PoolSize
// sandboxes booted ahead, their runner blocked on stdin for its frame.
// Each is taken by exactly one run, then killed and deleted.

// pooled is a booted sandbox waiting in the pool.
type pooled struct {
	sb     *sandbox
	key    string
	expire *time.Timer
}

// poolKey is everything a sandbox is booted with (the interpreter and its
// environment, the mounts, the limits fixed at boot), and whether req may
// be served from the pool at all: not with the pool off, not with input
// files (they are written into /work before boot; with exclusive file
// access the sentry may not see files the host writes after), not without
// cgroups (best effort on a host without them).
func (b *gvisorBackend) poolKey(req *api.Request, argv0, extra string) (string, bool) {
	if b.noPool || len(req.Files) > 0 || b.cgErr != nil {
		return "", false
	}
	k := struct {
		Python, Prefix string
		Env            []string
		Mounts         []api.Mount
		Memory, Disk   api.Size
		Output         api.Size
		Pids           int
		CPUs           float64
		Net            string
		BestEffort     bool
	}{argv0, extra, guest.Environ(req), req.Mounts, req.Memory, req.Disk, req.OutputLimit, req.Pids, req.CPUs, req.Net, req.BestEffort}
	j, err := json.Marshal(k)
	if err != nil {
		return "", false
	}
	return string(j), true
}

// takePooled returns a booted sandbox for key, or nil. Dead and expired
// ones met on the way are discarded.
func (b *gvisorBackend) takePooled(key string) *sandbox {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	list := b.pool[key]
	defer func() {
		if len(list) == 0 {
			delete(b.pool, key)
		} else {
			b.pool[key] = list
		}
	}()
	for len(list) > 0 {
		p := list[0]
		list = list[1:]
		b.pooled--
		p.expire.Stop()
		if p.sb.usable(now) {
			p.sb.prebooted = true
			return p.sb
		}
		b.bg.Add(1) // not closed: Close has not begun waiting
		go func() { defer b.bg.Done(); b.noteErr(p.sb.destroy()) }()
	}
	return nil
}

// refill starts booting sandboxes for key in the background unless the
// pool for key is full or being filled. req is the run that asked (its
// code, globals and files are not used).
func (b *gvisorBackend) refill(key string, req *api.Request) {
	b.mu.Lock()
	if b.closed || b.filling[key] || len(b.pool[key]) >= PoolSize || b.pooled >= PoolMax ||
		time.Since(b.fillFailed[key]) < fillRetry {
		b.mu.Unlock()
		return
	}
	b.filling[key] = true
	b.bg.Add(1)
	b.mu.Unlock()
	r := *req
	r.Code, r.Globals, r.Files = "", nil, nil
	go func() {
		defer b.bg.Done()
		b.fill(key, &r)
	}()
}

// fillRetry is how long a policy whose sandbox failed to boot for the
// pool is not pooled again (its runs boot their own meanwhile).
const fillRetry = 30 * time.Second

// fill boots sandboxes one at a time until the pool for key is full. It
// gives up at the first sandbox that does not start.
func (b *gvisorBackend) fill(key string, req *api.Request) {
	ok := false
	defer func() {
		b.mu.Lock()
		delete(b.filling, key)
		if ok {
			delete(b.fillFailed, key)
		} else {
			b.fillFailed[key] = time.Now()
		}
		b.mu.Unlock()
	}()
	argv0, extra, err := guest.Interpreter(req.Python)
	if err != nil {
		return
	}
	if k, ok := b.poolKey(req, argv0, extra); !ok || k != key {
		return // the interpreter moved under us
	}
	for {
		b.mu.Lock()
		full := b.closed || len(b.pool[key]) >= PoolSize || b.pooled >= PoolMax
		b.mu.Unlock()
		if full {
			ok = true
			return
		}
		sb, err := b.boot(req, argv0, extra)
		if err != nil {
			return
		}
		closed := func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.closed
		}
		if sb.cg == nil || !sb.waitStarted(bootWait, closed) {
			b.noteErr(sb.destroy())
			return
		}
		p := &pooled{sb: sb, key: key}
		b.mu.Lock()
		if b.closed || b.pooled >= PoolMax {
			b.mu.Unlock()
			b.noteErr(sb.destroy())
			ok = true
			return
		}
		p.expire = time.AfterFunc(PoolMaxAge, func() { b.expire(p) })
		b.pool[key] = append(b.pool[key], p)
		b.pooled++
		b.mu.Unlock()
	}
}

// expire discards p if it is still in the pool. The pool is not refilled:
// only runs do that.
func (b *gvisorBackend) expire(p *pooled) {
	b.mu.Lock()
	defer b.mu.Unlock()
	list := b.pool[p.key]
	for i, q := range list {
		if q == p {
			b.pool[p.key] = append(list[:i:i], list[i+1:]...)
			if len(b.pool[p.key]) == 0 {
				delete(b.pool, p.key)
			}
			b.pooled--
			b.bg.Add(1) // not closed: Close drains the pool first
			go func() { defer b.bg.Done(); b.noteErr(p.sb.destroy()) }()
			return
		}
	}
}

// drainPool empties the pool and returns its sandboxes for the caller to
// destroy. Callers hold mu.
func (b *gvisorBackend) drainPool() []*sandbox {
	var out []*sandbox
	for key, list := range b.pool {
		for _, p := range list {
			p.expire.Stop()
			out = append(out, p.sb)
		}
		delete(b.pool, key)
	}
	b.pooled = 0
	return out
}

// Pooled reports how many booted sandboxes wait in be's pool for req's
// policy (req defaulted and validated); 0 for a backend that is not a
// gvisor one. For tests and benchmarks that need a warm pool.
func Pooled(be backend.Backend, req *api.Request) int {
	b, ok := be.(*gvisorBackend)
	if !ok {
		return 0
	}
	argv0, extra, err := guest.Interpreter(req.Python)
	if err != nil {
		return 0
	}
	key, ok := b.poolKey(req, argv0, extra)
	if !ok {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pool[key])
}
