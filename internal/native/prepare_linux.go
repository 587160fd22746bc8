package native

import (
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/cgroup"
	"github.com/pybox-dev/pybox/internal/zygote"
)

// Prepared spares.
//
// Moving a process into a cgroup waits for an RCU grace period when no
// move happened for a while (2-15 ms here, on cgroup v1 and v2 alike): an
// execution that comes tens of milliseconds or more after the previous one
// (an agent's next tool call) paid it while its child was moved. So once
// a template has been idle for prepareAfter, the supervisor takes the kit
// the next execution with the same limits would take and asks the template
// to prepare its spare in that kit's cgroup: the spare moves itself there
// while it sets up, and the wait is nobody's. The next execution with the
// same limits and disk size takes that kit and names it in its fork
// request; any other execution is served as before.

// prepareAfter is how long a template must be idle before its next spare
// is prepared.
const prepareAfter = 2 * time.Millisecond

// prepared is a kit whose cgroup holds a template's spare.
type prepared struct {
	id     uint64
	kit    *warmKit
	limits cgroup.Limits
	disk   int64
}

// prepareMsg asks the template to prepare its spare in a cgroup (whose
// cgroup.procs files come with it); Cgroup is the id the fork request
// names.
type prepareMsg struct {
	Type   string `json:"type"`
	ID     uint64 `json:"id"`
	Disk   int64  `json:"disk"`
	Cgroup uint64 `json:"cgroup"`
}

// takePrepared returns the prepared kit if it matches limits and disk.
func (fs *forkServer) takePrepared(l cgroup.Limits, disk int64) *prepared {
	fs.prepMu.Lock()
	defer fs.prepMu.Unlock()
	p := fs.prep
	if p == nil || p.limits != l || p.disk != disk {
		return nil
	}
	fs.prep = nil
	return p
}

// started and ended bracket an execution on fs; when the last one ends, a
// spare for the same limits is prepared after prepareAfter unless another
// execution starts meanwhile.
func (fs *forkServer) started() { fs.running.Add(1) }

func (fs *forkServer) ended(b *nativeBackend, l cgroup.Limits, disk int64) {
	if fs.running.Add(-1) != 0 {
		return
	}
	fs.prepMu.Lock()
	defer fs.prepMu.Unlock()
	if fs.retired {
		return
	}
	fs.prepWG.Add(1)
	time.AfterFunc(prepareAfter, func() {
		defer fs.prepWG.Done()
		b.prepare(fs, l, disk)
	})
}

// prepare asks fs for a spare in a new kit with limits l (see above).
func (b *nativeBackend) prepare(fs *forkServer, l cgroup.Limits, disk int64) {
	b.fsMu.Lock()
	closed := b.closed
	b.fsMu.Unlock()
	if closed || fs.running.Load() != 0 || !fs.usable() {
		return
	}
	fs.prepMu.Lock()
	if fs.retired || fs.preparing {
		fs.prepMu.Unlock()
		return
	}
	old := fs.prep
	if old != nil && old.limits == l && old.disk == disk {
		fs.prepMu.Unlock()
		return
	}
	fs.prep = nil
	fs.preparing = true
	fs.prepMu.Unlock()
	defer func() {
		fs.prepMu.Lock()
		fs.preparing = false
		fs.prepMu.Unlock()
	}()
	// The template drops the old spare (it is killed and reaped) before
	// it answers; then the old kit can go.
	defer func() {
		if old != nil {
			old.kit.closeFiles()
			_ = old.kit.cg.Delete()
		}
	}()
	kit, err := b.runKit(l)
	if err != nil {
		return
	}
	id, err := fs.sendPrepare(disk, kit)
	if err != nil {
		kit.closeFiles()
		_ = kit.cg.Delete()
		return
	}
	fs.prepMu.Lock()
	defer fs.prepMu.Unlock()
	if fs.retired {
		// Retired meanwhile: the spare dies with the template.
		kit.closeFiles()
		_ = kit.cg.Delete()
		return
	}
	fs.prep = &prepared{id: id, kit: kit, limits: l, disk: disk}
}

// sendPrepare sends a prepare request with kit's cgroup.procs files and
// returns the cgroup id the next fork request names.
func (fs *forkServer) sendPrepare(disk int64, kit *warmKit) (uint64, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.seq++
	m := prepareMsg{Type: "prepare", ID: fs.seq, Disk: disk, Cgroup: fs.seq}
	msg, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	fds := kit.procs
	_ = fs.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer fs.conn.SetDeadline(time.Time{})
	if _, _, err := fs.conn.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		return 0, fmt.Errorf("fork server: send: %w", err)
	}
	buf := make([]byte, 4096)
	n, err := fs.conn.Read(buf)
	if err != nil {
		return 0, fmt.Errorf("fork server: no answer: %w", err)
	}
	var r zygote.Reply
	if err := json.Unmarshal(buf[:n], &r); err != nil || r.ID != m.ID {
		return 0, fmt.Errorf("fork server: bad answer %q", buf[:n])
	}
	if r.Type != "prepared" {
		return 0, fmt.Errorf("fork server: %s", r.Error)
	}
	return m.Cgroup, nil
}

// stopPreparing makes fs prepare no more spares and waits for those being
// prepared; retire calls it once no execution runs.
func (fs *forkServer) stopPreparing() {
	fs.prepMu.Lock()
	fs.retired = true
	fs.prepMu.Unlock()
	fs.prepWG.Wait()
}

// dropPrepared deletes fs's prepared kit (the template is gone).
func (fs *forkServer) dropPrepared() {
	fs.prepMu.Lock()
	p := fs.prep
	fs.prep = nil
	fs.prepMu.Unlock()
	if p != nil {
		p.kit.closeFiles()
		_ = p.kit.cg.Delete()
	}
}
