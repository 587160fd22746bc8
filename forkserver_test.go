package pybox_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/native"
	"github.com/pybox-dev/pybox/internal/testing/require"
	"golang.org/x/sys/unix"
)

// warmSandbox returns a sandbox whose fork server is up (its runs report
// isolation.fork_server).
func warmSandbox(t *testing.T) *pybox.Sandbox {
	t.Helper()
	require.Root(t)
	require.UserNS(t)
	sb := pybox.New(pybox.Options{ForkServer: true})
	t.Cleanup(func() { sb.Close(context.Background()) })
	// Both templates of the policy: the lean one and the one with numpy.
	deadline := time.Now().Add(60 * time.Second)
	for _, code := range []string{"1", "import numpy"} {
		for {
			require.True(t, time.Now().Before(deadline), "fork server not ready")
			res, err := sb.Run(context.Background(), pybox.Request{Code: code})
			require.NoError(t, err)
			require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
			if res.Isolation.ForkServer {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return sb
}

func warmRun(t *testing.T, sb *pybox.Sandbox, req pybox.Request) *pybox.Result {
	t.Helper()
	res, err := sb.Run(context.Background(), req)
	require.NoError(t, err)
	require.True(t, res.Isolation.ForkServer, "not run by the fork server")
	return res
}

func TestForkServerBasics(t *testing.T) {
	sb := warmSandbox(t)
	res := warmRun(t, sb, pybox.Request{Code: "import numpy as np\nprint('hi')\nnp.arange(4).sum()"})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "hi\n", res.Stdout)
	require.Equal(t, "6", string(res.ReturnValue))
	iso := res.Isolation
	require.True(t, iso.LandlockABI > 0 && iso.Seccomp != "" && iso.Cgroup != "", "%+v", iso)

	res = warmRun(t, sb, pybox.Request{Code: `import os
st = open('/proc/self/status').read()
f = {l.split(':')[0]: l.split(':')[1].strip() for l in st.splitlines()}
print(os.getuid(), os.getgid(), os.getgroups(), f['CapEff'], f['CapBnd'], f['NoNewPrivs'], f['Seccomp'], os.getcwd())
print(sorted(os.listdir('/proc/self/fd'), key=int))
try:
    open('/usr/x', 'w')
except OSError as e:
    print('usr', e.errno)
import socket
try:
    socket.create_connection(('127.0.0.1', 1), timeout=1)
except OSError as e:
    print('tcp', e.errno)
`})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	lines := strings.Split(res.Stdout, "\n")
	require.Equal(t, "1000 1000 [] 0000000000000000 0000000000000000 1 2 /work", lines[0])
	require.Equal(t, "['0', '1', '2', '3', '100', '101']", lines[1])
	require.Contains(t, res.Stdout, "usr 30")
	require.Contains(t, res.Stdout, "tcp 13") // Landlock: EACCES

	for _, tc := range []struct {
		req    pybox.Request
		status string
	}{
		{pybox.Request{Code: "1/0"}, pybox.StatusRunError},
		{pybox.Request{Code: "import sys; sys.exit(5)"}, pybox.StatusRunError},
		{pybox.Request{Code: "while True: pass", Timeout: pybox.Duration(time.Second)}, pybox.StatusTimeout},
		{pybox.Request{Code: "x = bytearray(256 << 20)", Memory: 64 << 20}, pybox.StatusMemoryLimit},
		{pybox.Request{Code: "while True: print('z' * 100)", OutputLimit: 16 << 10}, pybox.StatusOutputLimit},
		{pybox.Request{Code: "import os; os.kill(os.getpid(), 9)"}, pybox.StatusKilled},
	} {
		res := warmRun(t, sb, tc.req)
		require.Equal(t, tc.status, res.Status, "%s: %s", tc.req.Code, res.Error)
	}
	res = warmRun(t, sb, pybox.Request{Code: "open('o.txt','w').write(open('i.txt').read()*2)",
		Files: []pybox.File{{Name: "i.txt", Data: []byte("ab")}}, CollectFiles: true})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	got := outFiles(res)
	require.Equal(t, "abab", got["o.txt"])
	// Input files without collecting, and collecting without input files
	// (the template gets /dev/null for the pipe a run does not need).
	res = warmRun(t, sb, pybox.Request{Code: "open('o.txt','w').write('x'); print(open('i.txt').read())",
		Files: []pybox.File{{Name: "i.txt", Data: []byte("in")}}})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "in\n", res.Stdout)
	require.Equal(t, 0, len(res.Files), "files collected without CollectFiles: %+v", res.Files)
	res = warmRun(t, sb, pybox.Request{Code: "import os; print(os.listdir('.')); open('o.txt','w').write('y')", CollectFiles: true})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "[]\n", res.Stdout)
	require.Equal(t, "y", outFiles(res)["o.txt"])
}

