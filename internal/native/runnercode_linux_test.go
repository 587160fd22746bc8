package native

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	if loadCode(key) != nil {
		t.Fatal("empty cache returned code")
	}
	storeCode(key, code)
	if got := loadCode(key); string(got) != string(code) {
		t.Fatal("cache round trip changed the code")
	}
	// A corrupted file is never used.
	p := filepath.Join(codeCacheDir(), key+".code")
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if loadCode(key) != nil {
		t.Fatal("corrupt cache file was used")
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
