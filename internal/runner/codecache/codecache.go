// Package codecache is the layout of the on-disk cache of the runner's
// compiled code (the native backend fills it, see internal/native), and
// its "ahead" index: what lets `pybox run`'s early start
// (internal/spawn/early) put a default request's runner code on the
// interpreter's input before the rest of pybox has initialised, so that
// the interpreter loads the runner while pybox starts up instead of
// after.
//
// A cache file is Magic, the SHA-256 of the payload, then the payload: the
// runner's code object in marshal format for one interpreter, made by
// runner.CompileScript. Files are written to a temporary name and renamed
// into place, never rewritten: content under one [FileID] never changes.
//
// The index names the cache file of the default interpreter, with the
// identity of the pybox executable that wrote it and of the interpreter
// file. [PreSend] trusts it only for the same executable (so the same
// embedded runner) and an unchanged interpreter; the native backend then
// checks that the file sent is the one it would send itself
// ([Source]) before it uses an init that got it.
//
// It uses package syscall only, so that package early can import it.
package codecache

// Magic starts every cache file; then the SHA-256 of the payload.
const Magic = "PYBOXRC1"

// HeaderLen is the length of a cache file's header (Magic, SHA-256).
const HeaderLen = len(Magic) + 32

// MaxCode caps a payload.
const MaxCode = 1 << 20

// indexMagic starts the index.
const indexMagic = "PYBOXA1"

// Dir is the cache's directory below pybox's cache directory.
func Dir(cacheDir string) string { return cacheDir + "/runner" }

// CodePath is the cache file of key in dir.
func CodePath(dir, key string) string { return dir + "/" + key + ".code" }

// IndexPath is the ahead index in dir.
func IndexPath(dir string) string { return dir + "/ahead" }

// FileID identifies one version of a file.
type FileID struct {
	Dev, Ino    uint64
	Size, Mtime int64 // Mtime in nanoseconds
}

// Source is a cache file that runner code came from: its key and the
// version of the file read.
type Source struct {
	Key  string
	File FileID
}

// Index is the ahead index's content: the cache file for interpreter
// (whose file is interpID), written by the executable exe.
func Index(exe FileID, interpreter string, interpID FileID, key string) []byte {
	b := []byte(indexMagic)
	b = appendID(append(b, 0), exe)
	b = append(append(append(b, 0), interpreter...), 0)
	b = appendID(b, interpID)
	b = append(append(append(b, 0), key...), '\n')
	return b
}

// ParseIndex is Index's inverse.
func ParseIndex(b []byte) (exe FileID, interpreter string, interpID FileID, key string, ok bool) {
	f := split(b)
	if len(f) != 5 || f[0] != indexMagic || len(b) == 0 || b[len(b)-1] != '\n' {
		return
	}
	var ok1, ok2 bool
	exe, ok1 = parseID(f[1])
	interpID, ok2 = parseID(f[3])
	interpreter, key = f[2], f[4][:len(f[4])-1]
	ok = ok1 && ok2 && interpreter != "" && validKey(key)
	return
}

// validKey: a key is what names its file, lower-case hex.
func validKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func split(b []byte) []string {
	var out []string
	start := 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}

func appendID(b []byte, id FileID) []byte {
	for i, v := range []uint64{id.Dev, id.Ino, uint64(id.Size), uint64(id.Mtime)} {
		if i > 0 {
			b = append(b, ':')
		}
		b = appendUint(b, v)
	}
	return b
}

func appendUint(b []byte, v uint64) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

func parseID(s string) (FileID, bool) {
	var v [4]uint64
	n, digits := 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ':' {
			if digits == 0 {
				return FileID{}, false
			}
			n++
			digits = 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || digits == 19 || n == len(v) || (digits == 1 && v[n] == 0) {
			return FileID{}, false
		}
		v[n] = v[n]*10 + uint64(c-'0')
		digits++
	}
	if n != len(v) {
		return FileID{}, false
	}
	return FileID{Dev: v[0], Ino: v[1], Size: int64(v[2]), Mtime: int64(v[3])}, true
}
