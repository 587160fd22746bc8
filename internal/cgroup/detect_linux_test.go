package cgroup

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDetectHost(t *testing.T) {
	info, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", info)
	if info.Version != "v1" && info.Version != "v2" {
		t.Fatalf("Version = %q", info.Version)
	}
}

func TestParseMountinfoEscapes(t *testing.T) {
	ms := Mounts([]byte("41 31 0:38 / /sys/fs/cgroup/a\\040b rw,relatime - cgroup2 cgroup2 rw\n" +
		"99 1 0:1 / /proc rw - proc proc rw\n"))
	if len(ms) != 1 || ms[0].Point != "/sys/fs/cgroup/a b" || ms[0].FSType != "cgroup2" {
		t.Fatalf("got %+v", ms)
	}
}

const (
	miV2     = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	miV2ro   = "30 23 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n"
	miHybrid = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
		"32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n" +
		"33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n" +
		"35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
		"39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n" +
		"40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
	miV1 = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n" +
		"35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
		"39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
	miV1Container = "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n" +
		"35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
		"39 31 0:36 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
	allV2    = "cpuset cpu io memory hugetlb pids rdma misc"
	swapsOn  = "Filename Type Size Used Priority\n/swapfile file 1024 0 -2\n"
	swapsOff = "Filename Type Size Used Priority\n"
)

