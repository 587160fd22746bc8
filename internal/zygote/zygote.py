# pybox fork-server template ("zygote"). See internal/zygote/zygote.go.
#
# Runs inside a native pybox sandbox as uid 0 of its user namespace, keeping
# the capabilities it needs to build one fresh sandbox per execution: it
# never runs user code itself. Started as
#     python -I -B -c <this> 3 4
# with fd 3 a SOCK_SEQPACKET socket to the supervisor. Per execution the
# supervisor sends {"type":"fork"} with file descriptors; the template hands
# them to a child made for the execution: pid 2 of a new pid namespace
# (pid 1 is a do-nothing anchor), made ahead of time when the supervisor
# asks ("prepare": a spare, in the cgroup of the next execution) or now.
# The child unshares mount, ipc and uts namespaces, enters a network
# namespace the template made for it, mounts a fresh /proc, /work, /tmp
# and /dev/shm and applies Landlock; once in its cgroup (moved by the
# template, or by itself when prepared) it unshares its cgroup namespace;
# once handed an execution, it writes the input
# files, drops every privilege (uid 1000, no groups, no capabilities),
# applies a seccomp filter that denies what the template kept, and runs the
# ordinary runner on fds 3 and 4. The template reaps it, kills its anchor
# (ending everything it left) and reports the exit status to the
# supervisor. RATIONALE.md has the security argument.
import os, sys, json, socket, signal, ctypes, struct, base64, fcntl, stat, select, time, resource

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.clone.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP = 0x20000000, 0x40000000, 0x02000000
CLONE_VM, CLONE_FILES, CLONE_PARENT = 0x100, 0x400, 0x8000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_SET_DUMPABLE = 24, 38, 22, 4
SECCOMP_MODE_FILTER = 2
SYS_LL_CREATE, SYS_LL_ADD, SYS_LL_RESTRICT = 444, 445, 446
# rt_sigprocmask, called directly to block the two signals libc keeps for
# itself too (32 and 33: pthread_sigmask leaves them unblocked).
SYS_RT_SIGPROCMASK = {"x86_64": 14, "aarch64": 135}.get(os.uname().machine)
SIOCSIFFLAGS, IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x8914, 0x1, 0x8, 0x40
UID = GID = 1000
# A spare warms the runner up only after this long without a request: a
# request that comes sooner (back-to-back executions) would wait for it.
TOUCH_AFTER_MS = 2
# What a spare of a template with numpy runs to warm it up: an array, a
# binary ufunc and a reduction (the paths most numpy cells start with).
WARM_NUMPY = "import numpy\n(numpy.ones(16) * 2).sum()"


def check(r, what):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))
    return r


def frame(obj):
    b = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(b)) + b


def write_all(fd, b):
    while b:
        b = b[os.write(fd, b):]


def read_exact(fd, n):
    out = bytearray()
    while len(out) < n:
        b = os.read(fd, n - len(out))
        if not b:
            return None
        out += b
    return bytes(out)


def read_frame(fd):
    h = read_exact(fd, 4)
    if h is None:
        return None
    b = read_exact(fd, struct.unpack(">I", h)[0])
    return None if b is None else json.loads(b)


class RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Spare:
    # A child made ahead (Template.make_spare): its pid, its pid
    # namespace's anchor, the socket it waits on, its disk size, and the
    # supervisor's id of the cgroup it moved itself into (None: none yet),
    # and a pidfd of its holder (-1: none; see Template.make_holder).
    def __init__(self, pid, anchor, ctl, disk, cgroup=None, holder=-1):
        self.pid, self.anchor, self.ctl, self.disk = pid, anchor, ctl, disk
        self.cgroup, self.holder = cgroup, holder
        self.dead = False  # reaped before it was handed an execution


