// Package doctor probes the host for what pybox can enforce: user
// namespaces, seccomp, Landlock, cgroups, the Python interpreter and its
// libraries, and the extra tiers (runsc for gvisor, /dev/kvm for microVMs).
//
// The probes are real: the user namespace check starts a process in new
// namespaces, the Landlock check asks the kernel for its ABI. [Check] never
// changes the calling process (no restriction is applied to it).
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/cgroup"
)

// Check names, in report order.
const (
	NameUserNS     = "userns"
	NameSeccomp    = "seccomp"
	NameLandlock   = "landlock"
	NameCgroup     = "cgroup"
	NameMigrations = "migrations"
	NamePython     = "python"
	NameNumpy      = "numpy"
	NamePandas     = "pandas"
	NameMatplotlib = "matplotlib"
	NameRunsc      = "runsc"
	NameKVM        = "kvm"
)

// DefaultPython is the interpreter the native backend runs by default.
const DefaultPython = "/usr/bin/python3"

// Report is what the host offers.
type Report struct {
	// OK is true when the native backend can enforce every layer here:
	// every Required check passed.
	OK bool `json:"ok"`
	// Checks are the individual probes, in a fixed order.
	Checks []Item `json:"checks"`
	// Kernel is the kernel release (uname -r).
	Kernel string `json:"kernel,omitempty"`
	// LandlockABI is the Landlock ABI the kernel offers; 0 without Landlock.
	LandlockABI int `json:"landlock_abi"`
	// Landlock lists the Landlock rule kinds that ABI gives: filesystem
	// (ABI 1), network (4) and scope (6).
	Landlock []string `json:"landlock,omitempty"`
	// Cgroup describes the cgroup set-up pybox would use.
	Cgroup *Cgroup `json:"cgroup,omitempty"`
	// Python is the interpreter's version, e.g. "3.11.2".
	Python string `json:"python,omitempty"`
	// PythonModules maps numpy, pandas and matplotlib to their version, or
	// to "" when they cannot be imported.
	PythonModules map[string]string `json:"python_modules,omitempty"`
	// Runsc is the first line of `runsc --version`, when runsc is found.
	Runsc string `json:"runsc,omitempty"`
}

// Item is one probe's outcome.
type Item struct {
	// Name is one of the Name* constants.
	Name string `json:"name"`
	// OK says the feature is available.
	OK bool `json:"ok"`
	// Required says the native backend needs it to enforce every layer.
	Required bool `json:"required"`
	// Detail is what was found, or why the probe failed.
	Detail string `json:"detail"`
	// Fix is a hint on how to get the feature, when it is missing.
	Fix string `json:"fix,omitempty"`
}

