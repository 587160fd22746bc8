package native

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
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
// to prepare a spare in that kit's cgroup: the spare moves itself there
// while it sets up, and the wait is nobody's. The template reaps and
// reports the spare like any child, on the kit's status pipe, and hands
// the supervisor the spare's socket: the next execution with the same
// limits and disk size takes that kit and gives the spare its execution
// directly, without a round trip through the template (one wake-up of
// another process fewer). Any other execution is served as before.

// prepareAfter is how long a template must be idle before its next spare
// is prepared.
const prepareAfter = 2 * time.Millisecond

// prepared is a kit whose cgroup holds a template's spare, and the
// spare's socket.
type prepared struct {
	kit    *warmKit
	ctl    *net.UnixConn
	limits cgroup.Limits
	disk   int64
}

// drop closes the spare's socket (the spare exits) and deletes the kit.
func (p *prepared) drop() {
	p.ctl.Close()
	p.kit.closeFiles()
	_ = p.kit.cg.Delete()
}

// prepareMsg asks the template for a spare in a cgroup (see zygote.go).
type prepareMsg struct {
	Type string `json:"type"`
	ID   uint64 `json:"id"`
	Disk int64  `json:"disk"`
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
	if old != nil {
		old.drop()
	}
	kit, err := b.runKit(l)
	if err != nil {
		return
	}
	ctl, err := fs.sendPrepare(disk, kit)
	if err != nil {
		kit.closeFiles()
		_ = kit.cg.Delete()
		return
	}
	p := &prepared{kit: kit, ctl: ctl, limits: l, disk: disk}
	fs.prepMu.Lock()
	defer fs.prepMu.Unlock()
	if fs.retired {
		// Retired meanwhile: the spare dies with the template.
		p.drop()
		return
	}
	fs.prep = p
}

// sendPrepare sends a prepare request with kit's cgroup.procs files and
// its status pipe, and returns the prepared spare's socket.
func (fs *forkServer) sendPrepare(disk int64, kit *warmKit) (*net.UnixConn, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.seq++
	fs.forks++
	m := prepareMsg{Type: "prepare", ID: fs.seq, Disk: disk}
	msg, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, f := range kit.procs {
		fds = append(fds, int(f.Fd()))
	}
	fds = append(fds, int(kit.pipes[5][1].Fd()))
	_ = fs.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer fs.conn.SetDeadline(time.Time{})
	if _, _, err := fs.conn.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		return nil, fmt.Errorf("fork server: send: %w", err)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := fs.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("fork server: no answer: %w", err)
	}
	var got []int
	if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cms {
			if r, err := unix.ParseUnixRights(&cm); err == nil {
				got = append(got, r...)
			}
		}
	}
	var r zygote.Reply
	if err := json.Unmarshal(buf[:n], &r); err != nil || r.ID != m.ID || r.Type != "prepared" || len(got) != 1 {
		for _, fd := range got {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("fork server: bad answer to prepare %q", buf[:n])
	}
	f := os.NewFile(uintptr(got[0]), "spare")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// dispatch hands a prepared spare its execution: the request and the
// execution's seven fds (see zygote.go), then the word that it is in its
// cgroup (it moved itself there).
func (fs *forkServer) dispatch(spare *net.UnixConn, fr forkRequest, fds []int) error {
	fs.mu.Lock()
	fs.seq++
	fs.forks++
	fr.Type, fr.ID = "fork", fs.seq
	fs.mu.Unlock()
	msg, err := json.Marshal(fr)
	if err != nil {
		return err
	}
	_ = spare.SetDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := spare.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("fork server: hand the spare its execution: %w", err)
	}
	if _, err := spare.Write([]byte("1")); err != nil {
		return fmt.Errorf("fork server: hand the spare its execution: %w", err)
	}
	return nil
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
		p.drop()
	}
}

// templateAlive says whether the template still holds its end of fs.conn
// (a template that died has closed it): a prepared spare is handed an
// execution only then, since the spare dies with its template.
func (fs *forkServer) templateAlive() bool {
	rc, err := fs.conn.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	_ = rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(p, 0)
		alive = err == nil && (n == 0 || p[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) == 0)
	})
	return alive
}