class Template:
    def __init__(self, cfg):
        self.cfg = cfg
        self.trace = bool(cfg.get("trace"))
        self.runner = {"__name__": "pybox_runner"}
        exec(compile(cfg["runner"], "<runner>", "exec"), self.runner)
        self.preloaded, self.errors = [], []
        for m in cfg.get("preload") or []:
            try:
                __import__(m)
                self.preloaded.append(m)
            except Exception as e:
                self.errors.append("%s: %s" % (m, e))
        # Built once, used by every child: the seccomp program and the
        # Landlock masks.
        raw = base64.b64decode(cfg["seccomp"])
        self.filter_buf = ctypes.create_string_buffer(raw, len(raw))
        self.fprog = SockFprog(len(raw) // 8, ctypes.cast(self.filter_buf, ctypes.c_void_p))
        self.ll = cfg.get("landlock")
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.own_netns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.spare = None  # the next execution's child, set up ahead (Spare)
        self.spare_netns = -1  # a network namespace for the next spare
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        # Every child's holder's stack (make_holder): made here, so that a
        # child neither builds ctypes' array type for it (a new type
        # object: ~60 page faults in a child of the template) nor zeroes
        # fresh pages; each child's holder writes to its own copy. The
        # template itself never uses it.
        self.holder_stack = ctypes.create_string_buffer(16 << 10)
        self.warm_up()
        # The bounding set limits what any later execve can gain: empty it
        # once here. The template keeps its own (effective) capabilities,
        # which every child drops when it switches to uid 1000.
        for cap in range(int(open("/proc/sys/kernel/cap_last_cap").read()) + 1):
            check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capability %d" % cap)

    def warm_up(self):
        # Do once here what every child would otherwise redo: CPython's
        # AST types (built by the first compile()), the runner's lazily
        # compiled parts, and modules the children import.
        import fcntl, stat, traceback, linecache, atexit  # noqa: F401
        R = self.runner
        R["_exec"]({"type": "exec", "code": "x = [1]\nx"}, {"__builtins__": __builtins__})
        # And an error's traceback with its source line and carets, which
        # import ast (a child that raised took 2.5 ms longer than one that
        # did not).
        R["_exec"]({"type": "exec", "code": "x = 1\nx / 0"},
                   {"__builtins__": __builtins__, "__name__": "__main__", "__loader__": R["_loader"]})
        for chunk, name in (("_JSON", "to_json"), ("_ERR", "_format_tb"), ("_ASYNC", "_run_async"), ("_EXIT", "_finish")):
            try:
                R["_lazy"](R[chunk], name)
            except Exception:
                pass

    # ---- template side -------------------------------------------------
    def serve(self, sock):
        self.execs = {}  # pid of the child -> (anchor pid, status fd, its Spare)
        self.dying = {}  # killed anchor's pid -> status fd for its done (-1: none)
        self.stacks = {}  # anchor pid -> its stack
        self.free_stacks = []  # stacks of reaped anchors, for the next ones
        self.pause = ctypes.cast(libc.pause, ctypes.c_void_p)
        # No SIGCHLD handler: the loop below polls a pidfd per child
        # instead (a handler can lose exits: see spawn_anchor), and SIGCHLD
        # keeps its default disposition, which anchors inherit.
        self.pidfds = {}  # pidfd -> pid, for every child to wait for
        self.pidfd_ok = hasattr(os, "pidfd_open")
        # Every object that exists now is shared copy-on-write with the
        # children: keep the collector from walking (and so writing to,
        # and so copying) them in every child.
        import gc
        gc.collect()
        gc.freeze()
        sock.send(json.dumps({"type": "ready", "preloaded": self.preloaded, "errors": self.errors}).encode())
        while True:
            # The next spare's network namespace (with loopback up) is
            # made between requests, even while executions run. The spare
            # itself is made when the supervisor asks (prepare), once no
            # execution has run for a moment, or for a request.
            if self.spare is None and self.spare_netns < 0:
                try:
                    self.spare_netns = self.new_netns()
                except OSError:
                    pass
            timeout = None if self.pidfd_ok else 20
            p = select.poll()
            p.register(sock, select.POLLIN)
            for fd in self.pidfds:
                p.register(fd, select.POLLIN)
            try:
                events = p.poll(timeout)
            except InterruptedError:
                continue
            if self.trace:
                self.woke = (time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
            for fd, _ in events:
                pid = self.pidfds.pop(fd, None)
                if pid is not None:
                    os.close(fd)
            self.reap()
            if not any(fd == sock.fileno() for fd, _ in events):
                continue
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 4096, 16)
            except InterruptedError:
                continue
            except OSError:
                return
            if not msg:
                return
            req = json.loads(msg)
            if req.get("type") == "prepare":
                reply = self.prepare(req, fds)
            else:
                reply = self.fork(req, fds)
            sock.send(json.dumps(reply).encode())
            try:
                self.touch_self()
            except OSError:
                pass  # only ever a head start (out of fds, say)

    def touch_self(self):
        # Making a child (a spare) leaves every page of the template shared
        # copy-on-write with it, so the template's first write to each
        # page it touches while serving the next request copies it: 40-60
        # page faults, ~1 ms where a fault costs 15 µs (a PVM guest).
        # Run those paths once now, on harmless input, so that the copies
        # are made between requests instead.
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            r, w = os.pipe()
            try:
                req = {"type": "fork", "id": 0, "disk": 0, "prepared": 0, "files": False, "collect": False}
                socket.send_fds(a, [json.dumps(req).encode()], [r])
                msg, fds, _, _ = socket.recv_fds(b, 4096, 16)
                for fd in fds:
                    os.close(fd)
                json.loads(msg)
                p = select.poll()
                p.register(b, select.POLLIN)
                p.poll(0)
                write_all(w, frame({"type": "exit", "exit_code": 0}))
                os.read(r, 64)
                a.send(json.dumps({"type": "forked", "id": 0, "pid": 0, "spare": True, "took_us": 0}).encode())
                b.recv(4096)
                self.reap()
            finally:
                os.close(r)
                os.close(w)
        finally:
            a.close()
            b.close()

    def watch(self, pid):
        # Wake the serve loop when pid ends (without pidfds, the loop
        # polls every 20 ms instead). A pid already reaped needs no wake-up.
        if self.pidfd_ok:
            try:
                self.pidfds[os.pidfd_open(pid)] = pid
            except ProcessLookupError:
                pass
            except (OSError, AttributeError):
                self.pidfd_ok = False

    def new_netns(self):
        # A fresh network namespace with only loopback, up: made here and
        # entered (setns) by exactly one child, never by the template.
        check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING))
            except OSError:
                os.close(fd)
                raise
            finally:
                s.close()
        finally:
            check(libc.setns(self.own_netns, CLONE_NEWNET), "setns(net)")
        return fd

    def fork(self, req, fds):
        # Hands the execution to a spare child (made ahead, or now), moves
        # it into the execution's cgroup and answers the supervisor.
        t0 = time.monotonic()
        disk = int(req["disk"])
        prepared = req.get("prepared")
        sp = None
        if self.spare is not None and self.spare.cgroup == prepared:
            sp, self.spare = self.spare, None
        spare = sp is not None
        sent = False
        try:
            if sp is not None and (sp.disk != disk or sp.dead):
                # Made for another disk size, or died while it waited
                # (its holder keeps its socket open, so sending to it
                # would not fail): a new one, now.
                self.drop_spare(sp)
                sp = None
            while not sent:
                fresh = sp is None
                if fresh:
                    sp = self.make_spare(disk)
                # The child takes this as soon as its set-up is done (a
                # set-up that failed is reported on the status pipe,
                # fds[5]). A child made for this request gets the
                # cgroup.procs files too: it moves itself into the
                # execution's cgroup, after its holder exists
                # (make_holder), and only then reads the code (which the
                # supervisor sent with the request). A spare that dies
                # after this is reported like any ended execution.
                try:
                    socket.send_fds(sp.ctl, [json.dumps(req).encode()], fds if sp.cgroup is None else fds[:7])
                    sent = True
                except OSError:
                    if fresh:
                        raise
                    # A spare that died while it waited: a new one.
                    self.drop_spare(sp)
                    sp = None
        except OSError as e:
            if sp is not None:
                # Ends the spare's pid namespace, the child included
                # (reported as usual once it was handed the execution).
                if sent:
                    os.kill(sp.anchor, signal.SIGKILL)
                else:
                    self.drop_spare(sp)
            return {"type": "fork-error", "id": req.get("id"), "error": str(e)}
        finally:
            for fd in fds[:5] + fds[6:]:
                os.close(fd)
            if sent:
                # Its socket stays open until it is reaped: its holder's
                # pidfd is read from it then (take_holder).
                self.execs[sp.pid] = (sp.anchor, fds[5], sp)
                self.watch(sp.pid)
            else:
                if sp is not None:
                    sp.ctl.close()
                os.close(fds[5])
        t1 = time.monotonic()
        reply = {"type": "forked", "id": req.get("id"), "pid": sp.pid, "spare": spare,
                 "took_us": int((t1 - t0) * 1e6)}
        if self.trace:
            reply["woke_us"] = int((t1 - self.woke[0]) * 1e6)
            reply["faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.woke[1]
        return reply

    def prepare(self, req, fds):
        # Makes the next execution's spare now, in the cgroup whose
        # cgroup.procs files come with the request (the supervisor's next
        # one for these limits): the spare moves itself there while it
        # sets up, so that the move's wait (an RCU grace period, 2-15 ms
        # when no move happened for a while) is not an execution's.
        try:
            if self.spare is not None:
                self.drop_spare(self.spare)
                self.spare = None
            self.spare = self.make_spare(int(req["disk"]), fds, req["cgroup"])
        except OSError as e:
            return {"type": "prepare-error", "id": req.get("id"), "error": str(e)}
        finally:
            for fd in fds:
                os.close(fd)
        return {"type": "prepared", "id": req.get("id"), "pid": self.spare.pid}

    def make_spare(self, disk, procs=(), cgroup=None):
        # The next execution's child, made before any request for it: a
        # new pid namespace with its anchor (pid 1) and the child (pid 2),
        # which builds its namespaces and mounts, restricts itself with
        # Landlock and (unless an execution comes within TOUCH_AFTER_MS)
        # runs the runner once on a constant, then waits on ctl for an
        # execution. It holds nothing of any request until then, and
        # never runs code of two.
        netns, self.spare_netns = self.spare_netns, -1
        if netns < 0:
            netns = self.new_netns()
        ours = theirs = None
        anchor = pid = 0
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            check(libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
            try:
                # pid 1 of the new pid namespace: a do-nothing anchor, so
                # that the code (pid 2) has ordinary signal semantics and
                # killing the anchor ends everything the code started.
                anchor = self.spawn_anchor()
                pid = os.fork()
                if pid == 0:
                    ours.close()
                    self.spare_child(theirs, netns, disk, procs)  # never returns
            finally:
                check(libc.setns(self.own_pidns, CLONE_NEWPID), "setns(pid)")
        except BaseException:
            if anchor:
                self.retire(anchor, pid)
            if ours is not None:
                ours.close()
            raise
        finally:
            os.close(netns)
            if theirs is not None:
                theirs.close()
        return Spare(pid, anchor, ours, disk, cgroup)

    def take_holder(self, sp, wait_ms):
        # A spare's first message (greet): a pidfd of its holder, or none.
        # It is sent early in the spare's set-up, before anything that
        # could wait, so it is there once the spare has been handed an
        # execution and ended, or soon after the spare was made.
        if sp.holder >= 0:
            return
        p = select.poll()
        p.register(sp.ctl, select.POLLIN)
        if not p.poll(wait_ms):
            return
        try:
            msg, fds, _, _ = socket.recv_fds(sp.ctl, 16, 1, socket.MSG_DONTWAIT)
        except OSError:
            return
        if msg == b"h" and len(fds) == 1:
            sp.holder = fds[0]
        else:
            for fd in fds:
                os.close(fd)

    def drop_spare(self, sp):
        # Ends an unused spare.
        if not sp.dead:
            self.take_holder(sp, 100)
        sp.ctl.close()
        self.retire(sp.anchor, sp.pid, sp.holder)

    def spawn_anchor(self):
        # clone(CLONE_VM) running libc's pause() on a small stack of its
        # own: no exec and no copy of the template's page tables (a fork
        # or an exec of sleep cost ~0.5 ms each). The anchor only ever
        # sleeps in pause(); SIGCHLD must not wake it (an orphan of the
        # code exiting would end the namespace): the template keeps
        # SIGCHLD at its default disposition (ignored, children not
        # auto-reaped), which the anchor inherits. (An earlier version set
        # the default only around this clone, under a SIGCHLD handler:
        # setting it discards a pending SIGCHLD, and an execution that
        # ended just then was never reported.) CLONE_FILES: the anchor
        # shares the template's fd table instead of holding copies of the
        # fds open now (a spare's socket, which must close when the spare
        # dies; other executions' status pipes).
        # A reaped anchor's stack is reused as it is: allocating and
        # zeroing 64 KiB per execution wrote 16 pages that children share
        # copy-on-write (the template's own faults, on every execution).
        stack = self.free_stacks.pop() if self.free_stacks else ctypes.create_string_buffer(64 << 10)
        top = (ctypes.addressof(stack) + len(stack)) & ~0xF
        pid = check(libc.clone(self.pause, ctypes.c_void_p(top), CLONE_VM | CLONE_FILES | signal.SIGCHLD, None), "clone(anchor)")
        self.stacks[pid] = stack  # freed once the anchor is reaped
        return pid

    def retire(self, anchor, pid=0, holder=-1, status_w=-1):
        # Ends a pid namespace without waiting for it: SIGKILL to its
        # anchor (pid 1), whose exit kills every other process there and
        # then waits until they are all reaped. What is left is reaped by
        # the serve loop as it ends: the child (pid, if not reaped yet),
        # the holder (whose exit frees the execution's memory: the slow
        # part) and the anchor. Once the anchor is reaped, nothing of the
        # execution is left, and status_w gets done.
        try:
            os.kill(anchor, signal.SIGKILL)
        except OSError:
            pass
        self.dying[anchor] = status_w
        self.watch(anchor)
        if pid:
            self.watch(pid)
        if holder >= 0:
            if self.pidfd_ok:
                self.pidfds[holder] = 0
            else:
                os.close(holder)

    def free_stack(self, anchor):
        # The stack of a reaped anchor (none of its process is left).
        st = self.stacks.pop(anchor, None)
        if st is not None and len(self.free_stacks) < 16:
            self.free_stacks.append(st)

    def reap(self):
        # Reports each ended execution (its exit status comes from here,
        # the trusted side) and kills its anchor, which ends its pid
        # namespace and so every process the code left behind.
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ent = self.execs.pop(pid, None)
            if ent is None:
                # An anchor, a holder, or a spare that never ran code.
                if self.spare is not None and self.spare.pid == pid:
                    self.spare.dead = True
                status_w = self.dying.pop(pid, None)
                if status_w is not None and status_w >= 0:
                    try:
                        write_all(status_w, frame({"type": "done"}))
                    except OSError:
                        pass
                    os.close(status_w)
                self.free_stack(pid)
                continue
            # The code's process is gone: its exit status now, and done
            # once its pid namespace has ended (retire). The supervisor
            # need not wait for done when the execution's cgroup is
            # empty: then the holder is all that is left (make_holder).
            anchor, status_w, sp = ent
            self.take_holder(sp, 0)
            sp.ctl.close()
            ex = {"type": "exit"}
            if os.WIFSIGNALED(st):
                ex["exit_code"], ex["signal"] = -1, os.WTERMSIG(st)
            else:
                ex["exit_code"] = os.WEXITSTATUS(st)
            try:
                write_all(status_w, frame(ex))
            except OSError:
                pass
            self.retire(anchor, 0, sp.holder, status_w)

    # ---- the child: one execution's sandbox, then the user's code -------
    TMPFS = ((b"/work", MS_NOSUID | MS_NODEV, b",mode=0755,uid=%d,gid=%d" % (UID, GID)),
             (b"/tmp", MS_NOSUID | MS_NODEV, b",mode=1777"),
             (b"/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, b",mode=1777"))

    def greet(self, ctl, hfd):
        # A spare's first message to the template (take_holder).
        self.greeted = True
        try:
            socket.send_fds(ctl, [b"h"], [hfd] if hfd >= 0 else [])
        finally:
            if hfd >= 0:
                os.close(hfd)

    def make_holder(self):
        # The holder: a process that shares this child's memory and
        # namespaces and does nothing, so that the code's exit neither
        # frees the memory (unmapping what the child shares copy-on-write
        # with the template: ~1-2 ms) nor tears down the namespaces; the
        # holder's own exit does, once the execution has been reported
        # (retire). It is clone(CLONE_VM) running libc's pause() on a stack
        # of its own, made now, as uid 0 of the template's user namespace
        # and before Landlock, with every signal blocked: the code (uid
        # 1000, in a Landlock domain that scopes signals) cannot signal
        # it, so pause() never returns and the holder never runs an
        # instruction of its own again, whatever the code writes to the
        # memory they share; only the SIGKILL of its pid namespace ends
        # it. CLONE_PARENT: the template's child, not the code's (the code
        # must not see it in wait()). Made before the child joins the
        # execution's cgroup, it is outside it: not counted against the
        # pids limit, and an empty cgroup means nothing of the code runs.
        # Returns a pidfd of the holder, or -1 where there are no pidfds.
        if not hasattr(os, "pidfd_open"):
            return -1
        stack = self.holder_stack
        top = (ctypes.addressof(stack) + len(stack)) & ~0xF
        old = ctypes.c_uint64()
        if SYS_RT_SIGPROCMASK is None:
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        else:
            every = ctypes.c_uint64((1 << 64) - 1)
            check(libc.syscall(SYS_RT_SIGPROCMASK, signal.SIG_BLOCK, ctypes.byref(every), ctypes.byref(old), 8), "rt_sigprocmask")
        try:
            pid = libc.clone(ctypes.cast(libc.pause, ctypes.c_void_p), ctypes.c_void_p(top),
                             CLONE_VM | CLONE_PARENT | signal.SIGCHLD, None)
        finally:
            if SYS_RT_SIGPROCMASK is None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            else:
                libc.syscall(SYS_RT_SIGPROCMASK, signal.SIG_SETMASK, ctypes.byref(old), None, 8)
        if pid < 0:
            return -1  # no holder: the code's exit does the freeing
        try:
            return os.pidfd_open(pid)
        except OSError:
            # Still the template's child and still ended with the pid
            # namespace; the template is just not woken by its end.
            return -1

    def mounts(self, disk):
        # A fresh /proc and size-capped tmpfs /work, /tmp and /dev/shm, in
        # the child's own mount namespace.
        check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
        for dst, flags, opts in self.TMPFS:
            check(libc.mount(b"tmpfs", dst, b"tmpfs", flags, b"size=%d" % disk + opts), "mount " + dst.decode())

    def spare_child(self, ctl, netns, disk, procs):
        # The spare child (see make_spare); ends the process.
        code = 255
        status_w = -1
        failed = None
        self.joined = self.dropped = self.greeted = False
        try:
            # No random state shared with other children: Python's random
            # reseeds itself after fork (os.register_at_fork), numpy's
            # global RandomState (np.random.rand...) does not.
            npr = sys.modules.get("numpy.random")
            if npr is not None:
                npr.seed()
            # Nothing of the template's but what the set-up needs: not its
            # socket to the supervisor, pidfds or status pipes.
            keep = sorted({ctl.fileno(), netns, self.devnull, *procs})
            lo = 3
            for fd in keep:
                os.closerange(lo, fd)
                lo = fd + 1
            os.closerange(lo, 1 << 20)
            check(libc.unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
            check(libc.setns(netns, CLONE_NEWNET), "setns(net)")
            os.close(netns)
            # The holder (see make_holder) is made before the child joins
            # the execution's cgroup (now, for a prepared spare, or once
            # handed an execution), so that it stays outside it.
            self.greet(ctl, self.make_holder())
            if procs:
                # Into the cgroup prepared for the next execution (every
                # hierarchy), then a cgroup namespace rooted there.
                for fd in procs:
                    os.write(fd, b"0")
                    os.close(fd)
                check(libc.unshare(CLONE_NEWCGROUP), "unshare(CLONE_NEWCGROUP)")
                self.joined = True
            self.mounts(disk)
            if self.ll:
                self.landlock()
            if self.joined:
                # Already in its cgroup (a prepared spare): nothing left that
                # needs the template's privileges, so the rest of the set-up
                # is done now rather than while an execution waits.
                self.settle()
                self.drop_privileges()
                self.dropped = True
            p = select.poll()
            p.register(ctl, select.POLLIN)
            if not p.poll(TOUCH_AFTER_MS):
                # Still nobody waits (executions are not coming back to
                # back): run the runner once on a constant, so that the
                # pages it touches are copied now, not while the code
                # waits.
                R = self.runner
                self.touch_main()
                # And the end of a run (see the runner's _finish), on a
                # module of its own.
                R["_teardown"](type(sys)("pybox_touch"))
                # And the request's decoding (bytes, which the runner's own
                # frames are not): 300 µs less between the request and
                # the code's start.
                json.loads(b'{"type":"fork","id":1,"disk":1,"prepared":1}')
                if "numpy" in self.preloaded:
                    # And numpy's array and ufunc machinery, which a cell
                    # using numpy touches first.
                    R["_exec"]({"type": "exec", "code": WARM_NUMPY}, {"__builtins__": __builtins__})
        except BaseException as e:
            # Reported to the execution this child is handed, if any.
            failed = e
        try:
            if not self.greeted:
                self.greet(ctl, -1)
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 16)
            if not msg or len(fds) < 7:
                os._exit(0)  # dropped, or the template is gone
            status_w = fds[5]
            if failed is not None:
                raise failed
            code = self.child(json.loads(msg), fds)
        except BaseException as e:
            try:
                if status_w >= 0:
                    write_all(status_w, frame({"type": "error", "step": "zygote", "error": "%s: %s" % (type(e).__name__, e)}))
            except BaseException:
                pass
        os._exit(code)

    def child(self, req, fds):
        out_w, err_w, rin_r, rout_w, status_w, files_w = fds[1:7]
        if not self.joined:
            # Into the execution's cgroup (every hierarchy: the
            # cgroup.procs files after the seven), then a cgroup namespace
            # rooted there.
            for fd in fds[7:]:
                os.write(fd, b"0")
            check(libc.unshare(CLONE_NEWCGROUP), "unshare(CLONE_NEWCGROUP)")
        if not self.dropped:
            self.settle()
        files = []
        if req.get("files"):
            c = read_frame(fds[0])
            files = (c or {}).get("files") or []
        for f in files:
            self.put_file(f)
        # Move the fds clear of 0-5 first, then into place; close the rest,
        # the status pipe included: from here on only the template reports
        # on it (the exit status must not be forgeable by the code).
        hi = [os.dup(fd) for fd in (self.devnull, out_w, err_w, rin_r, rout_w, files_w)]
        for want, fd in enumerate(hi):
            os.dup2(fd, want, inheritable=(want < 5))
        os.closerange(6, 1 << 20)
        if not self.dropped:
            self.drop_privileges()
        files_fd = -1
        if req.get("collect"):
            files_fd = fcntl.fcntl(5, fcntl.F_DUPFD_CLOEXEC, 200)
        os.close(5)
        sys.argv[:] = ["-c", "3", "4"]
        R = self.runner
        code = R["main"]()
        # The process ends with os._exit (a normal exit would tear down the
        # template's whole interpreter): first what Python's finalisation
        # does that the code can see (threads joined, atexit handlers,
        # files it left open written out), as in a cold run.
        code = R["_lazy"](R["_EXIT"], "_finish")(code if isinstance(code, int) else 1)
        if files_fd >= 0:
            # Stop everything else the code started before /work is read
            # (this process runs the collection as the code's own user: it
            # can only report what the code could read anyway).
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            self.collect(files_fd, int(req.get("files_limit") or 0))
        return code

    def touch_main(self):
        # The runner's whole main loop once, on a constant frame read from a
        # pipe and a result written to /dev/null; then the interpreter
        # state it changed (__main__, argv, path, meta_path) is put back
        # and the fds it made (it moves its two channels to 100 and up)
        # are closed.
        R = self.runner
        saved = (sys.modules.get("__main__"), sys.argv[:], sys.path[:], sys.meta_path[:])
        before = set(os.listdir("/proc/self/fd"))
        r, w = os.pipe()
        try:
            write_all(w, frame({"type": "exec", "code": "x = [1]\nx"}))
        finally:
            os.close(w)
        out = os.open("/dev/null", os.O_WRONLY)
        try:
            sys.argv[:] = ["-c", str(r), str(out)]
            R["main"]()
        finally:
            for fd in set(os.listdir("/proc/self/fd")) - before:
                try:
                    os.close(int(fd))
                except OSError:
                    pass  # the listing's own fd
            sys.modules["__main__"] = saved[0]
            sys.argv[:], sys.path[:], sys.meta_path[:] = saved[1], saved[2], saved[3]

    def settle(self):
        # Its own session, /work as cwd, and the request's environment: the
        # template's own settings (one BLAS thread) are not the code's.
        os.setsid()
        os.chdir("/work")
        for k, v in (self.cfg.get("child_env") or {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def drop_privileges(self):
        # uid 1000 with no capabilities (the switch from uid 0 clears them;
        # the bounding set is already empty), no_new_privs, and the
        # per-child seccomp filter (no mount, unshare, setns, namespaces).
        os.setgroups([])
        os.setresgid(GID, GID, GID)
        os.setresuid(UID, UID, UID)
        # The uid change made the process non-dumpable, which a cold
        # sandbox's interpreter (exec'd as uid 1000) is not: /proc/self/ns,
        # environ and io would be root's and unreadable to the code.
        check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self.fprog), 0, 0), "seccomp")

    def put_file(self, f):
        name = f["name"]  # already cleaned by the supervisor
        path = "/work/" + name
        d = os.path.dirname(path)
        if d != "/work":
            os.makedirs(d, exist_ok=True)
            p = d
            while p != "/work":
                os.lchown(p, UID, GID)
                p = os.path.dirname(p)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, f.get("mode") or 0o644)
        try:
            write_all(fd, base64.b64decode(f.get("data") or ""))
            os.fchown(fd, UID, GID)
        finally:
            os.close(fd)

    def collect(self, status_w, budget):
        truncated = False
        for root, dirs, files in os.walk("/work"):
            for n in sorted(files):
                p = os.path.join(root, n)
                try:
                    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError:
                    continue
                try:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    if st.st_size > budget:
                        truncated = True
                        continue
                    data = os.read(fd, budget + 1) if st.st_size else b""
                    if len(data) > budget:
                        truncated = True
                        continue
                    budget -= len(data)
                    rel = os.path.relpath(p, "/work")
                    write_all(status_w, frame({"type": "file", "file": {
                        "name": rel, "size": len(data), "mode": st.st_mode & 0o777,
                        "data": base64.b64encode(data).decode()}}))
                finally:
                    os.close(fd)
        if truncated:
            write_all(status_w, frame({"type": "file", "files_truncated": True}))

    def landlock(self):
        ll = self.ll
        attr = RulesetAttr(ll["handled_fs"], ll["handled_net"], ll["scoped"])
        rs = check(libc.syscall(SYS_LL_CREATE, ctypes.byref(attr), ctypes.sizeof(attr), 0), "landlock_create_ruleset")
        try:
            def rule(path, rights, is_file):
                if is_file:
                    rights &= ll["file_rights"]
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    pb = PathBeneath(rights & ll["handled_fs"], fd)
                    check(libc.syscall(SYS_LL_ADD, rs, 1, ctypes.byref(pb), 0), "landlock_add_rule " + path)
                finally:
                    os.close(fd)
            for p in self.cfg["ro"]:
                rule(p, ll["read_rights"], False)
            for p in self.cfg["rw"]:
                rule(p, ll["handled_fs"], False)
            for p in self.cfg["rw_files"]:
                rule(p, ll["handled_fs"], True)
            check(libc.syscall(SYS_LL_RESTRICT, rs, 0), "landlock_restrict_self")
        finally:
            os.close(rs)


def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=int(sys.argv[1]))
    msg = sock.recv(1 << 20)
    if not msg:
        return 1
    t = Template(json.loads(msg))
    t.serve(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