// TestForkServerNoLeaks: nothing of one execution is visible to the next,
// and concurrent executions cannot see each other.
func TestForkServerNoLeaks(t *testing.T) {
	sb := warmSandbox(t)
	res := warmRun(t, sb, pybox.Request{Code: `import os, socket, subprocess, sys
open('/work/left.txt', 'w').write('x'); open('/tmp/left.txt', 'w').write('x'); open('/dev/shm/left', 'w').write('x')
s = socket.socket(socket.AF_UNIX); s.bind('\0pybox-leak-test'); s.listen()
subprocess.Popen(['sleep', '1000.77'], start_new_session=True)
import numpy; numpy.leaked = True
sys.modules['json'] = None
print(len([p for p in os.listdir('/proc') if p.isdigit()]))`})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	res = warmRun(t, sb, pybox.Request{Code: `import os, socket, numpy, json
print(os.path.exists('/work/left.txt'), os.path.exists('/tmp/left.txt'), os.path.exists('/dev/shm/left'), hasattr(numpy, 'leaked'))
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('\0pybox-leak-test'); print('connected')
except OSError as e:
    print('refused')
print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))`})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	// Pid 1 is the namespace's anchor, 2 the code, 3 its holder
	// (TestForkServerHolder).
	require.Equal(t, "False False False False\nrefused\n[1, 2, 3]\n", res.Stdout)
	out, _ := exec.Command("pgrep", "-f", "sleep 1000.77").Output()
	require.Equal(t, "", strings.TrimSpace(string(out)), "a process outlived its execution")

	// Two at once: each sees only its own pid namespace (pids 1 to 3).
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := sb.Run(context.Background(), pybox.Request{Code: "import os, time\ntime.sleep(0.5)\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"})
			if err == nil {
				outs[i] = r.Stdout
			}
		}()
	}
	wg.Wait()
	require.Equal(t, "[1, 2, 3]\n", outs[0])
	require.Equal(t, "[1, 2, 3]\n", outs[1])
}

// TestForkServerHolder: every execution's memory holder (zygote.py's
// make_holder, pid 3), which shares the code's memory and outlives it, is
// out of the code's reach: it belongs to the namespace's uid 0, blocks
// every signal, cannot be signalled (not even stopped, which would make
// it restart its pause() through the shared memory; blocked from its
// start, so even before it reaches pause()), is not the code's
// child and is outside the execution's cgroup; the code's own exit is
// what the Result waits for, while the pid namespace ends after it.
func TestForkServerHolder(t *testing.T) {
	sb := warmSandbox(t)
	for i := 0; i < 3; i++ { // a prepared spare, then children made for the request
		res := warmRun(t, sb, pybox.Request{Code: `import os, signal
st = dict(l.split(':', 1) for l in open('/proc/3/status').read().splitlines())
print(st['Uid'].split()[0], st['PPid'].strip(), st['SigBlk'].strip())
for sig in (signal.SIGSTOP, signal.SIGCONT, signal.SIGTERM, signal.SIGKILL, 0):
    try:
        os.kill(3, sig); print('signalled', sig)
    except PermissionError:
        print('EPERM')
try:
    os.waitpid(-1, os.WNOHANG); print('has children')
except ChildProcessError:
    print('no children')
print(open('/proc/3/cgroup').read() != open('/proc/self/cgroup').read())`})
		require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
		require.Equal(t, "0 0 fffffffffffbfeff\nEPERM\nEPERM\nEPERM\nEPERM\nEPERM\nno children\nTrue\n", res.Stdout)
	}
	// The namespace's anchor and holder end just after the Result (pidfds
	// taken at once: the namespace's id may be reused later).
	res := warmRun(t, sb, pybox.Request{Code: "import os\nprint(os.readlink('/proc/self/ns/pid'))"})
	ns := strings.TrimSpace(res.Stdout)
	var pidfds []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			pid, _ := strconv.Atoi(e.Name())
			if fd, err := unix.PidfdOpen(pid, 0); err == nil {
				pidfds = append(pidfds, fd)
			}
		}
	}
	require.True(t, len(pidfds) <= 2, "%d processes left in the execution's namespace", len(pidfds))
	for _, fd := range pidfds {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 2000)
		unix.Close(fd)
		require.True(t, err == nil && n == 1, "a process of the execution's namespace outlived it by 2 s")
	}
}

