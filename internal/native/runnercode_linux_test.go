package native

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pybox-dev/pybox/internal/runner/codecache"
)

func TestRunnerCodeCache(t *testing.T) {
	t.Setenv("PYBOX_CACHE_DIR", t.TempDir())
	py, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3")
	}
	key, ok := codeKey(py)
	if !ok {
		t.Fatalf("%s is not eligible for compiled runner code", py)
	}
	code, err := compileRunner(py)
	if err != nil {
		t.Fatal(err)
	}
	if len(code) == 0 || code[0]&0x7f != 'c' { // marshal TYPE_CODE
		t.Fatalf("compiled runner does not start with a code object: % x", code[:min(4, len(code))])
	}
	if c, _ := loadCode(key); c != nil {
		t.Fatal("empty cache returned code")
	}
	storeCode(key, code)
	if got, id := loadCode(key); string(got) != string(code) || id.Size != int64(codecache.HeaderLen+len(code)) {
		t.Fatalf("cache round trip changed the code, or the file's identity is wrong (%+v)", id)
	}
	// A corrupted file is never used.
	p := filepath.Join(codeCacheDir(), key+".code")
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, _ := loadCode(key); c != nil {
		t.Fatal("corrupt cache file was used")
	}
}

// TestRunnerCodeAheadIndex: the code of the default interpreter, once read
// from the cache, is named by the cache's ahead index for this
// executable, and codecache.PreSend then writes that very file to a pipe
// as the runner's first frame: the same Source the backend compares.
func TestRunnerCodeAheadIndex(t *testing.T) {
	t.Setenv("PYBOX_CACHE_DIR", t.TempDir())
	py, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3")
	}
	resetCodeCache := func() {
		codeCache.Lock()
		codeCache.m, codeCache.indexed = nil, ""
		codeCache.Unlock()
	}
	resetCodeCache()
	t.Cleanup(resetCodeCache)
	code, src := runnerCode(py) // compiled and stored: not read from a file
	if code == nil || src.Key == "" || src.File != (codecache.FileID{}) {
		t.Fatalf("first runnerCode: %d bytes, %+v", len(code), src)
	}
	indexAhead(py, src)
	if _, err := os.Stat(codecache.IndexPath(codeCacheDir())); !os.IsNotExist(err) {
		t.Fatalf("an index for code not read from a file: %v", err)
	}
	resetCodeCache()
	code2, src2 := runnerCode(py)
	if !bytes.Equal(code, code2) || src2.Key != src.Key || src2.File.Size != int64(codecache.HeaderLen+len(code)) {
		t.Fatalf("second runnerCode: %d bytes, %+v", len(code2), src2)
	}
	indexAhead(py, src2)
	b, err := os.ReadFile(codecache.IndexPath(codeCacheDir()))
	if err != nil {
		t.Fatal(err)
	}
	exe, interp, interpID, key, ok := codecache.ParseIndex(b)
	self, _ := codecache.Stat("/proc/self/exe")
	pyID, _ := codecache.Stat(py)
	if !ok || exe != self || interp != py || interpID != pyID || key != src.Key {
		t.Fatalf("index %q", b)
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	defer r.Close()
	sent, err := codecache.PreSend(codeCacheDir(), int(w.Fd()))
	w.Close()
	if err != nil || sent == nil || *sent != src2 {
		t.Fatalf("PreSend: %+v, %v; want %+v", sent, err, src2)
	}
	got, err := io.ReadAll(r)
	if err != nil || len(got) != 4+len(code) || int(binary.BigEndian.Uint32(got)) != len(code) || !bytes.Equal(got[4:], code) {
		t.Fatalf("the pipe held %d bytes (%v), want a frame of %d", len(got), err, len(code))
	}
}

func TestRunnerCodeOnlyForRootOwnedInterpreters(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"python3", filepath.Join(dir, "python3"), "/usr/bin/does-not-exist"} {
		if _, ok := codeKey(p); ok {
			t.Errorf("%s: eligible, want not", p)
		}
	}
	t.Setenv("PYBOX_RUNNER_CODE", "0")
	if _, ok := codeKey("/usr/bin/python3"); ok {
		t.Error("PYBOX_RUNNER_CODE=0 did not turn it off")
	}
}

// The runner's lazily compiled parts (_JSON, _ERR, _EXIT, ...) come
// precompiled with it: each one's source string is replaced by its code
// object in marshal format, so that no cold run compiles them.
func TestRunnerCodePartsPrecompiled(t *testing.T) {
	py, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3")
	}
	code, err := compileRunner(py)
	if err != nil {
		t.Fatal(err)
	}
	check := `import marshal, sys, types
c = marshal.loads(sys.stdin.buffer.read())
parts = [marshal.loads(x) for x in c.co_consts if type(x) is bytes]
assert all(type(p) is types.CodeType for p in parts), parts
names = sorted(n for p in parts for n in p.co_names if n in ("to_json", "_run_async", "_format_tb", "_finish", "_end", "_display"))
print(len(parts), " ".join(names))
left = [x[:40] for x in c.co_consts if type(x) is str and len(x) > 2000]
assert not left, left
`
	cmd := exec.Command(py, "-I", "-S", "-B", "-c", check)
	cmd.Stdin = bytes.NewReader(code)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "5 _display _end _finish _format_tb _run_async to_json"; got != want {
		t.Errorf("precompiled parts: got %q, want %q", got, want)
	}
}
