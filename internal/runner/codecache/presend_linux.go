package codecache

import (
	"errors"
	"syscall"
)

const (
	fSetPipeSize = 1031 // F_SETPIPE_SZ
	pageSize     = 4096
)

// StatID is st's FileID.
func StatID(st *syscall.Stat_t) FileID {
	return FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: st.Size, Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec}
}

// Stat is the FileID of path (following symlinks).
func Stat(path string) (FileID, bool) {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return FileID{}, false
	}
	return StatID(&st), true
}

// ErrPartial: PreSend wrote only a part of the frame.
var ErrPartial = errors.New("the runner code frame was written in part")

// PreSend writes to fd, the empty write end of the runner's input pipe,
// the runner code frame (a 4-byte big-endian length, then the payload) of
// the cache file that dir's ahead index names, when the index was written
// by this executable and the interpreter's file is the one it names. It
// returns the file sent; nil, nil when it sent nothing; ErrPartial when
// the pipe holds a part of the frame (its reader is then of no use).
//
// The payload goes from the page cache to the pipe (splice): pybox's early
// start has no buffer to fault in for it.
func PreSend(dir string, fd int) (*Source, error) {
	idx := readSmall(IndexPath(dir))
	exe, interp, interpID, key, ok := ParseIndex(idx)
	if !ok {
		return nil, nil
	}
	if id, ok := Stat("/proc/self/exe"); !ok || id != exe {
		return nil, nil
	}
	if id, ok := Stat(interp); !ok || id != interpID {
		return nil, nil
	}
	cf, err := syscall.Open(CodePath(dir, key), syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil
	}
	defer syscall.Close(cf)
	var st syscall.Stat_t
	if syscall.Fstat(cf, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, nil
	}
	n := st.Size - int64(HeaderLen)
	if n <= 0 || n > MaxCode {
		return nil, nil
	}
	// The pipe must take the whole frame at once: a slot for the length,
	// one per page of the file the payload spans.
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fSetPipeSize, uintptr(n)+uintptr(HeaderLen)+3*pageSize); e != 0 {
		return nil, nil
	}
	hdr := []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	if w, err := syscall.Write(fd, hdr); w != len(hdr) || err != nil {
		if w > 0 {
			return nil, ErrPartial
		}
		return nil, nil
	}
	off := int64(HeaderLen)
	for left := n; left > 0; {
		w, err := syscall.Splice(cf, &off, fd, nil, int(left), spliceNonblock)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || w <= 0 {
			return nil, ErrPartial
		}
		left -= w
	}
	return &Source{Key: key, File: StatID(&st)}, nil
}

const spliceNonblock = 2 // SPLICE_F_NONBLOCK

// readSmall reads up to 4 KiB of path; nil on error.
func readSmall(path string) []byte {
	f, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(f)
	buf := make([]byte, 4096)
	n := 0
	for n < len(buf) {
		r, err := syscall.Read(f, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if r <= 0 || err != nil {
			break
		}
		n += r
	}
	return buf[:n]
}