// TestForkServerRandomState: executions share no random state with each
// other through their template (numpy's global RandomState was the same in
// every child; Python's random, uuid and tempfile reseed after fork).
func TestForkServerRandomState(t *testing.T) {
	sb := warmSandbox(t)
	code := "import numpy as np, random, uuid, tempfile\n" +
		"print(np.random.randint(1 << 30), random.getrandbits(64), uuid.uuid4(), tempfile.mktemp())"
	seen := map[string]bool{}
	for range 4 {
		res := warmRun(t, sb, pybox.Request{Code: code})
		require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
		for _, v := range strings.Fields(res.Stdout) {
			require.False(t, seen[v], "%q came twice: %q", v, res.Stdout)
			seen[v] = true
		}
	}
}

// TestForkServerUsageIsPerExecution: cgroups of warm executions are reused
// (cgroup v1), so each execution's usage and limit verdicts must be its own:
// a big or limit-hitting execution leaves nothing in the next one's Result.
func TestForkServerUsageIsPerExecution(t *testing.T) {
	sb := warmSandbox(t)
	req := func(code string) pybox.Request {
		return pybox.Request{Code: code, Memory: 160 << 20, Pids: 16}
	}
	small := func(what string) {
		t.Helper()
		res := warmRun(t, sb, req("print(1)"))
		require.Equal(t, pybox.StatusSuccess, res.Status, "%s: %s", what, res.Error)
		require.True(t, res.Usage.PeakMemoryBytes < 48<<20, "%s: peak %d", what, res.Usage.PeakMemoryBytes)
		require.True(t, res.Usage.CPUMS < 150, "%s: cpu %d ms", what, res.Usage.CPUMS)
	}
	for range 3 {
		small("a first small run")
	}
	res := warmRun(t, sb, req(`import time
x = bytearray(96 << 20)
t = time.process_time()
while time.process_time() - t < 0.3:
    pass`))
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.True(t, res.Usage.PeakMemoryBytes >= 96<<20 && res.Usage.CPUMS >= 250, "big run: %+v", res.Usage)
	for range 3 {
		small("after a big run")
	}
	res = warmRun(t, sb, req("x = bytearray(256 << 20)"))
	require.Equal(t, pybox.StatusMemoryLimit, res.Status, res.Error)
	for range 3 {
		small("after a memory-limit run")
	}
	res = warmRun(t, sb, req(`import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError:
    print("limited", n)`))
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Contains(t, res.Stdout, "limited")
	for range 3 {
		small("after a pids-limit run")
	}
}

// TestForkServerNetworkNamespaces: every execution has a network namespace
// of its own (made ahead by the template), with loopback up, shared with
// no other execution running at the same time, nor with the host.
func TestForkServerNetworkNamespaces(t *testing.T) {
	sb := warmSandbox(t)
	code := `import os, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 5599))
s.sendto(b'ping', ('127.0.0.1', 5599))
s.settimeout(2)
print(s.recv(16).decode(), os.readlink('/proc/self/ns/net'))
time.sleep(0.3)`
	host, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	for round := 0; round < 3; round++ {
		// Namespace inode numbers are reused once freed: compare only
		// executions that overlap in time.
		seen := map[string]bool{host: true}
		var wg sync.WaitGroup
		outs := make([]*pybox.Result, 2)
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i] = warmRun(t, sb, pybox.Request{Code: code})
			}()
		}
		wg.Wait()
		for _, res := range outs {
			require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
			f := strings.Fields(res.Stdout)
			require.True(t, len(f) == 2 && f[0] == "ping", "loopback: %q", res.Stdout)
			require.False(t, seen[f[1]], "network namespace %s used twice", f[1])
			seen[f[1]] = true
		}
	}
}

