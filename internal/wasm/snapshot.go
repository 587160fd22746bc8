package wasm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"
)

// A snapshot is the linear memory of pybox.wasm right after pybox_init:
// CPython initialised, the runner compiled, the AST machinery warmed up.
// Restoring it into a new instance (instead of running _initialize and
// pybox_init) skips CPython's start-up, Wizer-style. It is kept in a file
// next to the compilation cache, keyed by everything that shapes it.
//
// # File format
//
//	0   "PYBOXSNP"
//	8   u32 format version
//	12  [32]byte key
//	44  u32 memory size in bytes
//	48  u32 number of runs
//	52  runs: u32 offset, u32 length (each a run of non-zero 4 KiB pages)
//	..  the runs' bytes, in order
//	-4  u32 CRC-32C of everything before it
//
// All integers are little-endian. Pages not in a run are zero.
type snapshot struct {
	key  [32]byte
	size uint32   // linear memory size in bytes
	runs []memRun // non-zero parts of the memory, sorted
	data []byte   // the runs' bytes, concatenated
}

type memRun struct{ off, n, at uint32 } // at: offset of the run in data

const (
	snapMagic  = "PYBOXSNP"
	snapFormat = 1
	snapPage   = 4096
	snapHeader = 52
	// maxSnapSize bounds the memory size a snapshot file may claim.
	maxSnapSize = 1 << 30
)

var (
	errSnapMissing = errors.New("no snapshot file")
	errSnapInvalid = errors.New("invalid snapshot file")
	errSnapStale   = errors.New("stale snapshot file (built for other inputs)")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshotKey hashes everything a snapshot's memory depends on: the module
// (binID, see fileID), the stdlib zip, the guest's argv (prelude and
// runner) and environment, the guest layout, the snapshot format and the
// pybox build (its version and wazero's).
func snapshotKey(binID []byte, stdlibZip string, args []string) ([32]byte, error) {
	zipID, err := fileID(stdlibZip)
	if err != nil {
		return [32]byte{}, fmt.Errorf("snapshot key: %w", err)
	}
	if len(binID) == 0 {
		return [32]byte{}, errors.New("snapshot key: the module has no identity")
	}
	h := sha256.New()
	fmt.Fprintf(h, "pybox-wasm-snapshot %d\n", snapFormat)
	w := func(b []byte) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	w(binID)
	w(zipID)
	for _, a := range args {
		w([]byte(a))
	}
	w([]byte(strings.Join(baseEnv, "\x00")))
	w([]byte(strings.Join([]string{guestLib, guestWork, guestTmp, pipeDir}, "\x00")))
	if bi, ok := debug.ReadBuildInfo(); ok {
		w([]byte(bi.Main.Path + "@" + bi.Main.Version + " " + bi.Main.Sum))
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				w([]byte(d.Version + " " + d.Sum))
			}
		}
	}
	var k [32]byte
	h.Sum(k[:0])
	return k, nil
}

// snapshotPath is the file of the snapshot with key k in dir.
func snapshotPath(dir string, k [32]byte) string {
	return filepath.Join(dir, fmt.Sprintf("pybox-snapshot-%x.img", k[:12]))
}

// newSnapshot takes a copy of mem, a linear memory.
func newSnapshot(k [32]byte, mem []byte) *snapshot {
	s := &snapshot{key: k, size: uint32(len(mem))}
	zero := make([]byte, snapPage)
	for off := 0; off < len(mem); off += snapPage {
		end := min(off+snapPage, len(mem))
		if bytes.Equal(mem[off:end], zero[:end-off]) {
			continue
		}
		if n := len(s.runs); n > 0 && s.runs[n-1].off+s.runs[n-1].n == uint32(off) {
			s.runs[n-1].n += uint32(end - off)
		} else {
			s.runs = append(s.runs, memRun{off: uint32(off), n: uint32(end - off), at: uint32(len(s.data))})
		}
		s.data = append(s.data, mem[off:end]...)
	}
	return s
}

