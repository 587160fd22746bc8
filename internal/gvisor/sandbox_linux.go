package gvisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/cgroup"
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/runner"
)

// bootWait bounds how long a pool fill waits for a sandbox's runner to
// start (a cold boot takes ~170 ms with ptrace).
const bootWait = 10 * time.Second

// sandbox is one runsc sandbox, booted (or booting) for exactly one
// execution: its runner reads the exec frame from its stdin, a pipe whose
// write end is stdin here.
type sandbox struct {
	b    *gvisorBackend
	id   string
	born time.Time
	// cg holds every process of the sandbox; nil only in best-effort mode
	// on a host without cgroups.
	cg        *cgroup.Group
	cgVersion string
	missing   []string
	d         *runDir
	cmd       *exec.Cmd
	stdin     *os.File
	outR      *os.File
	errR      *os.File
	maxFrame  int
	limit     int64
	// waitDone is closed once runsc has been reaped.
	waitDone chan struct{}
	// prebooted says the sandbox came from the pool.
	prebooted bool

	destroyOnce sync.Once
	destroyErr  error
}

// outPath is the host path of the runner's result file.
func (sb *sandbox) outPath() string { return filepath.Join(sb.d.chan_(), chanOut) }

// boot makes the sandbox's cgroup, run directory and bundle (with req's
// input files in /work) and starts runsc. It does not wait for the
// runner: the exec frame may be written at once (the pipe holds it).
func (b *gvisorBackend) boot(req *api.Request, argv0, extra string) (_ *sandbox, err error) {
	n := seq.Add(1)
	sb := &sandbox{
		b:        b,
		id:       fmt.Sprintf("pybox-%d-%d", os.Getpid(), n),
		born:     time.Now(),
		maxFrame: int(req.OutputLimit)*2 + 1<<20,
		limit:    int64(req.OutputLimit),
		waitDone: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			_ = sb.destroy()
		}
	}()

	// The cgroup holds every process of the run, gVisor's own included.
	var cg *cgroup.Group
	if b.cgErr == nil {
		cg, err = cgroup.New(fmt.Sprintf("%d-gv%d", os.Getpid(), n), cgroup.Limits{
			MemoryBytes: int64(req.Memory) + MemoryOverhead,
			Pids:        PidsOverhead + PidsPerTask*req.Pids,
			CPUs:        req.CPUs,
			AllowSwap:   req.BestEffort,
		})
	} else {
		err = b.cgErr
	}
	if err != nil {
		if !req.BestEffort {
			return nil, fmt.Errorf("cgroup limits cannot be enforced: %w (run `pybox doctor`, or set best_effort to run without them)", err)
		}
		sb.missing = append(sb.missing, "cgroup: "+err.Error())
		err = nil
	} else {
		sb.cg, sb.cgVersion = cg, cg.Version()
	}

	// Run directory: bundle, runsc state, tmpfs for /work, /tmp and the
	// result file (capped by readChannel's frame cap, twice, plus slack).
	chanBytes := int64(sb.maxFrame)*2 + 1<<20
	if sb.d, err = makeRunDir(filepath.Join(b.dir, fmt.Sprintf("%d-run%d", os.Getpid(), n)), int64(req.Disk), chanBytes); err != nil {
		return nil, fmt.Errorf("gvisor: run directory: %w", err)
	}
	if err = writeFiles(sb.d.work(), req.Files); err != nil {
		return nil, err
	}
	if err = sb.d.writeChannel(); err != nil {
		return nil, fmt.Errorf("gvisor: channel: %w", err)
	}
	if err = makeRootfs(sb.d.rootfs(), &b.lay, req.Mounts); err != nil {
		return nil, err
	}
	spec := makeSpec(specInput{
		args:   runner.Args(argv0, guestStdin, guestChan+"/"+chanOut),
		env:    guest.Environ(req),
		disk:   int64(req.Disk),
		pids:   req.Pids,
		lay:    &b.lay,
		extra:  extra,
		mounts: req.Mounts,
		d:      sb.d,
	})
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("gvisor: encode OCI spec: %w", err)
	}
	if err = os.WriteFile(filepath.Join(sb.d.bundle(), "config.json"), js, 0o600); err != nil {
		return nil, fmt.Errorf("gvisor: %w", err)
	}

	// Pipes: the runner's stdin (the exec frame), stdout and stderr. The
	// sandbox's ends are closed here once runsc has them.
	var theirs []*os.File
	defer func() {
		for _, f := range theirs {
			f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err != nil {
			return nil, nil, fmt.Errorf("gvisor: %w", err)
		}
		return r, w, nil
	}
	var inR, outW, errW *os.File
	if inR, sb.stdin, err = pipe(); err != nil {
		return nil, err
	}
	theirs = append(theirs, inR)
	if sb.outR, outW, err = pipe(); err != nil {
		return nil, err
	}
	theirs = append(theirs, outW)
	if sb.errR, errW, err = pipe(); err != nil {
		return nil, err
	}
	theirs = append(theirs, errW)

	args := []string{
		"--root=" + sb.d.state(),
		"--platform=" + b.platform,
		"--network=none",
		"--ignore-cgroups",
		// Nothing but this run changes its mounts while it runs (/usr and
		// /etc are read-only, /work and /tmp are private tmpfs), so the
		// sentry may cache them instead of revalidating every lookup with
		// the gofer: much faster imports.
		"--file-access-mounts=exclusive",
		"--log=" + filepath.Join(sb.d.path, "runsc.log"),
		"run", "--bundle=" + sb.d.bundle(), sb.id,
	}
	cmd, gateR, gateW, err := b.command(args, sb.cg, outW, errW)
	if err != nil {
		return nil, err
	}
	cmd.Stdin = inR
	if gateR != nil {
		theirs = append(theirs, gateR, gateW)
	}
	if err = cmd.Start(); err != nil {
		return nil, fmt.Errorf("gvisor: start runsc: %w", err)
	}
	sb.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(sb.waitDone)
	}()
	if gateW != nil {
		// v1: move the gate shell into the group, then let it exec runsc,
		// so that every process runsc starts is born inside the group.
		gateR.Close()
		err = sb.cg.AddProc(cmd.Process.Pid)
		if err == nil {
			_, err = gateW.Write([]byte{'\n'})
		}
		gateW.Close()
		if err != nil {
			return nil, fmt.Errorf("gvisor: join cgroup: %w", err)
		}
	}
	return sb, nil
}