// TestForkServerCloseLeavesNothing: Close ends every template.
func TestForkServerCloseLeavesNothing(t *testing.T) {
	sb := warmSandbox(t)
	require.True(t, len(ownTemplates()) > 0, "no template was running")
	require.True(t, len(ownCgroups(t)) > 0, "the template's cgroup is not visible to the check")
	require.NoError(t, sb.Close(context.Background()))
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, []string(nil), ownTemplates(), "a template survived Close")
	require.Equal(t, []string(nil), ownCgroups(t), "cgroups left after Close")
}

// ownTemplates lists the fork-server templates this test process started
// (other test packages running at the same time have their own).
func ownTemplates() []string {
	out, _ := exec.Command("pgrep", "-f", "pybox fork-server template").Output()
	var own []string
	for _, p := range strings.Fields(string(out)) {
		for pid := p; pid != "" && pid != "0" && pid != "1"; {
			if pid == fmt.Sprint(os.Getpid()) {
				own = append(own, p)
				break
			}
			st, err := os.ReadFile("/proc/" + pid + "/status")
			if err != nil {
				break
			}
			pid = ""
			for _, l := range strings.Split(string(st), "\n") {
				if f := strings.Fields(l); len(f) == 2 && f[0] == "PPid:" {
					pid = f[1]
				}
			}
		}
	}
	return own
}

// soleTemplates waits until no template of an earlier test's sandbox is
// left, then returns a warm sandbox and its two templates (lean and numpy),
// so that counts of templates are this sandbox's own.
func soleTemplates(t *testing.T) (*pybox.Sandbox, []string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); len(ownTemplates()) > 0; time.Sleep(20 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "templates of earlier tests still running: %v", ownTemplates())
	}
	sb := warmSandbox(t)
	before := templateProcs()
	require.Equal(t, 2, len(before), "templates (lean and numpy): %v", before)
	return sb, before
}

// templateProcs lists this process's templates, not their children
// (spares, anchors), which share their command line: the processes
// ownTemplates finds whose parent is not one of them.
func templateProcs() []string {
	all := ownTemplates()
	var top []string
	for _, p := range all {
		st, err := os.ReadFile("/proc/" + p + "/status")
		if err != nil {
			continue
		}
		parent := ""
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "PPid:" {
				parent = f[1]
			}
		}
		if !slices.Contains(all, parent) {
			top = append(top, p)
		}
	}
	return top
}

// ownCgroups lists the per-run cgroups of this process still present.
func ownCgroups(t *testing.T) []string {
	t.Helper()
	prefix := fmt.Sprintf("%d-", os.Getpid())
	var left []string
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Count(p, "/") > 8 {
			return filepath.SkipDir
		}
		if filepath.Base(filepath.Dir(p)) == "pybox" && strings.HasPrefix(d.Name(), prefix) {
			left = append(left, p)
			return filepath.SkipDir
		}
		return nil
	})
	return left
}

