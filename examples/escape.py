# Tries to break out of the sandbox. Every attempt should be denied.
import os, socket, ctypes

def attempt(what, fn):
    try:
        out = fn()
        print(f"ESCAPED   {what}: {out!r}"[:160])
    except Exception as e:
        print(f"denied    {what}: {type(e).__name__}: {e}"[:160])

attempt("read /etc/shadow", lambda: open("/etc/shadow").read(100))
attempt("read host /root", lambda: os.listdir("/root"))
attempt("write /usr/bin/evil", lambda: open("/usr/bin/evil", "w").write("x"))
attempt("see host processes", lambda: [p for p in os.listdir("/proc") if p.isdigit() and p not in ("1", str(os.getpid()))] or (_ for _ in ()).throw(PermissionError("only the sandbox's own processes are visible")))
attempt("connect to the host's sshd on 127.0.0.1:22", lambda: socket.create_connection(("127.0.0.1", 22), timeout=1))
attempt("become root", lambda: os.setuid(0))
libc = ctypes.CDLL(None, use_errno=True)
def unshare():
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
attempt("unshare a user namespace", unshare)
def mount():
    if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
attempt("mount a filesystem", mount)
attempt("kill pid 1", lambda: os.kill(1, 9))
print("uid:", os.getuid(), "host env leaked:", "HOME" in os.environ and os.environ["HOME"] != "/work")