// encode returns the file form of s.
func (s *snapshot) encode() []byte {
	b := make([]byte, 0, snapHeader+8*len(s.runs)+len(s.data)+4)
	b = append(b, snapMagic...)
	b = binary.LittleEndian.AppendUint32(b, snapFormat)
	b = append(b, s.key[:]...)
	b = binary.LittleEndian.AppendUint32(b, s.size)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.runs)))
	for _, r := range s.runs {
		b = binary.LittleEndian.AppendUint32(b, r.off)
		b = binary.LittleEndian.AppendUint32(b, r.n)
	}
	b = append(b, s.data...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeSnapshot parses and checks a snapshot file: its checksum, its
// structure, and that it was made for key k.
func decodeSnapshot(b []byte, k [32]byte) (*snapshot, error) {
	bad := func(why string) (*snapshot, error) { return nil, fmt.Errorf("%w: %s", errSnapInvalid, why) }
	if len(b) < snapHeader+4 || string(b[:8]) != snapMagic {
		return bad("no snapshot header")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != snapFormat {
		return nil, fmt.Errorf("%w: format %d, want %d", errSnapStale, v, snapFormat)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return bad("checksum mismatch (corrupt)")
	}
	s := &snapshot{size: binary.LittleEndian.Uint32(b[44:])}
	copy(s.key[:], b[12:44])
	if s.key != k {
		return nil, errSnapStale
	}
	if s.size == 0 || s.size > maxSnapSize || s.size%(64<<10) != 0 {
		return bad(fmt.Sprintf("memory size %d", s.size))
	}
	n := uint64(binary.LittleEndian.Uint32(b[48:]))
	if n > uint64(s.size/snapPage) || snapHeader+8*n > uint64(len(body)) {
		return bad("run table overruns the file")
	}
	s.runs = make([]memRun, n)
	var at, end uint64
	for i := range s.runs {
		r := memRun{off: binary.LittleEndian.Uint32(b[snapHeader+8*i:]), n: binary.LittleEndian.Uint32(b[snapHeader+8*i+4:]), at: uint32(at)}
		if uint64(r.off) < end || r.n == 0 || uint64(r.off)+uint64(r.n) > uint64(s.size) {
			return bad("runs out of order or out of range")
		}
		end = uint64(r.off) + uint64(r.n)
		at += uint64(r.n)
		s.runs[i] = r
	}
	s.data = body[snapHeader+8*n:]
	if uint64(len(s.data)) != at {
		return bad("run lengths do not match the data")
	}
	return s, nil
}

// loadSnapshot reads the snapshot with key k from dir.
func loadSnapshot(dir string, k [32]byte) (*snapshot, error) {
	b, err := os.ReadFile(snapshotPath(dir, k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errSnapMissing
	}
	if err != nil {
		return nil, err
	}
	return decodeSnapshot(b, k)
}

// save writes s into dir atomically (a temporary file renamed into place).
func (s *snapshot) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".pybox-snapshot-*")
	if err != nil {
		return err
	}
	_, err = f.Write(s.encode())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), snapshotPath(dir, s.key))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	pruneOld(dir, filepath.Base(snapshotPath(dir, s.key)), "pybox-snapshot-", ".pybox-snapshot-")
	return nil
}

// pruneAge is how old the files of other builds (snapshots, shapes) must
// be before a new one removes them. A process still using one finds it
// gone and makes its own again.
const pruneAge = 24 * time.Hour

// pruneOld removes files in dir whose names start with one of prefixes,
// other than keep, last written more than pruneAge ago.
func pruneOld(dir, keep string, prefixes ...string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		n := e.Name()
		if n == keep || !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(n, p) }) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > pruneAge {
			if os.Remove(filepath.Join(dir, n)) == nil {
				removed = append(removed, n)
			}
		}
	}
	return removed
}

// buffer returns a new memory buffer of s.size bytes (capacity at least
// capacity) holding the image.
func (s *snapshot) buffer(capacity uint64) []byte {
	b := make([]byte, s.size, max(uint64(s.size), capacity))
	for _, r := range s.runs {
		copy(b[r.off:r.off+r.n], s.data[r.at:r.at+r.n])
	}
	return b
}

// restoreRange writes the image's bytes of [off, off+n) into mem (zero
// where the image has no run): instantiation wrote the module's data
// segments over the image there.
func (s *snapshot) restoreRange(mem []byte, off, n uint32) {
	end := off + n
	if end > s.size || int(end) > len(mem) {
		return // checked by the caller
	}
	clear(mem[off:end])
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].off+s.runs[i].n > off })
	for ; i < len(s.runs) && s.runs[i].off < end; i++ {
		r := s.runs[i]
		lo, hi := max(r.off, off), min(r.off+r.n, end)
		copy(mem[lo:hi], s.data[r.at+(lo-r.off):r.at+(hi-r.off)])
	}
}
