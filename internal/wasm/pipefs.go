package wasm

import (
	"io"
	"io/fs"
	"sync"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// The runner's channel inside the guest. WASI has no way to pass extra file
// descriptors, so the runner opens these two paths instead: "in" blocks
// until the host writes the exec frame (and reads EOF once the host closes
// it); "out" carries the runner's result frames to the host. Neither touches
// the host disk.
const (
	pipeDir     = "/.pybox"
	pipeIn      = pipeDir + "/in"
	pipeOut     = pipeDir + "/out"
	pipeInName  = "in"
	pipeOutName = "out"
)

// pipeFS is a tiny read-only directory holding the two channel files.
type pipeFS struct {
	experimentalsys.UnimplementedFS
	inR  *io.PipeReader
	outW *io.PipeWriter
	// ready is closed the first time the guest reads "in": the interpreter
	// has started and waits for its exec frame.
	ready     chan struct{}
	readyOnce sync.Once
}

func newPipeFS(inR *io.PipeReader, outW *io.PipeWriter) *pipeFS {
	return &pipeFS{inR: inR, outW: outW, ready: make(chan struct{})}
}

func (p *pipeFS) OpenFile(path string, flag experimentalsys.Oflag, _ fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	switch path {
	case ".", "":
		return &pipeDirFile{}, 0
	case pipeInName:
		if flag&(experimentalsys.O_WRONLY|experimentalsys.O_RDWR) != 0 {
			return nil, experimentalsys.EACCES
		}
		return &pipeInFile{fs: p}, 0
	case pipeOutName:
		if flag&(experimentalsys.O_WRONLY|experimentalsys.O_RDWR) == 0 {
			return nil, experimentalsys.EACCES
		}
		return &pipeOutFile{w: p.outW}, 0
	}
	if flag&experimentalsys.O_CREAT != 0 {
		return nil, experimentalsys.EROFS
	}
	return nil, experimentalsys.ENOENT
}

func (p *pipeFS) Stat(path string) (sys.Stat_t, experimentalsys.Errno) {
	switch path {
	case ".", "":
		return dirStat(), 0
	case pipeInName, pipeOutName:
		return pipeStat(), 0
	}
	return sys.Stat_t{}, experimentalsys.ENOENT
}

func (p *pipeFS) Lstat(path string) (sys.Stat_t, experimentalsys.Errno) { return p.Stat(path) }

func dirStat() sys.Stat_t  { return sys.Stat_t{Mode: fs.ModeDir | 0o500, Nlink: 2} }
func pipeStat() sys.Stat_t { return sys.Stat_t{Mode: 0o600, Nlink: 1} }

type pipeDirFile struct {
	experimentalsys.UnimplementedFile
}

func (*pipeDirFile) IsDir() (bool, experimentalsys.Errno)      { return true, 0 }
func (*pipeDirFile) Stat() (sys.Stat_t, experimentalsys.Errno) { return dirStat(), 0 }
func (*pipeDirFile) Readdir(int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	return nil, 0
}

type pipeInFile struct {
	experimentalsys.UnimplementedFile
	fs *pipeFS
}

func (*pipeInFile) Stat() (sys.Stat_t, experimentalsys.Errno) { return pipeStat(), 0 }
func (*pipeInFile) IsDir() (bool, experimentalsys.Errno)      { return false, 0 }
func (*pipeInFile) Pread([]byte, int64) (int, experimentalsys.Errno) {
	return 0, experimentalsys.EINVAL
}

func (f *pipeInFile) Read(b []byte) (int, experimentalsys.Errno) {
	f.fs.readyOnce.Do(func() { close(f.fs.ready) })
	n, err := f.fs.inR.Read(b)
	if err == io.EOF {
		return n, 0
	}
	if err != nil {
		return n, experimentalsys.EIO
	}
	return n, 0
}

type pipeOutFile struct {
	experimentalsys.UnimplementedFile
	w *io.PipeWriter
}

func (*pipeOutFile) Stat() (sys.Stat_t, experimentalsys.Errno) { return pipeStat(), 0 }
func (*pipeOutFile) IsDir() (bool, experimentalsys.Errno)      { return false, 0 }
func (*pipeOutFile) Pwrite([]byte, int64) (int, experimentalsys.Errno) {
	return 0, experimentalsys.EINVAL
}

func (f *pipeOutFile) Write(b []byte) (int, experimentalsys.Errno) {
	n, err := f.w.Write(b)
	if err != nil {
		return n, experimentalsys.EIO
	}
	return n, 0
}
