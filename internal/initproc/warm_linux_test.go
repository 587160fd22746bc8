package initproc

import (
	"encoding/json"
	"testing"
)

// TestWarmConfigDecodes: the warm-up config decodes, with every nested
// type present (the warm-up ignores errors, so a stale literal would warm
// nothing silently).
func TestWarmConfigDecodes(t *testing.T) {
	var c Config
	if err := json.Unmarshal(warmConfig, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Argv) != 1 || len(c.Mounts) != 1 || c.Mounts[0].Host != "/x" || len(c.Files) != 1 ||
		string(c.Files[0].Data) != "x" || c.Symlinks["x"] != "y" || string(c.SeccompFilter) != "x" {
		t.Errorf("decoded %+v", c)
	}
}
