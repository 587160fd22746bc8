package native

import (
	"os"
	"path/filepath"
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