// waitStarted waits until the runner has started (it truncated the result
// file's placeholder) and so is about to block on its stdin. It reports
// false if runsc exited, max passed or abort said so first.
func (sb *sandbox) waitStarted(max time.Duration, abort func() bool) bool {
	f, err := os.OpenFile(sb.outPath(), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	deadline := time.Now().Add(max)
	var buf [len(outUnstarted) + 1]byte
	for time.Now().Before(deadline) {
		select {
		case <-sb.waitDone:
			return false
		default:
		}
		k, _ := f.ReadAt(buf[:], 0)
		if string(buf[:k]) != outUnstarted {
			return true
		}
		if abort() {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// usable says a pooled sandbox may still serve a run: runsc is alive and
// the sandbox is not too old.
func (sb *sandbox) usable(now time.Time) bool {
	select {
	case <-sb.waitDone:
		return false
	default:
	}
	return now.Sub(sb.born) < PoolMaxAge
}

// signalAll sends SIGKILL to every process of the sandbox, without waiting
// for them to die: on cgroup v2 through cgroup.kill, else to each process
// listed in the group (through a pidfd, after checking it still is in the
// group, so that a reused pid is never hit). destroy kills stragglers.
func (sb *sandbox) signalAll() {
	if sb.cmd != nil {
		_ = sb.cmd.Process.Kill() // a pidfd: safe after exit too
	}
	if sb.cg == nil {
		return
	}
	dirs := sb.cg.Dirs()
	if len(dirs) == 0 {
		return
	}
	if sb.cgVersion == "v2" {
		if f, err := os.OpenFile(filepath.Join(dirs[0], "cgroup.kill"), os.O_WRONLY, 0); err == nil {
			_, err = f.Write([]byte("1"))
			f.Close()
			if err == nil {
				return
			}
		}
	}
	// Every process is in every directory of the group (v1: one per
	// controller); the first lists them all. Check them all first, then
	// signal them in one go.
	procs, err := os.ReadFile(filepath.Join(dirs[0], "cgroup.procs"))
	if err != nil {
		return
	}
	suffix := "/" + sb.cg.Name()
	var pfds []int
	for _, f := range strings.Fields(string(procs)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		pfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		if !inGroup(pid, suffix) {
			unix.Close(pfd)
			continue
		}
		pfds = append(pfds, pfd)
	}
	for _, pfd := range pfds {
		_ = unix.PidfdSendSignal(pfd, unix.SIGKILL, nil, 0)
	}
	for _, pfd := range pfds {
		unix.Close(pfd)
	}
}

// inGroup reports whether /proc/<pid>/cgroup puts pid in a group whose
// path ends with suffix.
func inGroup(pid int, suffix string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(line, suffix) {
			return true
		}
	}
	return false
}

// destroy kills every process of the sandbox, reaps runsc and removes the
// run directory (mounts, bundle, runsc's state) and the cgroup. It may be
// called more than once; later calls return the first call's error.
func (sb *sandbox) destroy() error {
	sb.destroyOnce.Do(func() {
		var errs []error
		if sb.cmd != nil {
			sb.signalAll()
			if sb.cg != nil {
				errs = append(errs, sb.cg.Kill())
			}
			<-sb.waitDone
			if sb.cg == nil {
				sb.b.forceDelete(sb.d, sb.id)
			}
		}
		for _, f := range []*os.File{sb.stdin, sb.outR, sb.errR} {
			if f != nil {
				f.Close()
			}
		}
		if sb.d != nil {
			if err := sb.d.remove(); err != nil {
				errs = append(errs, fmt.Errorf("gvisor: remove run directory: %w", err))
			}
		}
		if sb.cg != nil {
			errs = append(errs, sb.cg.Delete())
		}
		sb.destroyErr = errors.Join(errs...)
	})
	return sb.destroyErr
}

// pipeReader reads a pipe until EOF or, once stopped, until it is empty:
// when the exit frame is there, every byte the code wrote before it is
// in the pipe already, and the run need not wait for the sandbox's
// processes to die (and close their ends) to have it all.
type pipeReader struct {
	f       *os.File
	stopped atomic.Bool
}

func (p *pipeReader) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !p.stopped.Load() {
		return n, err
	}
	if n > 0 {
		return n, nil
	}
	rc, err := p.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Read(int(fd), b)
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	if rerr != nil || n <= 0 {
		return 0, io.EOF // EAGAIN: the pipe is empty
	}
	return n, nil
}

// pipeUnread returns how many bytes wait in the pipe f is an end of, or
// -1.
func pipeUnread(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ); err == nil {
			n = v
		}
	})
	return n
}

