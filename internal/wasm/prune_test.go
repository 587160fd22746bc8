package wasm

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneOldBuildsFiles(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * pruneAge)
	write := func(name, data string, aged bool) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if aged {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("pybox-snapshot-old.img", "x", true)
	write("pybox-snapshot-new.img", "x", false)
	write("pybox-snapshot-cur.img", "x", true)
	write(".pybox-snapshot-tmp", "x", true)
	write("pybox-shape-old.json", `{"entry":"e/old","size":1}`, true)
	write("e/old", "code", true)
	write("pybox-shape-cur.json", `{"entry":"e/cur","size":1}`, true)
	write("e/cur", "code", true)
	write("pybox-shape-evil.json", `{"entry":"../outside","size":1}`, true)
	write("unrelated", "x", true)

	pruneOld(dir, "pybox-snapshot-cur.img", "pybox-snapshot-", ".pybox-snapshot-")
	pruneShapes(dir, "pybox-shape-cur.json")

	for name, want := range map[string]bool{
		"pybox-snapshot-old.img": false, ".pybox-snapshot-tmp": false,
		"pybox-snapshot-new.img": true, "pybox-snapshot-cur.img": true,
		"pybox-shape-old.json": false, "e/old": false,
		"pybox-shape-cur.json": true, "e/cur": true,
		"pybox-shape-evil.json": false, "unrelated": true,
	} {
		_, err := os.Stat(filepath.Join(dir, name))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", name, got, want)
		}
	}
}
