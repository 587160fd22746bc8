package gvisor

import (
	"encoding/binary"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/runner"
)

// exitPrefix starts the exit frame the runner writes last.
const exitPrefix = `{"type":"exit"`

// maxExitFrame bounds what is read of a frame that starts like an exit
// frame: the runner's is {"type":"exit","exit_code":N}.
const maxExitFrame = 64

// watchPoll is how often the result file is looked at even without an
// inotify event (a safety net: events are expected for every write).
const watchPoll = 20 * time.Millisecond

// exitSeen is a complete exit frame in the result file.
type exitSeen struct {
	end      int64 // the offset just past the frame
	exitCode int   // what the runner exits with right after it
}

// exitWatch watches the runner's result file (inotify on the host tmpfs,
// which the gofer writes through) and reports the first complete, valid
// exit frame on seen: the runner writes it once it has sent its result and
// done what Python's finalisation does before exit. The frame may be
// forged by the code (which can write to the file); that ends its own run
// early with its own lies, no more: limits are decided by the supervisor.
type exitWatch struct {
	ino      *os.File
	f        *os.File
	maxFrame int
	seen     chan exitSeen
	stop     chan struct{}
	done     chan struct{}
}

// watchExit starts watching the result file at path.
func watchExit(path string, maxFrame int) (*exitWatch, error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	ino := os.NewFile(uintptr(ifd), "inotify")
	if _, err := unix.InotifyAddWatch(ifd, path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		ino.Close()
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		ino.Close()
		return nil, err
	}
	w := &exitWatch{
		ino: ino, f: os.NewFile(uintptr(fd), path), maxFrame: maxFrame,
		seen: make(chan exitSeen, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

func (w *exitWatch) loop() {
	defer close(w.done)
	var off int64
	events := make([]byte, 4096)
	for {
		rs, found, ok := w.scan(&off)
		if found {
			w.seen <- rs
			return
		}
		if !ok {
			return // not a file the runner wrote: wait for runsc's exit
		}
		_ = w.ino.SetReadDeadline(time.Now().Add(watchPoll))
		_, err := w.ino.Read(events)
		select {
		case <-w.stop:
			return
		default:
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

// scan walks the complete frames from *off on. found reports a valid
// exit frame; ok false means the file cannot be the runner's (a frame over
// the cap).
func (w *exitWatch) scan(off *int64) (es exitSeen, found, ok bool) {
	var h [4]byte
	var p [len(exitPrefix)]byte
	for {
		if k, _ := w.f.ReadAt(h[:], *off); k < len(h) {
			return es, false, true
		}
		n := int64(binary.BigEndian.Uint32(h[:]))
		if n > int64(w.maxFrame) {
			return es, false, false
		}
		end := *off + 4 + n
		st, err := w.f.Stat()
		if err != nil || st.Size() < end {
			return es, false, true
		}
		if k, _ := w.f.ReadAt(p[:], *off+4); k == len(p) && string(p[:]) == exitPrefix && n <= maxExitFrame {
			b := make([]byte, n)
			if k, _ := w.f.ReadAt(b, *off+4); int64(k) == n {
				if m, err := runner.DecodeMessage(b); err == nil && m.Type == runner.TypeExit {
					return exitSeen{end: end, exitCode: *m.ExitCode}, true, true
				}
			}
		}
		*off = end
	}
}

// halt stops the watch.
func (w *exitWatch) halt() {
	close(w.stop)
	_ = w.ino.SetReadDeadline(time.Now())
	<-w.done
}

// release closes the watch's files, once halted. Closing an inotify
// instance waits for an RCU grace period (milliseconds): teardowns do it
// in the background.
func (w *exitWatch) release() {
	w.ino.Close()
	w.f.Close()
}
