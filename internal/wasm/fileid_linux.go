package wasm

import (
	"encoding/binary"
	"io/fs"
	"syscall"
)

// fileID identifies a file's content cheaply: device, inode, size, and the
// modification and change times. Any write changes the change time (which
// only root can set back), so a changed file gets a new identity without
// reading it.
func fileID(path string) ([]byte, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	b := []byte("stat:")
	for _, v := range []uint64{uint64(st.Dev), st.Ino, uint64(st.Size),
		uint64(st.Mtim.Sec), uint64(st.Mtim.Nsec), uint64(st.Ctim.Sec), uint64(st.Ctim.Nsec)} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b, nil
}

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
