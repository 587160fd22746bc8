package wasm

import (
	"io"
	"io/fs"
	"sync/atomic"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// quota counts the bytes held by the files of one writable directory.
type quota struct {
	limit atomic.Int64
	used  atomic.Int64
}

// errNoSpace is what a write past the disk limit fails with. wazero cannot
// return ENOSPC, so the guest sees EIO ("OSError: [Errno 29] I/O error").
const errNoSpace = experimentalsys.EIO

// reserve accounts for growth bytes; it fails past the limit.
func (q *quota) reserve(growth int64) experimentalsys.Errno {
	if growth <= 0 {
		q.used.Add(growth)
		return 0
	}
	for {
		u := q.used.Load()
		if u+growth > q.limit.Load() {
			return errNoSpace
		}
		if q.used.CompareAndSwap(u, u+growth) {
			return 0
		}
	}
}

// quotaFS wraps a host directory (wazero's DirFS) for a per-run writable
// mount (/work, /tmp):
//   - the total size of its files is capped (EIO past the limit: WASI preview 1 as implemented by wazero has no ENOSPC), which
//     is what Request.Disk means for the native backend's tmpfs;
//   - symlinks cannot be created: the host resolves them when the guest
//     opens them, so a relative link like ../../../etc/passwd would escape
//     the directory.
//
// The guest is single-threaded, so the size bookkeeping is approximate only
// in the harmless direction (sparse writes count as written).
type quotaFS struct {
	experimentalsys.FS
	q *quota
}

func (q *quotaFS) Symlink(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

func (q *quotaFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	var before int64
	if flag&experimentalsys.O_TRUNC != 0 {
		if st, errno := q.FS.Lstat(path); errno == 0 && st.Mode.IsRegular() {
			before = st.Size
		}
	}
	f, errno := q.FS.OpenFile(path, flag, perm)
	if errno != 0 {
		return nil, errno
	}
	if before > 0 {
		q.q.reserve(-before)
	}
	if isDir, _ := f.IsDir(); isDir {
		return f, 0
	}
	return &quotaFile{File: f, q: q.q}, 0
}

func (q *quotaFS) Unlink(path string) experimentalsys.Errno {
	st, errno := q.FS.Lstat(path)
	if errno = q.FS.Unlink(path); errno == 0 && st.Mode.IsRegular() && st.Nlink <= 1 {
		q.q.reserve(-st.Size)
	}
	return errno
}

func (q *quotaFS) Rename(from, to string) experimentalsys.Errno {
	st, serr := q.FS.Lstat(to)
	errno := q.FS.Rename(from, to)
	if errno == 0 && serr == 0 && st.Mode.IsRegular() && st.Nlink <= 1 {
		q.q.reserve(-st.Size)
	}
	return errno
}

type quotaFile struct {
	experimentalsys.File
	q *quota
}

func (f *quotaFile) size() (int64, experimentalsys.Errno) {
	st, errno := f.File.Stat()
	return st.Size, errno
}

// grow reserves the bytes a write of n bytes at off adds to the file.
func (f *quotaFile) grow(off, n int64) experimentalsys.Errno {
	size, errno := f.size()
	if errno != 0 {
		return errno
	}
	if end := off + n; end > size {
		return f.q.reserve(end - size)
	}
	return 0
}

func (f *quotaFile) Write(b []byte) (int, experimentalsys.Errno) {
	var off int64
	if f.File.IsAppend() {
		size, errno := f.size()
		if errno != 0 {
			return 0, errno
		}
		off = size
	} else {
		o, errno := f.File.Seek(0, io.SeekCurrent)
		if errno != 0 {
			return 0, errno
		}
		off = o
	}
	if errno := f.grow(off, int64(len(b))); errno != 0 {
		return 0, errno
	}
	return f.File.Write(b)
}

func (f *quotaFile) Pwrite(b []byte, off int64) (int, experimentalsys.Errno) {
	if errno := f.grow(off, int64(len(b))); errno != 0 {
		return 0, errno
	}
	return f.File.Pwrite(b, off)
}

func (f *quotaFile) Truncate(n int64) experimentalsys.Errno {
	size, errno := f.size()
	if errno != 0 {
		return errno
	}
	if errno := f.q.reserve(n - size); errno != 0 {
		return errno
	}
	if errno := f.File.Truncate(n); errno != 0 {
		f.q.reserve(size - n)
		return errno
	}
	return 0
}

// Stat is passed through; declared so the embedded interface is explicit.
func (f *quotaFile) Stat() (sys.Stat_t, experimentalsys.Errno) { return f.File.Stat() }
