package native

import (
	"encoding/json"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
)

// The plain pool: where no fork-server template can serve a policy (it is
// still booting, or it failed to start), executions take a pre-booted
// one-shot sandbox instead of a cold start. Each pooled sandbox is an
// ordinary cold-path sandbox (init and interpreter started, runner waiting
// for its exec frame) and is used exactly once, so every execution still
// gets a fresh sandbox. Requests with input files are not pooled: init
// writes them before the interpreter starts.

// poolSize is how many booted sandboxes a policy keeps ready.
const poolSize = 2

// pooled is a booted sandbox waiting in the pool.
type pooled struct {
	sb     *sandbox
	policy string
}

// poolKey is everything a pooled sandbox was booted with: the policy and
// the limits, disk size and file collection fixed at boot.
func poolKey(req *api.Request) string {
	k := struct {
		Policy                string
		Memory, Disk, FilesLm api.Size
		Pids                  int
		CPUs                  float64
		Collect               bool
	}{policyKey(req), req.Memory, req.Disk, req.FilesLimit, req.Pids, req.CPUs, req.CollectFiles}
	b, _ := json.Marshal(k)
	return string(b)
}

// takePooled returns a booted sandbox for req, or nil, and tops the pool
// up in the background. Callers hold no lock.
func (b *nativeBackend) takePooled(req *api.Request) *sandbox {
	if len(req.Files) > 0 {
		return nil
	}
	key := poolKey(req)
	b.fsMu.Lock()
	defer b.fsMu.Unlock()
	if !b.forkServer || b.closed {
		return nil
	}
	var sb *sandbox
	list := b.pool[key]
	for len(list) > 0 && sb == nil {
		p := list[0]
		list = list[1:]
		if isClosed(p.sb.ctrlDone) {
			go p.sb.destroy() // died while waiting
			continue
		}
		sb = p.sb
	}
	b.pool[key] = list
	if !b.filling[key] && len(list) < poolSize {
		b.filling[key] = true
		r := *req
		r.Code, r.Globals, r.Files = "", nil, nil
		b.bg.Add(1)
		go func() { defer b.bg.Done(); b.fill(key, &r) }()
	}
	if sb != nil {
		sb.iso.Prebooted = true
		sb.iso.Limits.TimeoutMS = req.Timeout.D().Milliseconds()
		sb.iso.Limits.OutputBytes = int64(req.OutputLimit)
	}
	return sb
}

// fill boots sandboxes until the pool for key is full.
func (b *nativeBackend) fill(key string, req *api.Request) {
	defer func() {
		b.fsMu.Lock()
		delete(b.filling, key)
		b.fsMu.Unlock()
	}()
	for {
		b.fsMu.Lock()
		full := b.closed || !b.forkServer || len(b.pool[key]) >= poolSize
		b.fsMu.Unlock()
		if full {
			return
		}
		cfg, err := b.config(req)
		if err != nil {
			return
		}
		sb, err := b.start(req, cfg)
		if err != nil {
			return
		}
		select {
		case <-sb.readyCh:
			_ = sb.awaitJoined() // an error is a setupErr
		case <-time.After(templateBoot):
		}
		sb.mu.Lock()
		ok := sb.ready != nil && sb.setupErr == nil
		sb.mu.Unlock()
		if !ok {
			sb.destroy()
			return
		}
		b.fsMu.Lock()
		if b.closed {
			b.fsMu.Unlock()
			sb.destroy()
			return
		}
		b.pool[key] = append(b.pool[key], pooled{sb: sb, policy: policyKey(req)})
		b.fsMu.Unlock()
	}
}

// drainPool takes the pooled sandboxes of a policy (its template is
// ready) or, with policy "", all of them (Close) out of the pool and
// returns them for the caller to destroy. Callers hold fsMu.
func (b *nativeBackend) drainPool(policy string) []*sandbox {
	var out []*sandbox
	for key, list := range b.pool {
		var keep []pooled
		for _, p := range list {
			if policy == "" || p.policy == policy {
				out = append(out, p.sb)
			} else {
				keep = append(keep, p)
			}
		}
		b.pool[key] = keep
	}
	return out
}