// TestForkServerTemplateFds: serving executions, back to back and with
// pauses (when spares are prepared, and the template re-runs its own
// request paths to take its copy-on-write faults early: zygote.py's
// touch_self), leaves the templates holding no more fds than before.
func TestForkServerTemplateFds(t *testing.T) {
	sb, tpls := soleTemplates(t)
	count := func() int {
		n := 0
		for _, p := range tpls {
			ents, err := os.ReadDir("/proc/" + p + "/fd")
			require.NoError(t, err)
			n += len(ents)
		}
		return n
	}
	run := func(rounds int) {
		for i := 0; i < rounds; i++ {
			code := "print(1)"
			if i%2 == 1 {
				code = "import numpy; print(numpy.ones(2).sum())"
			}
			res := warmRun(t, sb, pybox.Request{Code: code})
			require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
			if i%3 == 0 {
				time.Sleep(30 * time.Millisecond) // a spare is prepared
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	run(6)
	before := count()
	run(30)
	// A spare's socket, the next spare's network namespace and pidfds of
	// executions still ending come and go: a leak of even one fd per
	// execution is far beyond them.
	after := count()
	require.True(t, after <= before+6, "the templates held %d fds, then %d after 30 executions", before, after)
}

func TestForkServerCgroupNamespace(t *testing.T) {
	sb := warmSandbox(t)
	res := warmRun(t, sb, pybox.Request{Code: "print(open('/proc/self/cgroup').read().strip().splitlines()[-1])"})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.True(t, strings.HasSuffix(strings.TrimSpace(res.Stdout), ":/"), "cgroup path leaks: %q", res.Stdout)
}

// TestForkServerTemplateDies: a template killed from outside is replaced;
// runs in between succeed (cold), and later runs are warm again.
func TestForkServerTemplateDies(t *testing.T) {
	sb := warmSandbox(t)
	pids := ownTemplates()
	require.True(t, len(pids) > 0, "no template running")
	for _, p := range pids {
		_ = exec.Command("kill", "-9", p).Run()
	}
	res, err := sb.Run(context.Background(), pybox.Request{Code: "print('still works')"})
	require.NoError(t, err)
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "still works\n", res.Stdout)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := sb.Run(context.Background(), pybox.Request{Code: "1"})
		require.NoError(t, err)
		require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
		if res.Isolation.ForkServer {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no new template after the old one died")
}

// TestForkServerSpares: the template sets up the next execution's child
// while idle (a spare, made with the last request's disk size). A spare
// serves a request with another disk size only after it is replaced, and
// a request that follows an idle time gets a fresh sandbox like any other.
func TestForkServerSpares(t *testing.T) {
	sb := warmSandbox(t)
	const code = "import os\nst = os.statvfs('/work')\nprint(st.f_blocks * st.f_frsize, os.listdir('/work'), os.listdir('/tmp'))\nopen('/work/w', 'w').write('x'); open('/tmp/t', 'w').write('x')"
	for _, disk := range []pybox.Size{8 << 20, 8 << 20, 16 << 20, 8 << 20} {
		time.Sleep(100 * time.Millisecond) // the spare is made meanwhile
		res := warmRun(t, sb, pybox.Request{Code: code, Disk: disk})
		require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
		require.Equal(t, fmt.Sprintf("%d [] []\n", disk), res.Stdout)
	}

	// A spare (set up, Landlock applied, runner warmed) still takes input
	// files, nested directories included, and hands back output files.
	time.Sleep(100 * time.Millisecond)
	res := warmRun(t, sb, pybox.Request{Disk: 8 << 20, CollectFiles: true,
		Files: []pybox.File{{Name: "in/deep/a.txt", Data: []byte("spare")}},
		Code:  "import os\nprint(open('in/deep/a.txt').read(), os.stat('in/deep').st_uid)\nopen('out.txt', 'w').write('back')"})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "spare 1000\n", res.Stdout)
	got := outFiles(res)
	require.Equal(t, "back", got["out.txt"])

	// The spare prepared (in a cgroup made for the last run's limits)
	// never serves a run with other limits: those are enforced.
	time.Sleep(100 * time.Millisecond)
	res = warmRun(t, sb, pybox.Request{Code: "x = bytearray(160 << 20)", Memory: 64 << 20, Disk: 8 << 20})
	require.Equal(t, pybox.StatusMemoryLimit, res.Status, res.Error)
	time.Sleep(100 * time.Millisecond)
	res = warmRun(t, sb, pybox.Request{Code: "x = bytearray(160 << 20)\nprint('ok')", Disk: 8 << 20})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)

	// A spare killed while it waits is replaced: the run is still warm.
	time.Sleep(100 * time.Millisecond)
	killed := 0
	for _, tpl := range ownTemplates() {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%s/task/%s/children", tpl, tpl))
		for _, kid := range strings.Fields(string(kids)) {
			st, _ := os.ReadFile("/proc/" + kid + "/status")
			for _, l := range strings.Split(string(st), "\n") {
				// pid 2 of its own pid namespace: a spare (pid 1 is
				// its anchor).
				if f := strings.Fields(l); len(f) > 2 && f[0] == "NSpid:" && f[len(f)-1] == "2" {
					require.NoError(t, exec.Command("kill", "-9", kid).Run())
					killed++
				}
			}
		}
	}
	require.True(t, killed > 0, "no spare found")
	time.Sleep(50 * time.Millisecond)
	res = warmRun(t, sb, pybox.Request{Code: "print('after')", Disk: 8 << 20})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "after\n", res.Stdout)
}