// fakeHost writes files (path -> content; a trailing "/" makes a directory)
// under a temporary root.
func fakeHost(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetectFakeHosts(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		env   string

		wantErr     string
		version     string
		mode        string
		controllers []string
		parent      string   // with "R" standing for the fake root
		chain       []string // v2
		v1hier      []string
		missing     []string
		fatal       string // substring
		problem     string // substring of some Problem; "" = no Problems
		memsw       bool
	}{
		{
			name: "v2 root cgroup",
			files: map[string]string{
				"proc/self/mountinfo": miV2, "proc/self/cgroup": "0::/\n", "proc/swaps": swapsOff,
				"sys/fs/cgroup/cgroup.controllers": allV2,
			},
			version: "v2", mode: "v2", controllers: []string{"cpu", "cpuset", "hugetlb", "io", "memory", "pids"},
			parent: "R/sys/fs/cgroup/pybox", chain: []string{"R/sys/fs/cgroup", "R/sys/fs/cgroup/pybox"},
		},
		{
			name: "v2 systemd service, not delegated",
			files: map[string]string{
				"proc/self/mountinfo": miV2, "proc/self/cgroup": "0::/system.slice/x.service\n",
				"sys/fs/cgroup/cgroup.controllers":                            allV2,
				"sys/fs/cgroup/system.slice/cgroup.subtree_control":           "memory pids",
				"sys/fs/cgroup/system.slice/x.service/cgroup.type":            "domain",
				"sys/fs/cgroup/system.slice/x.service/cgroup.subtree_control": "",
			},
			version: "v2", mode: "v2", controllers: []string{"cpu", "cpuset", "hugetlb", "io", "memory", "pids"},
			parent: "R/sys/fs/cgroup/pybox", chain: []string{"R/sys/fs/cgroup", "R/sys/fs/cgroup/pybox"},
			problem: "outside this process's cgroup /system.slice/x.service",
		},
		{
			name: "v2 leaf of a delegated service",
			files: map[string]string{
				"proc/self/mountinfo": miV2, "proc/self/cgroup": "0::/system.slice/x.service/supervisor\n",
				"sys/fs/cgroup/cgroup.controllers":                                allV2,
				"sys/fs/cgroup/system.slice/x.service/cgroup.subtree_control":     "cpu memory pids",
				"sys/fs/cgroup/system.slice/x.service/supervisor/cgroup.type":     "domain",
				"sys/fs/cgroup/system.slice/x.service/supervisor/memory.swap.max": "max",
			},
			version: "v2", mode: "v2", controllers: []string{"cpu", "cpuset", "hugetlb", "io", "memory", "pids"},
			parent: "R/sys/fs/cgroup/system.slice/x.service/pybox",
			chain:  []string{"R/sys/fs/cgroup/system.slice/x.service/pybox"},
		},
		{
			name: "v2 container cgroup namespace with processes at its top",
			files: map[string]string{
				"proc/self/mountinfo": miV2, "proc/self/cgroup": "0::/\n",
				"sys/fs/cgroup/cgroup.controllers": "cpu memory pids",
				"sys/fs/cgroup/cgroup.type":        "domain",
			},
			version: "v2", mode: "v2", controllers: []string{"cpu", "memory", "pids"},
			fatal: "no internal processes", problem: "move the processes into a leaf",
		},
		{
			name: "v2 without pids",
			files: map[string]string{
				"proc/self/mountinfo": miV2, "proc/self/cgroup": "0::/\n",
				"sys/fs/cgroup/cgroup.controllers": "cpu memory",
			},
			version: "v2", mode: "v2", controllers: []string{"cpu", "memory"},
			parent: "R/sys/fs/cgroup/pybox", chain: []string{"R/sys/fs/cgroup", "R/sys/fs/cgroup/pybox"},
			missing: []string{"pids"}, problem: "controller pids is not available",
		},
		{
			name: "v2 read-only",
			files: map[string]string{
				"proc/self/mountinfo": miV2ro, "proc/self/cgroup": "0::/\n",
				"sys/fs/cgroup/cgroup.controllers": allV2,
			},
			version: "v2", mode: "v2", controllers: []string{"cpu", "cpuset", "hugetlb", "io", "memory", "pids"},
			fatal: "read-only", problem: "remount it read-write",
		},
		{
			name: "v2 with PYBOX_CGROUP_PARENT",
			env:  "/pybox.slice/runs",
			files: map[string]string{
				"proc/self/mountinfo": miV2, "proc/self/cgroup": "0::/user.slice\n",
				"sys/fs/cgroup/cgroup.controllers": allV2,
				"sys/fs/cgroup/cgroup.type":        "domain",
			},
			version: "v2", mode: "v2", controllers: []string{"cpu", "cpuset", "hugetlb", "io", "memory", "pids"},
			parent: "R/sys/fs/cgroup/pybox.slice/runs",
			chain:  []string{"R/sys/fs/cgroup", "R/sys/fs/cgroup/pybox.slice", "R/sys/fs/cgroup/pybox.slice/runs"},
		},
		{
			name: "hybrid like the CI host",
			files: map[string]string{
				"proc/self/mountinfo": miHybrid, "proc/swaps": swapsOff,
				"proc/self/cgroup":                                                 "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n",
				"sys/fs/cgroup/unified/cgroup.controllers":                         "hugetlb",
				"sys/fs/cgroup/memory/process_api/abc/memory.memsw.limit_in_bytes": "9223372036854771712",
			},
			version: "v1", mode: "hybrid", controllers: []string{"cpu", "cpuacct", "memory", "pids"},
			parent: "memory=R/sys/fs/cgroup/memory/process_api/abc/pybox, pids=R/sys/fs/cgroup/pids/pybox, cpu=R/sys/fs/cgroup/cpu/pybox, cpuacct=R/sys/fs/cgroup/cpuacct/pybox",
			v1hier: []string{"R/sys/fs/cgroup/memory/process_api/abc/pybox", "R/sys/fs/cgroup/pids/pybox", "R/sys/fs/cgroup/cpu/pybox", "R/sys/fs/cgroup/cpuacct/pybox"},
			memsw:  true,
		},
		{
			name: "hybrid with controllers on cgroup2 uses v2",
			files: map[string]string{
				"proc/self/mountinfo": miHybrid, "proc/self/cgroup": "1:cpu:/\n0::/\n",
				"sys/fs/cgroup/unified/cgroup.controllers": "memory pids",
			},
			version: "v2", mode: "hybrid", controllers: []string{"memory", "pids"},
			parent: "R/sys/fs/cgroup/unified/pybox", chain: []string{"R/sys/fs/cgroup/unified", "R/sys/fs/cgroup/unified/pybox"},
			missing: []string{"cpu"}, problem: "controller cpu is not available",
		},
		{
			name: "v1 cpu,cpuacct co-mounted, no memsw, swap on",
			files: map[string]string{
				"proc/self/mountinfo": miV1, "proc/swaps": swapsOn,
				"proc/self/cgroup": "4:memory:/a\n3:pids:/a\n2:cpu,cpuacct:/a\n",
			},
			version: "v1", mode: "v1", controllers: []string{"cpu", "cpuacct", "memory", "pids"},
			parent:  "memory=R/sys/fs/cgroup/memory/a/pybox, pids=R/sys/fs/cgroup/pids/a/pybox, cpu=R/sys/fs/cgroup/cpu,cpuacct/a/pybox",
			v1hier:  []string{"R/sys/fs/cgroup/memory/a/pybox", "R/sys/fs/cgroup/pids/a/pybox", "R/sys/fs/cgroup/cpu,cpuacct/a/pybox"},
			problem: "swapaccount=1",
		},
		{
			name: "v1 container with bind-mounted subtree",
			files: map[string]string{
				"proc/self/mountinfo": miV1Container,
				"proc/self/cgroup":    "4:memory:/docker/abc/sub\n3:pids:/docker/abc\n2:cpu,cpuacct:/elsewhere\n",
			},
			version: "v1", mode: "v1", controllers: []string{"cpu", "cpuacct", "memory", "pids"},
			parent: "memory=R/sys/fs/cgroup/memory/sub/pybox, pids=R/sys/fs/cgroup/pids/pybox, cpu=R/sys/fs/cgroup/cpu/pybox",
			v1hier: []string{"R/sys/fs/cgroup/memory/sub/pybox", "R/sys/fs/cgroup/pids/pybox", "R/sys/fs/cgroup/cpu/pybox"},
		},
		{
			name: "v1 without pids, with PYBOX_CGROUP_PARENT",
			env:  "/pybox",
			files: map[string]string{
				"proc/self/mountinfo": "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
					"32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
				"proc/self/cgroup": "4:memory:/a\n2:cpu:/a\n",
			},
			version: "v1", mode: "v1", controllers: []string{"cpu", "memory"},
			parent:  "memory=R/sys/fs/cgroup/memory/pybox, cpu=R/sys/fs/cgroup/cpu/pybox",
			v1hier:  []string{"R/sys/fs/cgroup/memory/pybox", "R/sys/fs/cgroup/cpu/pybox"},
			missing: []string{"pids"}, problem: "controller pids is not mounted",
		},
		{
			name:    "no cgroups",
			files:   map[string]string{"proc/self/mountinfo": "99 1 0:1 / /proc rw - proc proc rw\n", "proc/self/cgroup": ""},
			wantErr: "no cgroup filesystem",
		},
		{
			name:    "relative PYBOX_CGROUP_PARENT",
			env:     "pybox/../x",
			files:   map[string]string{"proc/self/mountinfo": miV2, "proc/self/cgroup": "0::/\n"},
			wantErr: "PYBOX_CGROUP_PARENT",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeHost(t, tc.files)
			fix := func(s string) string { return strings.ReplaceAll(s, "R/", root+"/") }
			fixAll := func(l []string) []string {
				var out []string
				for _, s := range l {
					out = append(out, fix(s))
				}
				return out
			}
			p, err := detect(hostPaths{prefix: root, envParent: tc.env})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			i := p.info
			if i.Version != tc.version || i.Mode != tc.mode || !reflect.DeepEqual(i.Controllers, tc.controllers) {
				t.Errorf("Version, Mode, Controllers = %s, %s, %v; want %s, %s, %v", i.Version, i.Mode, i.Controllers, tc.version, tc.mode, tc.controllers)
			}
			if tc.fatal == "" && i.Parent != fix(tc.parent) {
				t.Errorf("Parent = %q\nwant %q", i.Parent, fix(tc.parent))
			}
			if tc.version == "v2" && tc.fatal == "" && !reflect.DeepEqual(p.chain, fixAll(tc.chain)) {
				t.Errorf("chain = %q, want %q", p.chain, fixAll(tc.chain))
			}
			if tc.version == "v1" && !reflect.DeepEqual(p.v1hier, fixAll(tc.v1hier)) {
				t.Errorf("v1hier = %q, want %q", p.v1hier, fixAll(tc.v1hier))
			}
			if !reflect.DeepEqual(p.missing, tc.missing) {
				t.Errorf("missing = %v, want %v", p.missing, tc.missing)
			}
			if (tc.fatal == "") != (p.fatal == "") || !strings.Contains(p.fatal, tc.fatal) {
				t.Errorf("fatal = %q, want %q", p.fatal, tc.fatal)
			}
			if tc.version == "v1" && p.memsw != tc.memsw {
				t.Errorf("memsw = %v, want %v", p.memsw, tc.memsw)
			}
			if tc.problem == "" && len(i.Problems) > 0 {
				t.Errorf("Problems = %q, want none", i.Problems)
			}
			if tc.problem != "" && !strings.Contains(strings.Join(i.Problems, "\n"), tc.problem) {
				t.Errorf("Problems = %q, want one containing %q", i.Problems, tc.problem)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr bool
	}{
		{"123-4", false}, {"a.b_c-D", false}, {"", true}, {".", true}, {"..", true},
		{"a/b", true}, {"a b", true}, {strings.Repeat("a", 201), true},
	}
	for _, tc := range tests {
		if err := checkName(tc.name); (err != nil) != tc.wantErr {
			t.Errorf("checkName(%q) = %v, wantErr %v", tc.name, err, tc.wantErr)
		}
	}
}
