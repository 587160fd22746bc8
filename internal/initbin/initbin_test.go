package initbin

import (
	"strings"
	"testing"
)

func TestInstallRefusesWithoutAMatchingStamp(t *testing.T) {
	old := Stamp
	defer func() { Stamp = old }()
	Stamp = ""
	if _, err := install(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no init embedded") {
		t.Errorf("no stamp: %v", err)
	}
	Stamp = strings.Repeat("0", 64)
	if _, err := install(t.TempDir()); err == nil {
		t.Error("a stamp that matches nothing was accepted")
	}
}