// TestForkServerOrphans: an orphan of the code (reparented to the pid
// namespace's anchor) that exits does not end the execution.
func TestForkServerOrphans(t *testing.T) {
	sb := warmSandbox(t)
	res := warmRun(t, sb, pybox.Request{Code: `import os, time
if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(0.1)
        os._exit(0)
    os._exit(0)
os.wait()
time.sleep(0.5)
print("alive", os.getpid())`})
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.Equal(t, "alive 2\n", res.Stdout)
}

// TestPrebootedPool: where no template can serve a policy, executions take
// pre-booted sandboxes, each used once, with every layer of the cold path.
func TestPrebootedPool(t *testing.T) {
	require.Root(t)
	require.UserNS(t)
	t.Setenv("PYBOX_FORK_TEMPLATES", "0")
	sb := pybox.New(pybox.Options{ForkServer: true})
	t.Cleanup(func() { sb.Close(context.Background()) })
	code := "import os\nopen('/tmp/mark', 'x').write('1')\nprint(os.getpid(), len(os.listdir('/work')))"
	pooled := 0
	deadline := time.Now().Add(30 * time.Second)
	for pooled < 3 && time.Now().Before(deadline) {
		res, err := sb.Run(context.Background(), pybox.Request{Code: code})
		require.NoError(t, err)
		// /tmp/mark must not exist yet: no sandbox is used twice.
		require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
		require.False(t, res.Isolation.ForkServer, "templates are disabled")
		if res.Isolation.Prebooted {
			pooled++
			require.True(t, res.Isolation.LandlockABI > 0 && res.Isolation.Seccomp != "" && res.Isolation.Cgroup != "", "%+v", res.Isolation)
		}
		time.Sleep(30 * time.Millisecond)
	}
	require.Equal(t, 3, pooled, "pre-booted sandboxes were not used")
	require.NoError(t, sb.Close(context.Background()))
	require.Equal(t, []string(nil), ownCgroups(t), "cgroups left after Close")
}

// TestForkServerSuccessor: a template nearing its MaxForks executions gets
// its successor booted in the background, which takes over as soon as it
// is ready; no execution falls back to a cold start, and the old template
// goes.
func TestForkServerSuccessor(t *testing.T) {
	old := native.MaxForks
	native.MaxForks = 40
	t.Cleanup(func() { native.MaxForks = old })
	sb, before := soleTemplates(t)
	run := func(what string, i int) {
		res, err := sb.Run(context.Background(), pybox.Request{Code: "print(1)"})
		require.NoError(t, err)
		require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
		require.True(t, res.Isolation.ForkServer, "execution %d %s ran cold", i, what)
	}
	// Three quarters of MaxForks and a few more (the warm-up forked at
	// least once): the successor is due, and the template still usable.
	for i := 0; i < 32; i++ {
		run("before the successor", i)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		now := templateProcs()
		var fresh []string
		for _, p := range now {
			if !slices.Contains(before, p) {
				fresh = append(fresh, p)
			}
		}
		if len(fresh) > 0 && len(now) == len(before) {
			break // the successor serves and the old lean template is gone
		}
		require.True(t, time.Now().Before(deadline), "no successor took over (templates %v, before %v)", now, before)
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		run("after the successor", i)
	}
}

// TestForkServerIdleSuccessor: an idle template is replaced on time too (at
// nine tenths of MaxAge), so the first request after a quiet spell longer
// than MaxAge does not find it too old and run cold.
func TestForkServerIdleSuccessor(t *testing.T) {
	old := native.MaxAge
	native.MaxAge = 4 * time.Second
	t.Cleanup(func() { native.MaxAge = old })
	sb, before := soleTemplates(t)
	// No request meanwhile: both templates get successors by themselves.
	deadline := time.Now().Add(60 * time.Second)
	for {
		now := templateProcs()
		fresh := 0
		for _, p := range now {
			if !slices.Contains(before, p) {
				fresh++
			}
		}
		if fresh == 2 && len(now) == 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "idle templates not replaced (templates %v, before %v)", now, before)
		time.Sleep(50 * time.Millisecond)
	}
	res, err := sb.Run(context.Background(), pybox.Request{Code: "print(1)"})
	require.NoError(t, err)
	require.Equal(t, pybox.StatusSuccess, res.Status, res.Error)
	require.True(t, res.Isolation.ForkServer, "the first run after the replacement ran cold")
}
