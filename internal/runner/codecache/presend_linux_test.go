package codecache

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// cache makes a cache directory whose index names a file of n payload
// bytes for the interpreter file interp, written by exe.
func cache(t *testing.T, exe FileID, interp string, n int) (dir string, payload []byte) {
	t.Helper()
	dir = t.TempDir()
	payload = bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	hdr := make([]byte, HeaderLen)
	copy(hdr, Magic)
	if err := os.WriteFile(CodePath(dir, "ab12"), append(hdr, payload...), 0o600); err != nil {
		t.Fatal(err)
	}
	id, ok := Stat(interp)
	if !ok {
		t.Fatal("stat", interp)
	}
	if err := os.WriteFile(IndexPath(dir), Index(exe, interp, id, "ab12"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, payload
}

// pipe is a pipe whose write end is non-blocking, as the runner's input
// is in pybox.
func pipe(t *testing.T) (r *os.File, w int) {
	t.Helper()
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(p[1], true); err != nil {
		t.Fatal(err)
	}
	r = os.NewFile(uintptr(p[0]), "r")
	t.Cleanup(func() { r.Close() })
	return r, p[1]
}

// TestPreSend: the frame is the payload, whole, whatever the pipe's
// default size (payloads larger than 64 KiB too); nothing is sent for an
// index written by another executable, for a changed interpreter, or for
// a file too large or missing.
func TestPreSend(t *testing.T) {
	self, ok := Stat("/proc/self/exe")
	if !ok {
		t.Fatal("stat /proc/self/exe")
	}
	interp := filepath.Join(t.TempDir(), "python")
	if err := os.WriteFile(interp, []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 4096 - HeaderLen, 64 << 10, 300 << 10} {
		dir, payload := cache(t, self, interp, n)
		r, w := pipe(t)
		src, err := PreSend(dir, w)
		syscall.Close(w)
		if err != nil || src == nil || src.Key != "ab12" || src.File.Size != int64(HeaderLen+n) {
			t.Fatalf("%d bytes: PreSend = %+v, %v", n, src, err)
		}
		got, _ := io.ReadAll(r)
		if len(got) != 4+n || binary.BigEndian.Uint32(got) != uint32(n) || !bytes.Equal(got[4:], payload) {
			t.Errorf("%d bytes: the pipe held %d bytes, not the frame", n, len(got))
		}
	}

	nothing := func(name, dir string) {
		t.Helper()
		r, w := pipe(t)
		src, err := PreSend(dir, w)
		syscall.Close(w)
		got, _ := io.ReadAll(r)
		if src != nil || err != nil || len(got) != 0 {
			t.Errorf("%s: PreSend = %+v, %v, and %d bytes sent; want nothing", name, src, err, len(got))
		}
	}
	other := self
	other.Ino++
	dir, _ := cache(t, other, interp, 100)
	nothing("another executable's index", dir)

	dir, _ = cache(t, self, interp, 100)
	if err := os.WriteFile(interp, []byte("#!/bin/sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	nothing("a changed interpreter", dir)

	dir, _ = cache(t, self, interp, MaxCode+1)
	nothing("a file too large", dir)

	dir, _ = cache(t, self, interp, 100)
	os.Remove(CodePath(dir, "ab12"))
	nothing("no code file", dir)

	nothing("no index", t.TempDir())
}