// stop makes Read return what the pipe holds now, then EOF.
func (p *pipeReader) stop() {
	p.stopped.Store(true)
	_ = p.f.SetReadDeadline(time.Now())
}

// exec hands sb the run's exec frame and waits for the runner's exit frame
// (or runsc's exit, a limit, ctx), fills r.res and tears the sandbox down: the
// kill of every process starts before exec returns; the rest (reaping,
// unmounting, removing the run directory and cgroup) goes on in the
// background, counted for Close. nothingRan says a pooled sandbox died
// before its runner read any of the frame (r.res is then not filled, and
// the run may be given to another sandbox).
func (b *gvisorBackend) exec(ctx context.Context, sb *sandbox, r *run, frame []byte) (nothingRan bool, err error) {
	req := r.req
	iso := &r.res.Isolation
	iso.Missing = append(iso.Missing, sb.missing...)
	iso.Prebooted = sb.prebooted
	if sb.cg != nil {
		iso.Cgroup = sb.cgVersion
		iso.Limits.MemoryBytes = int64(req.Memory)
		iso.Limits.Pids = req.Pids
		iso.Limits.CPUs = req.CPUs
	}
	t0 := time.Now()
	// The watch is set before the frame goes: no exit frame can slip by.
	// If inotify is unavailable the run ends when runsc exits.
	w, _ := watchExit(sb.outPath(), sb.maxFrame)
	defer func() {
		if w != nil {
			w.halt()
		}
		b.background(func() {
			if w != nil {
				w.release()
			}
			b.noteErr(sb.destroy())
		})
	}()
	type written struct {
		n   int
		err error
	}
	// The pipe stays open after the frame (so that a sandbox that died
	// before reading it can be told apart): with IN "0" the runner runs
	// one frame, then joins the code's non-daemon threads, runs its atexit
	// handlers, flushes stdio, writes its exit frame and exits (the code's
	// stdin is /dev/null).
	wrote := make(chan written, 1)
	go func() {
		n, err := sb.stdin.Write(frame)
		wrote <- written{n, err}
	}()

	outP, errP := &pipeReader{f: sb.outR}, &pipeReader{f: sb.errR}
	var wg sync.WaitGroup
	var stdout, stderr guest.Output
	limit := sb.limit
	over := func() { r.set(&r.outputOver); sb.signalAll() }
	wg.Add(2)
	go func() { defer wg.Done(); stdout.Read(outP, limit, r.hooks.Stdout, over) }()
	go func() { defer wg.Done(); stderr.Read(errP, limit, r.hooks.Stderr, over) }()

	// The timeout covers the execution (the runner's finalisation
	// included), not the boot of a pooled sandbox.
	timer := time.NewTimer(req.Timeout.D())
	defer timer.Stop()
	var seen <-chan exitSeen
	if w != nil {
		seen = w.seen
	}
	var exited *exitSeen
	var wr *written
	wroteCh := wrote
wait:
	for {
		select {
		case w := <-wroteCh:
			wroteCh, wr = nil, &w
			if w.err != nil && w.n == 0 && errors.Is(w.err, unix.EPIPE) {
				// No process holds the pipe's read end: the runner is gone.
				sb.signalAll()
				break wait
			}
		case <-sb.waitDone:
			break wait
		case es := <-seen:
			exited = &es
			break wait
		case <-timer.C:
			r.set(&r.timedOut)
			sb.signalAll()
			break wait
		case <-ctx.Done():
			r.set(&r.cancelled)
			sb.signalAll()
			break wait
		}
	}
	tDone := time.Now()
	if exited != nil {
		// Done: kill everything now (the runner is about to exit, runsc
		// and the sentry would take ~10 ms to follow); what the code wrote
		// before the exit frame is in the pipes already.
		sb.signalAll()
		outP.stop()
		errP.stop()
	} else {
		// runsc has exited or is being killed; whatever it left (a sentry
		// or gofer it did not reap, platform stubs) dies with the group
		// before the streams are read to their end.
		<-sb.waitDone
		if sb.cg != nil {
			_ = sb.cg.Kill()
		} else {
			b.forceDelete(sb.d, sb.id)
		}
	}
	wg.Wait()
	if exited == nil && wr == nil {
		select {
		case w := <-wroteCh:
			wr = &w
		default:
		}
	}
	if sb.prebooted && exited == nil && wr != nil && stdout.String() == "" && stderr.String() == "" {
		r.mu.Lock()
		limited := r.timedOut || r.cancelled || r.outputOver
		r.mu.Unlock()
		// The frame is all still in the pipe (or was never written):
		// the runner did not read a byte of it.
		if !limited && (wr.err != nil && wr.n == 0 || wr.err == nil && pipeUnread(sb.stdin) == wr.n) {
			return true, nil
		}
	}

	var stats cgroup.Stats
	if sb.cg != nil {
		stats, _ = sb.cg.Stats()
	}
	fin := finishInput{stdout: &stdout, stderr: &stderr, stats: stats, haveStats: sb.cg != nil, exitCode: -1}
	var end int64 = -1
	if exited != nil {
		// The runner exits with this code right after the frame.
		fin.exitCode, fin.exitFrame = exited.exitCode, true
		end = exited.end
	} else if ps := sb.cmd.ProcessState; ps != nil {
		fin.exitCode = ps.ExitCode() // -1 when killed by a signal
	}
	fin.started, fin.frames = readChannel(sb.outPath(), sb.maxFrame, limit, end)
	if req.CollectFiles {
		if exited != nil {
			// Nothing may change /work while it is walked.
			if sb.cg != nil {
				_ = sb.cg.Kill()
			} else {
				<-sb.waitDone
				b.forceDelete(sb.d, sb.id)
			}
		}
		fin.files, fin.filesTruncated = collect(sb.d.work(), int64(req.FilesLimit))
	}
	if !fin.started {
		if log, err := os.ReadFile(filepath.Join(sb.d.path, "runsc.log")); err == nil {
			fin.runscLog = string(log)
		}
	}
	if trace {
		fmt.Fprintf(os.Stderr, "pybox trace: gvisor prebooted %v: booted %v before its exec, exec %v (ended by: exit frame %v), gathering the result %v\n",
			sb.prebooted, t0.Sub(sb.born).Round(time.Microsecond), tDone.Sub(t0).Round(time.Microsecond), exited != nil, time.Since(tDone).Round(time.Microsecond))
	}
	return false, b.finish(r, fin)
}
