package initbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/initbin/stamp"
)

func TestInstallRefusesWithoutAMatchingStamp(t *testing.T) {
	old := stamp.Value
	defer func() { stamp.Value = old }()
	stamp.Value = ""
	if _, err := install(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no init embedded") {
		t.Errorf("no stamp: %v", err)
	}
	stamp.Value = strings.Repeat("0", 64)
	if _, err := install(t.TempDir()); err == nil {
		t.Error("a stamp that matches nothing was accepted")
	}
}

func TestPruneKeepsRecentAndCurrent(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * pruneAge)
	for _, n := range []string{"pybox-init-old", "pybox-init-new", "pybox-init-keep", ".pybox-init-tmp", "other"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("x"), 0o555); err != nil {
			t.Fatal(err)
		}
		if n != "pybox-init-new" {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	prune(dir, "pybox-init-keep")
	for n, want := range map[string]bool{"pybox-init-old": false, ".pybox-init-tmp": false, "pybox-init-new": true, "pybox-init-keep": true, "other": true} {
		_, err := os.Stat(filepath.Join(dir, n))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", n, got, want)
		}
	}
}