// Cgroup mirrors the cgroup package's view of the host.
type Cgroup struct {
	Version     string   `json:"version"`
	Mode        string   `json:"mode"`
	Controllers []string `json:"controllers"`
	Parent      string   `json:"parent,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

// Check runs every probe and returns the report. It takes a few hundred
// milliseconds, most of it importing the Python libraries.
func Check() Report {
	return run(config{python: DefaultPython, runsc: "runsc", kvm: "/dev/kvm", mountinfo: "/proc/self/mountinfo"})
}

// config holds what the probes look at, so tests can point them elsewhere.
type config struct {
	python    string
	runsc     string
	kvm       string
	mountinfo string
}

// probeTimeout bounds every external command a probe runs.
const probeTimeout = 20 * time.Second

func run(cfg config) Report {
	var r Report
	r.Kernel = kernelRelease()
	checks := make([]Item, 11)
	var wg sync.WaitGroup
	do := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn()
		}()
	}
	do(func() { checks[0] = checkUserNS() })
	do(func() { checks[1] = checkSeccomp() })
	do(func() { checks[2], r.LandlockABI, r.Landlock = checkLandlock() })
	do(func() { checks[3], r.Cgroup = checkCgroup() })
	do(func() { checks[4] = checkMigrations(cfg.mountinfo) })
	do(func() {
		var mods []Item
		checks[5], r.Python, mods, r.PythonModules = checkPython(cfg.python)
		copy(checks[6:9], mods)
	})
	do(func() { checks[9], r.Runsc = checkRunsc(cfg.runsc) })
	do(func() { checks[10] = checkKVM(cfg.kvm) })
	wg.Wait()

	r.Checks = checks
	r.OK = true
	for _, c := range checks {
		if c.Required && !c.OK {
			r.OK = false
		}
	}
	return r
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readSysctl returns a /proc/sys value, or "" when it cannot be read.
func readSysctl(path string) string {
	b, err := os.ReadFile("/proc/sys/" + path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pythonModules are the libraries reported on, in order.
var pythonModules = []string{NameNumpy, NamePandas, NameMatplotlib}

const moduleScript = `
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = str(getattr(importlib.import_module(name), "__version__", "unknown"))
    except Exception:
        out[name] = ""
print(json.dumps(out))
`

func checkPython(path string) (c Item, version string, mods []Item, modVersions map[string]string) {
	c = Item{Name: NamePython, Required: true}
	mods = make([]Item, len(pythonModules))
	for i, m := range pythonModules {
		mods[i] = Item{Name: m, Detail: "not checked: no interpreter", Fix: "install " + DefaultPython + " first"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])").Output()
	if err != nil {
		c.Detail = fmt.Sprintf("%s: %v", path, oneLine(err))
		c.Fix = "apt-get install python3 (the native backend runs " + DefaultPython + " by default; --python picks another)"
		return c, "", mods, nil
	}
	version = strings.TrimSpace(string(out))
	c.OK = true
	c.Detail = path + " " + version

	cmd := exec.CommandContext(ctx, path, append([]string{"-I", "-c", moduleScript}, pythonModules...)...)
	cmd.Env = []string{"MPLBACKEND=Agg", "HOME=" + os.TempDir(), "PATH=/usr/bin:/bin"}
	out, err = cmd.Output()
	modVersions = map[string]string{}
	if err == nil {
		err = json.Unmarshal(out, &modVersions)
	}
	for i, m := range pythonModules {
		mods[i] = Item{Name: m}
		switch v := modVersions[m]; {
		case err != nil:
			mods[i].Detail = "could not list modules: " + oneLine(err)
		case v == "":
			mods[i].Detail = "cannot be imported by " + path
			mods[i].Fix = "apt-get install python3-" + m
		default:
			mods[i].OK = true
			mods[i].Detail = m + " " + v
		}
		if _, ok := modVersions[m]; !ok {
			modVersions[m] = ""
		}
	}
	return c, version, mods, modVersions
}

func checkRunsc(name string) (Item, string) {
	c := Item{Name: NameRunsc}
	path, err := exec.LookPath(name)
	if err != nil {
		c.Detail = "runsc is not in PATH; the gvisor backend is unavailable"
		c.Fix = "install gVisor's runsc (https://gvisor.dev/docs/user_guide/install/) into PATH"
		return c, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		c.Detail = fmt.Sprintf("%s --version: %v", path, oneLine(err))
		c.Fix = "reinstall runsc; it must run as `runsc --version`"
		return c, ""
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	c.OK = true
	c.Detail = path + ": " + first
	return c, first
}

func checkKVM(path string) Item {
	c := Item{Name: NameKVM}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		c.Detail = fmt.Sprintf("cannot open %s: %v", path, oneLine(err))
		switch {
		case os.IsNotExist(err):
			c.Fix = "enable virtualization (VT-x/AMD-V or nested virtualization) and load the kvm_intel or kvm_amd module"
		case os.IsPermission(err):
			c.Fix = "add the user to the kvm group (usermod -aG kvm $USER) or run as root"
		}
		return c
	}
	f.Close()
	c.OK = true
	c.Detail = path + " is usable (microVM tier possible)"
	return c
}

// oneLine flattens an error for a report line.
func oneLine(err error) string {
	s := err.Error()
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		s += ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return strings.Join(strings.Fields(s), " ")
}

// checkMigrations says whether moving a process into a cgroup is fast
// here. Every move takes the kernel's global cgroup_threadgroup_rwsem for
// writing, and the first writer after a quiet spell waits for an RCU grace
// period (2-15 ms measured), unless a cgroup hierarchy was mounted with
// favordynmods (kernel 6.0+), which keeps the lock in the mode where
// writers do not wait (and forks and exits, its readers, pay a little
// more). Cold runs on cgroup v1 move the interpreter into its group, and
// the fork server's prepared spares move themselves, so both pay the wait
// after a pause; pybox starts it early to hide it (RATIONALE.md). With
// favordynmods there is nothing to hide. pybox never remounts anything
// itself: the mode cannot be turned off again until reboot.
func checkMigrations(mountinfo string) Item {
	c := Item{Name: NameMigrations}
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		c.Detail = oneLine(err)
		c.Fix = "needs /proc"
		return c
	}
	v2 := ""
	for _, m := range cgroup.Mounts(b) {
		for _, o := range m.Options {
			if o == "favordynmods" {
				c.OK = true
				c.Detail = "fast: " + m.Point + " is mounted with favordynmods"
				return c
			}
		}
		if m.FSType == "cgroup2" && v2 == "" {
			v2 = m.Point
		}
	}
	c.Detail = "a move into a cgroup after a quiet spell waits for an RCU grace period (2-15 ms): cold runs on cgroup v1 and the fork server's prepared spares pay it"
	cmd := "mount -o remount,favordynmods " + v2
	if v2 == "" {
		cmd = "mount -o remount,favordynmods on one cgroup hierarchy"
	}
	c.Fix = "for lower latency: " + cmd + " (kernel 6.0+; it cannot be undone until reboot, and makes forks and exits slightly dearer)"
	return c
}

func checkCgroup() (Item, *Cgroup) {
	c := Item{Name: NameCgroup, Required: true}
	info, err := cgroup.Detect()
	if err != nil {
		c.Detail = oneLine(err)
		c.Fix = "mount cgroup v2 at /sys/fs/cgroup (systemd.unified_cgroup_hierarchy=1) and delegate a subtree with memory, pids and cpu to pybox"
		return c, nil
	}
	cg := &Cgroup{Version: info.Version, Mode: info.Mode, Controllers: info.Controllers, Parent: info.Parent, Problems: info.Problems}
	c.Detail = fmt.Sprintf("%s (host mode %s), controllers: %s", info.Version, info.Mode, strings.Join(info.Controllers, " "))
	if len(info.Problems) > 0 {
		c.Fix = strings.Join(info.Problems, "; ")
		return c, cg
	}
	c.OK = true
	return c, cg
}
