package doctor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

// hostReport runs the probes once for every test that looks at this host.
var hostReport = sync.OnceValue(Check)

func find(t *testing.T, r Report, name string) Item {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", name, r.Checks)
	return Item{}
}

func TestCheckHost(t *testing.T) {
	r := hostReport()
	want := []string{NameUserNS, NameSeccomp, NameLandlock, NameCgroup, NameMigrations, NamePython, NameNumpy, NamePandas, NameMatplotlib, NameRunsc, NameKVM}
	if len(r.Checks) != len(want) {
		t.Fatalf("got %d checks, want %d: %+v", len(r.Checks), len(want), r.Checks)
	}
	ok := true
	for i, c := range r.Checks {
		if c.Name != want[i] {
			t.Errorf("check %d is %q, want %q", i, c.Name, want[i])
		}
		if c.Detail == "" {
			t.Errorf("%s: empty detail", c.Name)
		}
		if !c.OK && c.Fix == "" {
			t.Errorf("%s is missing but has no fix hint: %+v", c.Name, c)
		}
		if c.Required && !c.OK {
			ok = false
		}
	}
	if r.OK != ok {
		t.Errorf("Report.OK = %v, but the required checks say %v", r.OK, ok)
	}
	// The report must round-trip through JSON (pybox doctor --json).
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Checks) != len(r.Checks) || back.OK != r.OK || back.LandlockABI != r.LandlockABI {
		t.Errorf("JSON round trip changed the report:\n%s", b)
	}
}

// The probes must agree with the independent checks of the require package.
func TestProbesMatchKernel(t *testing.T) {
	r := hostReport()
	if got, want := r.LandlockABI > 0, require.LandlockABI() > 0; got != want {
		t.Errorf("landlock available = %v, require.LandlockABI says %v", got, want)
	}
	if l := find(t, r, NameLandlock); l.OK != (r.LandlockABI > 0) {
		t.Errorf("landlock check %+v disagrees with ABI %d", l, r.LandlockABI)
	}
	t.Run("userns", func(t *testing.T) {
		require.UserNS(t)
		if c := find(t, r, NameUserNS); !c.OK {
			t.Errorf("user namespaces work here but doctor says %+v", c)
		}
	})
	t.Run("seccomp", func(t *testing.T) {
		require.Seccomp(t)
		if c := find(t, r, NameSeccomp); !c.OK {
			t.Errorf("seccomp works here but doctor says %+v", c)
		}
	})
	t.Run("landlock-features", func(t *testing.T) {
		require.Landlock(t, 4)
		if len(r.Landlock) < 2 || r.Landlock[0] != "filesystem" || r.Landlock[1] != "network" {
			t.Errorf("ABI %d should give filesystem and network rules, got %v", r.LandlockABI, r.Landlock)
		}
	})
	t.Run("python", func(t *testing.T) {
		require.Python(t)
		c := find(t, r, NamePython)
		if !c.OK || r.Python == "" {
			t.Errorf("%s exists but doctor says %+v (version %q)", require.PythonPath, c, r.Python)
		}
		for _, m := range []string{NameNumpy, NamePandas, NameMatplotlib} {
			if _, ok := r.PythonModules[m]; !ok {
				t.Errorf("python_modules has no entry for %s: %v", m, r.PythonModules)
			}
		}
	})
	t.Run("numpy", func(t *testing.T) {
		require.PythonModule(t, "numpy")
		if c := find(t, r, NameNumpy); !c.OK || r.PythonModules[NameNumpy] == "" {
			t.Errorf("numpy imports but doctor says %+v", c)
		}
	})
}

func TestMissingTools(t *testing.T) {
	dir := t.TempDir()
	r := run(config{
		python: filepath.Join(dir, "no-python"),
		runsc:  filepath.Join(dir, "no-runsc"),
		kvm:    filepath.Join(dir, "no-kvm"),
	})
	if r.OK {
		t.Error("Report.OK without a Python interpreter")
	}
	for _, name := range []string{NamePython, NameNumpy, NamePandas, NameMatplotlib, NameRunsc, NameKVM} {
		c := find(t, r, name)
		if c.OK || c.Fix == "" {
			t.Errorf("%s: want missing with a fix hint, got %+v", name, c)
		}
	}
	if find(t, r, NameRunsc).Required || find(t, r, NameKVM).Required {
		t.Error("runsc and kvm are not needed by the native backend")
	}
}

func TestBrokenRunsc(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "runsc")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'runsc version release-20240101.0'\necho 'spec: 1.1.0'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, v := checkRunsc(fake)
	if !c.OK || v != "runsc version release-20240101.0" {
		t.Errorf("working runsc: got %+v, version %q", c, v)
	}
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho boom >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, _ = checkRunsc(fake)
	if c.OK || c.Fix == "" {
		t.Errorf("failing runsc: got %+v", c)
	}
}

// TestMigrations: the hint follows the mount options, whichever kind of
// hierarchy carries favordynmods; it is never required.
func TestMigrations(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mountinfo string
		ok        bool
		fix       string
	}{
		{"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n", false, "mount -o remount,favordynmods /sys/fs/cgroup/unified "},
		{"41 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate,favordynmods\n", true, ""},
		{"39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids,favordynmods\n", true, ""},
		{"39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n", false, "on one cgroup hierarchy"},
	} {
		p := filepath.Join(dir, "mountinfo")
		if err := os.WriteFile(p, []byte(tc.mountinfo), 0o644); err != nil {
			t.Fatal(err)
		}
		c := checkMigrations(p)
		if c.OK != tc.ok || c.Required || c.Detail == "" || !strings.Contains(c.Fix, tc.fix) {
			t.Errorf("%q: %+v", tc.mountinfo, c)
		}
	}
	if c := checkMigrations(filepath.Join(dir, "none")); c.OK || c.Fix == "" {
		t.Errorf("no mountinfo: %+v", c)
	}
}

// TestMapDenied: a failed init start whose namespaces work names the id
// map and root when that is the cause.
func TestMapDenied(t *testing.T) {
	d, fix := mapDenied(syscall.EPERM, 65534)
	if !strings.Contains(d, "1000000000") || !strings.Contains(fix, "root") {
		t.Errorf("as nobody: %q / %q", d, fix)
	}
	d, fix = mapDenied(syscall.ENOENT, 0)
	if strings.Contains(d, "mapping") || fix == "" || !strings.Contains(d, "no such file") {
		t.Errorf("as root, ENOENT: %q / %q", d, fix)
	}
}
