package initproc

import (
	"testing"

	"github.com/pybox-dev/pybox/internal/api"
)

// TestAheadMatches: a config matches the one an init started ahead
// assumed only when every field the steps up to the interpreter's start
// read is the same; what only the run's end reads may differ.
func TestAheadMatches(t *testing.T) {
	a, err := AheadConfig()
	if err != nil {
		t.Skipf("no default interpreter here: %v", err)
	}
	same := func(c Config) Config {
		c.Argv = append([]string(nil), c.Argv...)
		c.Env = append([]string(nil), c.Env...)
		c.Layout.Binds = append([]string(nil), c.Layout.Binds...)
		c.Layout.EtcFiles = append([]string(nil), c.Layout.EtcFiles...)
		m := map[string]string{}
		for k, v := range c.Layout.Symlinks {
			m[k] = v
		}
		c.Layout.Symlinks = m
		c.SeccompFilter = append([]byte(nil), c.SeccompFilter...)
		return c
	}
	if c := same(a); !c.AheadMatches(&a) {
		t.Fatal("AheadConfig does not match itself")
	}
	c := same(a)
	c.CollectFiles, c.FilesLimit, c.Trace = true, 5, true
	if !c.AheadMatches(&a) {
		t.Error("CollectFiles, FilesLimit and Trace are read after the interpreter started: they may differ")
	}
	for name, change := range map[string]func(*Config){
		"argv":        func(c *Config) { c.Argv[len(c.Argv)-1] = "9" },
		"env":         func(c *Config) { c.Env = append(c.Env, "A=1") },
		"binds":       func(c *Config) { c.Binds = append(c.Binds, "/opt") },
		"symlinks":    func(c *Config) { c.Symlinks["x"] = "y" },
		"etc files":   func(c *Config) { c.EtcFiles = c.EtcFiles[1:] },
		"disk":        func(c *Config) { c.DiskBytes++ },
		"mounts":      func(c *Config) { c.Mounts = make([]api.Mount, 1) },
		"files":       func(c *Config) { c.Files = make([]api.File, 1) },
		"seccomp":     func(c *Config) { c.SeccompFilter[0] ^= 1 },
		"summary":     func(c *Config) { c.SeccompSummary += "x" },
		"best effort": func(c *Config) { c.BestEffort = true },
		"session":     func(c *Config) { c.Session = true },
		"template":    func(c *Config) { c.Template = true },
		"late cgroup": func(c *Config) { c.LateCgroup = false },
	} {
		c := same(a)
		change(&c)
		if c.AheadMatches(&a) {
			t.Errorf("a config with another %s matches", name)
		}
	}
}
