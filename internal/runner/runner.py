# pybox runner: runs inside every sandbox as
#     python -I -S -B -c <this source> IN OUT
# IN/OUT are fd numbers (native; gvisor's IN is 0, its stdin) or file paths
# (wasm). Frames both ways are a 4-byte big-endian length then UTF-8 JSON.
# See docs/protocol.md.
#
# Startup cost matters. Python compiles this whole source on every start
# (about 1.2M instructions per KiB of code, 0.2M per KiB of string literal),
# so only what every run needs is plain code. The rest (return value
# conversion, top-level await, error formatting, gvisor's end, display and
# matplotlib) lives in the strings _JSON, _ASYNC, _ERR, _EXIT and _DISPLAY,
# compiled on first use by _lazy(); the native backend hands the runner over
# precompiled, those parts included (see CompileScript in runner.go). Import
# nothing eagerly that `python -I -S` has not loaded: not even os, which
# -S leaves out and which costs ~1 ms of a cold start (os, stat, posixpath
# and _collections_abc); the runner's few file-descriptor calls are posix's,
# the module os re-exports them from.
import sys
import posix as os

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE
_ONLY_AST = 0x400  # ast.PyCF_ONLY_AST
_TOP_AWAIT = 0x2000  # ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_FUTURE_MASK = 0x1FE0000  # CO_FUTURE_* flags
_out = -1
_preloaded = None  # the modules loaded before the code's first execution
_stdout, _stderr = sys.stdout, sys.stderr


def _isdir(p):
    # os.path.isdir, without importing os.path.
    try:
        return os.stat(p).st_mode & 0o170000 == 0o040000
    except (OSError, ValueError):
        return False


if sys.flags.no_site:
    # pybox starts Python with -S: the site module's .pth processing costs
    # more than the whole rest of start-up (it imports importlib.util and
    # whatever the .pth files name). Add the directories site would have
    # added, and the exit()/quit() builtins that scripts use.
    _v = "python%d.%d" % sys.version_info[:2]
    for _p in ("/usr/local/lib/%s/dist-packages" % _v, "/usr/lib/python3/dist-packages",
               "/usr/lib/%s/dist-packages" % _v, "%s/lib/%s/site-packages" % (sys.prefix, _v)):
        if _p not in sys.path and _isdir(_p):
            sys.path.append(_p)

    class _Quitter:
        def __init__(self, name):
            self.name = name

        def __repr__(self):
            return "Use %s() or Ctrl-D (i.e. EOF) to exit" % self.name

        def __call__(self, code=None):
            raise SystemExit(code)

    __builtins__ = sys.modules["builtins"]
    __builtins__.exit, __builtins__.quit = _Quitter("exit"), _Quitter("quit")


def _estr(s):
    # A str as a JSON string literal: _json's encoder, loaded on first use
    # (a shared library: ~0.5 ms of a cold start that returns no text). The
    # first call replaces this function in the runner's globals.
    global _estr
    try:
        from _json import encode_basestring_ascii as _estr
    except ImportError:
        from json.encoder import py_encode_basestring_ascii as _estr
    return _estr(s)


def _lazy(chunk, name):
    # chunk is source text, or its code object in marshal format when the
    # runner came precompiled.
    g = globals()
    if name not in g:
        if type(chunk) is bytes:
            import marshal
            chunk = marshal.loads(chunk)
        exec(chunk, g)
    return g[name]


def _open(spec, write):
    if spec.isdigit():
        fd = int(spec)
    elif write:
        fd = os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    else:
        fd = os.open(spec, os.O_RDONLY)
    # Move the channel to the first free fd >= 100, close-on-exec, so that
    # children do not inherit it and user code does not trip over 3 and 4
    # (in path mode too: gvisor and wasm).
    try:
        t = 100
        while True:
            try:
                os.fstat(t)
                t += 1
            except OSError:
                break
        os.dup2(fd, t, inheritable=False)
        if fd == 0:
            # gvisor sends the frames on stdin: the code gets /dev/null.
            n = os.open("/dev/null", os.O_RDONLY)
            os.dup2(n, 0)
            os.close(n)
        else:
            os.close(fd)
        return t
    except (AttributeError, OSError, NotImplementedError):
        return fd  # WASI and friends (no dup2): keep it as it is


def _read(fd, n):
    chunks = []
    while n:
        c = os.read(fd, min(n, 1 << 20))
        if not c:
            return None
        chunks.append(c)
        n -= len(c)
    return b"".join(chunks)


class _Ctx:
    # Context for the C scanner of _json: decodes frames without importing
    # json (which imports re).
    strict = True
    object_hook = object_pairs_hook = None
    parse_float = parse_constant = float
    parse_int = int
    memo = {}


# How the supervisor's encoder (Go's encoding/json) writes an exec frame
# with code only: _loads decodes that shape itself, and loads _json for any
# other frame. (Lower case: a top-level _UPPER string is a lazy part, see
# CompileScript in runner.go.)
_exec_head = '{"type":"exec","code":"'
_JSON_ESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _jstr(s):
    # The text between the quotes of a JSON string, decoded as _json's
    # scanner (strict) decodes it; None when s is not exactly that (an
    # unescaped quote, a control character, a bad escape): the caller then
    # falls back to _json.
    if not s:
        return s
    if min(s) < " ":
        return None
    if "\\" not in s:
        return None if '"' in s else s
    out = []
    i = 0
    while True:
        j = s.find("\\", i)
        part = s[i:] if j < 0 else s[i:j]
        if '"' in part:
            return None
        out.append(part)
        if j < 0:
            return "".join(out)
        c = s[j + 1:j + 2]
        if c != "u":
            c = _JSON_ESC.get(c)
            if c is None:
                return None
            out.append(c)
            i = j + 2
            continue
        h = s[j + 2:j + 6]
        if len(h) != 4 or not _HEX.issuperset(h):
            return None
        u = int(h, 16)
        i = j + 6
        if 0xD800 <= u <= 0xDBFF and s[i:i + 2] == "\\u":
            h = s[i + 2:i + 6]
            if len(h) == 4 and _HEX.issuperset(h):
                lo = int(h, 16)
                if 0xDC00 <= lo <= 0xDFFF:
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                    i += 6
        out.append(chr(u))


def _loads(b):
    s = b.decode("utf-8")
    if s.startswith(_exec_head) and s.endswith('"}'):
        code = _jstr(s[len(_exec_head):-2])
        if code is not None:
            return {"type": "exec", "code": code}
    try:
        from _json import make_scanner
        v, end = make_scanner(_Ctx())(s, len(s) - len(s.lstrip(" \t\r\n")))
        if not s[end:].strip(" \t\r\n"):
            return v
    except Exception:
        pass
    import json
    return json.loads(s)


def _settle_pools():
    # pymalloc keeps, per size class, a list of pools with free blocks, and
    # takes blocks from the first. When that pool has only a few free
    # blocks, objects made and dropped in a loop fill it and free it again
    # on every turn, moving the pool off and back onto the list each time:
    # `for i in range(n)` and sum(range(n)) ran 15-40% slower than under
    # `python -c`, depending on what the runner happened to allocate
    # before. Small ints and floats (the 32-byte class) are what such loops
    # make. Five fresh ints show whether the first pool has room for them
    # all (one 16 KiB pool, pymalloc's size on 64-bit builds); if not, the
    # first two are kept, so that their pool stays full, and the next pool
    # is tried. Nothing else of that class is allocated meanwhile (the
    # list is made up front; id()'s ints are freed at once, which leaves
    # the pools as they were). A few microseconds.
    pins = [None] * 64
    n = 0
    k = 1 << 20  # one digit: a + 1 allocates 28 bytes (bigger sums over-allocate)
    while n < 64:
        a = k + 1
        b = k + 2
        c = k + 3
        d = k + 4
        e = k + 5
        if id(a) >> 14 == id(e) >> 14:
            break
        pins[n] = a
        pins[n + 1] = b
        n += 2
        del a, b, c, d, e  # before the next five are made
    return pins


def _send(text):
    data = text.encode("utf-8", "surrogatepass")
    data = len(data).to_bytes(4, "big") + data
    while data:
        data = data[os.write(_out, data):]


def _flush():
    for f in (sys.stdout, sys.stderr, _stdout, _stderr):
        try:
            f.flush()
        except Exception:
            pass


def display(*objs):
    # Sends each object to the caller as a rich output (MIME bundle).
    _lazy(_DISPLAY, "_display")(*objs)


class _MplHook:
    # Meta path finder: when matplotlib.pyplot is first imported, swaps the
    # Agg backend for one whose show() sends figures as display frames.
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "matplotlib.pyplot" or name == "_pybox_mpl_backend":
            return _lazy(_DISPLAY, "_mpl_find_spec")(name)


class _Loader:
    # __loader__ of main.py: linecache asks it for the source lazily, so
    # tracebacks show source lines without importing linecache up front.
    source = ""

    def get_source(self, name):
        return self.source


_loader = _Loader()


def _exec(msg, ns):
    # Runs one exec message; returns (ok, return value JSON, error, exit code).
    if type(msg) is not dict or msg.get("type") != "exec" or type(msg.get("code")) is not str:
        return False, None, 'runner: bad frame: want {"type":"exec","code":string}\n', None
    src = msg["code"]
    g = msg.get("globals")
    if g is not None and type(g) is not dict:
        return False, None, "runner: globals must be a JSON object\n", None
    lc = sys.modules.get("linecache")
    if lc is not None:
        lc.cache.pop("main.py", None)
    _loader.source = src
    if g:
        ns.update(g)
    try:
        # The first compile() call builds the AST types anyway (~1 ms, as
        # `import _ast` would), so the AST round trip adds little here.
        import _ast
        tree = compile(src, "main.py", "exec", _ONLY_AST | _TOP_AWAIT, True)
        last = tree.body[-1] if tree.body else None
        expr = None
        if type(last) is _ast.Expr:
            tree.body.pop()
        body = compile(tree, "main.py", "exec", _TOP_AWAIT, True)
        if type(last) is _ast.Expr:
            expr = _ast.Expression(last.value)
            expr = compile(expr, "main.py", "eval", _TOP_AWAIT | body.co_flags & _FUTURE_MASK, True)
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as e:
        return False, None, _lazy(_ERR, "_format_only")(e), None
    del tree, last
    global _pins
    _pins = None  # the last execution's first: freeing them moves pools
    _pins = _settle_pools()
    try:
        if (body.co_flags | (expr.co_flags if expr else 0)) & _CO_COROUTINE:
            v = _lazy(_ASYNC, "_run_async")(body, expr, ns)
        else:
            exec(body, ns)
            v = eval(expr, ns) if expr else None
        t = type(v)
        if v is not None and getattr(t, "_repr_html_", None) is not None and t is not type:
            # A rich trailing value (a pandas DataFrame...) is also shown,
            # as a notebook cell shows it: text/html plus text/plain.
            _lazy(_DISPLAY, "_display")(v)
        if v is None:
            rv = None
        elif t is str and len(v) < 1 << 16:
            rv = _estr(v)
        elif t is int and -1 << 53 < v < 1 << 53 or t is float and v - v == 0:
            rv = repr(v)
        else:
            rv = _lazy(_JSON, "to_json")(v)
        return True, rv, None, None
    except SystemExit as e:
        code = _lazy(_ERR, "_exit_code")(e)
        return code == 0, None, None, code
    except BaseException as e:
        return False, None, _lazy(_ERR, "_format_tb")(e), None


def main():
    global _out
    if len(sys.argv) != 3:
        sys.stderr.write("usage: python -I -B -c <runner> IN OUT\n")
        return 2
    infd = _open(sys.argv[1], False)
    _out = _open(sys.argv[2], True)
    # gvisor (IN "0") and wasm run one exec frame per runner and end the
    # run at its "exit" frame (see _EXIT).
    gv = sys.argv[1] == "0" or sys.platform == "wasi"
    # Set up the compiler's AST types (~1.7 ms: the first compile() call
    # builds them) and load the runner's end before the first frame: work
    # every run does anyway, done while the frame may not be there yet.
    # gvisor and wasm start runners ahead of their frame (a pool, a
    # snapshot); a cold native run on cgroup v1 sends it only once the
    # interpreter is in its cgroup, which can take longer than the
    # interpreter's start-up (RATIONALE.md).
    compile("0", "main.py", "exec", _ONLY_AST | _TOP_AWAIT, True)
    _lazy(_EXIT, "_exit" if gv else "_end")
    # A fresh __main__ for the user's code, persisting across exec frames.
    m = type(sys)("__main__")
    m.__file__ = "main.py"
    m.__loader__ = _loader
    m.__builtins__ = sys.modules["builtins"]
    sys.modules["__main__"] = m
    sys.argv[:] = ["main.py"]
    try:
        sys.path.insert(0, os.getcwd())
    except OSError:
        pass
    m.__builtins__.display = display
    sys.meta_path.insert(0, _MplHook)
    for f in (sys.stdout, sys.stderr):
        try:
            if f.encoding.lower().replace("-", "") != "utf8":
                f.reconfigure(encoding="utf-8")
        except Exception:
            pass
    # What exists now is the runner's and the standard library's: keep the
    # collector, and _teardown's walk over live objects at the end, to what
    # the code makes (the fork server's template does the same).
    global _preloaded
    _preloaded = frozenset(sys.modules)
    import gc
    gc.freeze()
    ok = True
    while True:
        h = _read(infd, 4)
        b = h and _read(infd, int.from_bytes(h, "big"))
        if b is None:
            return 0 if ok else 1
        try:
            msg = _loads(b)
        except Exception:
            msg = None
        ok, rv, err, code = _exec(msg, m.__dict__)
        if "matplotlib.pyplot" in sys.modules:
            _lazy(_DISPLAY, "_figures")()
        _flush()
        mk = msg.get("marker") if isinstance(msg, dict) else None
        if isinstance(mk, str) and mk:
            # Tells a session's supervisor where this execution's output
            # ends (a pipe write this small is atomic).
            mk = mk.encode("utf-8", "replace")
            for fd in (1, 2):
                try:
                    os.write(fd, mk)
                except OSError:
                    pass
        p = '{"type":"result","ok":' + ("true" if ok else "false")
        if rv is not None:
            p += ',"return_value":' + rv
        if err:
            p += ',"error":' + _estr(err)
        if code is not None:
            p += ',"exit_code":%d' % code
        _send(p + "}")
        if gv:
            # One exec frame per runner (gvisor's stdin stays open).
            return _lazy(_EXIT, "_exit")(code if code is not None else 0 if ok else 1)
        if code is not None:
            return code


# ---- lazily compiled parts ----------------------------------------------------

# Return value -> strict JSON text.
_JSON = r'''
_MAX_RV = 4 << 20  # cap on an encoded return_value (chars)
_MAX_DEPTH = 100  # nesting depth of a converted return_value


class _TooBig(Exception):
    pass


def _ph(v, what="unrepresentable"):
    try:
        name = type(v).__name__
    except Exception:
        name = "object"
    return _estr("<%s %s>" % (what, name))


def _repr(v):
    try:
        return _estr(repr(v))
    except Exception:
        return _ph(v)


def _int(v):
    try:
        return int.__repr__(v)
    except ValueError:
        return _estr("<int with %d bits>" % v.bit_length())


def _float(v):
    if v != v or v in (float("inf"), float("-inf")):
        return "null"
    return float.__repr__(v)


def _key(k):
    if type(k) is str:
        return _estr(k)
    if k is None or k is True or k is False:
        return '"%s"' % {None: "null", True: "true", False: "false"}[k]
    if isinstance(k, str):
        return _estr(str.__str__(k))
    if isinstance(k, int):
        return '"%s"' % _int(k).strip('"')
    if isinstance(k, float):
        return '"%s"' % float.__repr__(k)
    try:
        return _estr(str(k))
    except Exception:
        return _ph(k)


def _conv(v, out, depth, stack, budget):
    t = type(v)
    if v is None:
        s = "null"
    elif v is True:
        s = "true"
    elif v is False:
        s = "false"
    elif t is str:
        s = _estr(v)
    elif t is int:
        s = _int(v)
    elif t is float:
        s = _float(v)
    else:
        s = None
    if s is not None:
        budget[0] -= len(s)
        if budget[0] < 0:
            raise _TooBig
        out.append(s)
        return
    if depth > _MAX_DEPTH:
        out.append(_estr("<nested too deep>"))
        return
    m = sys.modules
    np = m.get("numpy")
    if np is not None:
        if isinstance(v, np.ndarray):
            return _conv(v.tolist(), out, depth + 1, stack, budget)
        if isinstance(v, np.generic):
            return _conv(v.item(), out, depth + 1, stack, budget)
    if isinstance(v, (dict, list, tuple, set, frozenset)):
        if id(v) in stack:
            out.append(_estr("<recursive %s>" % t.__name__))
            return
        stack.add(id(v))
        try:
            if isinstance(v, dict):
                out.append("{")
                first = True
                for k, x in list(v.items()):
                    if not first:
                        out.append(",")
                    first = False
                    out.append(_key(k))
                    out.append(":")
                    _conv(x, out, depth + 1, stack, budget)
                out.append("}")
            else:
                if isinstance(v, (set, frozenset)):
                    try:
                        v = sorted(v)
                    except Exception:
                        v = list(v)
                out.append("[")
                first = True
                for x in v:
                    if not first:
                        out.append(",")
                    first = False
                    _conv(x, out, depth + 1, stack, budget)
                out.append("]")
        finally:
            stack.discard(id(v))
        return
    if isinstance(v, (bytes, bytearray, memoryview)):
        s = _estr(bytes(v).decode("utf-8", "replace"))
    elif isinstance(v, str):
        s = _estr(str.__str__(v))
    elif isinstance(v, int):
        s = _int(v)
    elif isinstance(v, float):
        s = _float(v)
    else:
        s = None
    if s is not None:
        budget[0] -= len(s)
        if budget[0] < 0:
            raise _TooBig
        out.append(s)
        return
    if hasattr(t, "__dataclass_fields__") and not isinstance(v, type):
        dc = m.get("dataclasses")
        try:
            d = dc.asdict(v)
        except Exception:
            d = {f.name: getattr(v, f.name, None) for f in dc.fields(v)}
        return _conv(d, out, depth + 1, stack, budget)
    pd = m.get("pydantic")
    if pd is not None and isinstance(v, getattr(pd, "BaseModel", ())):
        dump = getattr(v, "model_dump", None)
        if dump is not None:
            try:
                d = dump(mode="json")
            except TypeError:
                d = dump()
        else:
            d = v.dict()  # pydantic v1
        return _conv(d, out, depth + 1, stack, budget)
    s = _repr(v)
    budget[0] -= len(s)
    if budget[0] < 0:
        raise _TooBig
    out.append(s)


def to_json(v):
    # Returns v as strict JSON text; never raises.
    out = []
    try:
        _conv(v, out, 0, set(), [_MAX_RV])
    except _TooBig:
        return _ph(v, "return value too large:")
    except BaseException:
        try:
            return _ph(v, "unserializable")
        except BaseException:
            return '"<unserializable>"'
    return "".join(out)
'''

# Running code that uses top-level await.
_ASYNC = r'''
def _run_async(body, expr, ns):
    async def main():
        r = eval(body, ns)
        if body.co_flags & _CO_COROUTINE:
            await r
        if expr is not None:
            r = eval(expr, ns)
            return (await r) if expr.co_flags & _CO_COROUTINE else r

    import asyncio
    if sys.platform != "wasi":
        return asyncio.run(main())
    # WASI has no sockets, so asyncio's selector loop cannot make its
    # self-pipe. A loop whose "selector" only sleeps until the next timer
    # serves everything but I/O (sleeps, tasks, gather, queues...).
    import selectors, time

    class _Sel(selectors.BaseSelector):
        def register(self, fileobj, events, data=None):
            raise OSError("asyncio I/O is not available on WASI")

        def unregister(self, fileobj):
            raise KeyError(fileobj)

        def select(self, timeout=None):
            if timeout is None:
                raise RuntimeError("event loop would wait forever: asyncio I/O is not available on WASI")
            if timeout > 0:
                time.sleep(timeout)
            return []

        def close(self):
            pass

        def get_map(self):
            return {}

    class _Loop(asyncio.SelectorEventLoop):
        def _make_self_pipe(self):
            pass

        def _close_self_pipe(self):
            pass

        def _write_to_self(self):
            pass

    with asyncio.Runner(loop_factory=lambda: _Loop(_Sel())) as r:
        return r.run(main())
'''

# Error texts and SystemExit.
_ERR = r'''
def _exit_code(e):
    # Mirrors CPython's handling of SystemExit (Python/pythonrun.c).
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(str(code) + "\n")
    except BaseException:
        pass
    return 1


_MAX_ERR = 1 << 20  # cap on an error text (chars)


def _clip(s):
    if len(s) > _MAX_ERR:
        s = s[: _MAX_ERR // 2] + "\n... (%d characters cut) ...\n" % (len(s) - _MAX_ERR) + s[-_MAX_ERR // 2:]
    return s


def _format_tb(e):
    traceback = _tb_module(e)
    tb = e.__traceback__
    t = tb
    while t is not None and t.tb_frame.f_code.co_filename != "main.py":
        t = t.tb_next
    if t is not None:
        tb = t
    else:  # not raised from main.py: drop only this runner's frames
        while tb is not None and tb.tb_frame.f_globals is globals():
            tb = tb.tb_next
    try:
        return _clip("".join(traceback.format_exception(type(e), e, tb)))
    except BaseException:
        return "%s: %s\n" % (type(e).__name__, _safe_str(e))


def _format_only(e):
    traceback = _tb_module(e)
    try:
        return _clip("".join(traceback.format_exception_only(type(e), e)))
    except BaseException:
        return "%s: %s\n" % (type(e).__name__, _safe_str(e))


def _tb_module(e):
    # The traceback module, or, when importing it would be the run's
    # biggest cost, the same module run from its cached bytecode with light
    # stand-ins for what it imports. `import traceback` takes ~9 ms of a
    # cold start (collections, contextlib, linecache with tokenize and re,
    # textwrap), and the carets of a 3.11 traceback import ast (enum): a
    # run that raised took twice as long as one that did not. The module's
    # own code formats, so the text is the interpreter's; the stand-ins
    # cover what it uses for tracebacks (source lines: main.py's from the
    # runner, files' read as linecache reads them) and import the real
    # module for anything else. RATIONALE.md has more.
    global _tb_fast
    if "traceback" in sys.modules or "linecache" in sys.modules or sys.version_info[:2] != (3, 11):
        import traceback
        return traceback
    try:
        if _tb_fast is None:
            _tb_fast = _tb_load()
        if _tb_fast and _tb_fast_ok(e):
            return _tb_fast
    except Exception:
        pass
    import traceback
    return traceback


_tb_fast = None


def _tb_fast_ok(e):
    # Whether the main.py frames in the tracebacks of e and the exceptions
    # chained to it are all the code's (whose lines the runner has), with
    # no main.py file in the working directory (linecache would read that
    # one), and no exception group among them.
    try:
        os.stat("main.py")
        return False
    except OSError:
        pass
    seen, todo = set(), [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        if len(seen) > 100 or isinstance(x, BaseExceptionGroup):
            return False
        seen.add(id(x))
        t = x.__traceback__
        while t is not None:
            f = t.tb_frame
            n = f.f_code.co_filename
            if n == "main.py" and f.f_globals.get("__loader__") is not _loader:
                return False
            t = t.tb_next
        todo += [x.__cause__, x.__context__]
    return True


def _tb_load():
    # traceback's code from its cached bytecode (a timestamp-checked .pyc
    # matching its source), run with an __import__ that gives it the
    # stand-ins below; False when it cannot be loaded so.
    import marshal
    d = getattr(sys, "_stdlib_dir", None)
    if not d:
        return False
    src = d + "/traceback.py"
    try:
        with open(d + "/__pycache__/traceback." + sys.implementation.cache_tag + ".pyc", "rb") as f:
            data = f.read()
        st = os.stat(src)
    except OSError:
        return False
    magic = getattr(sys.modules.get("_frozen_importlib_external"), "MAGIC_NUMBER", None)
    if (magic is None or data[:4] != magic or data[4:8] != bytes(4)
            or int.from_bytes(data[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
            or int.from_bytes(data[12:16], "little") != st.st_size & 0xFFFFFFFF):
        return False
    code = marshal.loads(data[16:])
    stand = {n: _TbStandIn(n) for n in ("collections", "contextlib", "linecache", "textwrap", "ast")}
    stand["collections"].namedtuple = _namedtuple
    import _collections_abc  # frozen; what collections.abc is (os loaded it, the runner does not)
    stand["collections"].abc = _collections_abc
    stand["contextlib"].suppress = _Suppress
    stand["textwrap"].indent = _indent
    lc = stand["linecache"]
    lc.lazycache, lc.checkcache, lc.getline = _lc_lazycache, _lc_checkcache, _lc_getline
    a = stand["ast"]
    import _ast
    a.__dict__.update({k: v for k, v in _ast.__dict__.items() if not k.startswith("__")})
    a.parse = lambda source, filename="<unknown>", mode="exec": compile(source, filename, mode, _ONLY_AST, _feature_version=-1)
    real = __import__

    def imp(name, globals=None, locals=None, fromlist=(), level=0):
        m = stand.get(name.partition(".")[0])
        if m is None or level or (fromlist and "." in name):
            return real(name, globals, locals, fromlist, level)
        return m

    b = dict(sys.modules["builtins"].__dict__)
    b["__import__"] = imp
    m = type(sys)("traceback")
    m.__file__ = src
    m.__builtins__ = b
    exec(code, m.__dict__)
    return m


class _TbStandIn(type(sys)):
    # A module's stand-in: what is set on it, else the real module's (or
    # submodule: collections.abc).
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        m = __import__(self.__name__)
        try:
            return getattr(m, name)
        except AttributeError:
            __import__(self.__name__ + "." + name)
            return getattr(m, name)


def _indent(text, prefix, predicate=None):
    # textwrap.indent
    if predicate is None:
        def predicate(line):
            return line.strip()
    return "".join(prefix + line if predicate(line) else line for line in text.splitlines(True))


class _Suppress:
    # contextlib.suppress
    def __init__(self, *exceptions):
        self._exceptions = exceptions

    def __enter__(self):
        pass

    def __exit__(self, exctype, excinst, exctb):
        return exctype is not None and issubclass(exctype, self._exceptions)


def _namedtuple(typename, field_names, *, defaults=None, **kw):
    # collections.namedtuple, for the fields traceback's module-level
    # code declares (positional or keyword arguments, defaults).
    fields = tuple(field_names.replace(",", " ").split() if type(field_names) is str else field_names)
    defaults = tuple(defaults or ())

    def new(cls, *args, **kwargs):
        vals = list(args)
        for i in range(len(args), len(fields)):
            if fields[i] in kwargs:
                vals.append(kwargs.pop(fields[i]))
            elif i >= len(fields) - len(defaults):
                vals.append(defaults[i - len(fields) + len(defaults)])
            else:
                raise TypeError("missing argument %r" % fields[i])
        if kwargs or len(vals) != len(fields):
            raise TypeError("bad arguments for %s" % typename)
        return tuple.__new__(cls, vals)

    ns = {"__slots__": (), "__new__": new, "_fields": fields}
    for i, f in enumerate(fields):
        ns[f] = property(lambda self, i=i: self[i])
    return type(typename, (tuple,), ns)


# linecache's lazycache, checkcache and getline, as they behave while
# linecache is not loaded (its cache empty): main.py's lines are the
# runner's source (as linecache makes them from a module's __loader__);
# "<...>" names have none; a source file's are read as linecache reads them
# (tokenize.open: UTF-8 by default, universal newlines), unless it has a
# BOM or a coding cookie, or cannot be read: then linecache itself does it.


def _lc_lines(filename):
    if filename == "main.py":
        # Once per source, not per frame (a RecursionError has ~1000).
        c = _lc_cache.get("main.py")
        if c is None or c[0] is not _loader.source:
            c = _lc_cache["main.py"] = (_loader.source, [line + "\n" for line in _loader.source.splitlines()])
        return c[1]
    if type(filename) is not str or not filename or filename[:1] == "<" and filename[-1:] == ">":
        return []
    try:
        st = os.stat(filename)
        c = _lc_cache.get(filename)
        if c is not None and c[0] == (st.st_size, st.st_mtime):
            return c[1]
        with open(filename, "rb") as f:
            data = f.read()
        if data[:3] == b"\xef\xbb\xbf" or any(b"coding" in h for h in data.split(b"\n", 2)[:2]):
            return None
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except (OSError, ValueError):
        return None
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    lines = [p + "\n" for p in parts]
    _lc_cache[filename] = ((st.st_size, st.st_mtime), lines)
    return lines


_lc_cache = {}


def _lc_lazycache(filename, module_globals):
    if filename == "main.py":
        return True
    if _lc_lines(filename) is not None:
        return False
    return __import__("linecache").lazycache(filename, module_globals)


def _lc_checkcache(filename=None):
    if filename != "main.py" and (filename is None or _lc_lines(filename) is None):
        __import__("linecache").checkcache(filename)


def _lc_getline(filename, lineno, module_globals=None):
    lines = _lc_lines(filename)
    if lines is None:
        return __import__("linecache").getline(filename, lineno, module_globals)
    if 1 <= lineno <= len(lines):
        return lines[lineno - 1]
    return ""


def _safe_str(e):
    try:
        return str(e)
    except BaseException:
        return "<unprintable>"
'''

# The end of a gvisor (IN "0") or wasm runner, compiled while it waits for
# its frame, and of a fork-server child (the template compiles it once).
_EXIT = r'''
def _finish(code):
    # What Python's finalisation does before the process ends, in its
    # order (Py_FinalizeEx), for runs that end with os._exit (gvisor and
    # wasm, which end at the "exit" frame, and fork-server children, which
    # share the template's interpreter): join the non-daemon threads, run
    # the atexit handlers, flush sys.stdout and sys.stderr (exit status 120
    # if that fails), then the module teardown's part that the code can
    # see (_teardown), and flush again, C stdio included when C code may
    # have written there (_flush_c). Returns the exit status.
    t = sys.modules.get("threading")
    if t is not None:
        try:
            t._shutdown()
        except BaseException:
            pass
    import atexit
    atexit._run_exitfuncs()
    code = _flush_std(code)
    _teardown(sys.modules.get("__main__"))
    code = _flush_std(code)
    if "_ctypes" in sys.modules or _loaded_c():
        _flush_c()
    return code


def _loaded_c():
    # Whether the code loaded an extension module (C code), or it cannot
    # be told.
    if _preloaded is None:
        return True
    try:
        for n, m in list(sys.modules.items()):
            if n not in _preloaded:
                if type(m) is not type(sys):
                    return True
                f = m.__dict__.get("__file__")
                if type(f) is str and f.endswith(".so"):
                    return True
    except BaseException:
        return True
    return False


def _flush_c():
    # fflush(NULL): what C code wrote into C stdio buffers (printf from an
    # extension module or through ctypes) is written out, as exit() would.
    try:
        import _ctypes
        _ctypes.call_function(_ctypes.dlsym(_ctypes.dlopen(None, 2), "fflush"), (None,))
    except BaseException:
        pass  # no ctypes (WASI): nothing C-level to flush there


def _flush_std(code):
    for f in (sys.stdout, sys.stderr):
        try:
            closed = f.closed
        except BaseException:
            closed = False
        try:
            if f is not None and not closed:
                f.flush()
        except BaseException as e:
            code = 120
            if f is sys.stdout:
                _unraisable(e, f)
    _flush()
    return code


def _teardown(m):
    # The module teardown, for the code's own objects: the names of m (the
    # code's __main__) are set to None as CPython's _PyModule_ClearDict
    # does (those with one leading underscore first, __builtins__ kept),
    # which runs the __del__ methods of what they held and closes the files
    # the code left open, writing out what was still buffered; files still
    # open after that (in a reference cycle, held by another module) have
    # their buffers flushed; then reference cycles are collected. Without
    # this, os._exit loses such writes (f = open("out.txt", "w");
    # f.write(...) with no close).
    d = getattr(m, "__dict__", None)
    if type(d) is dict:
        for first in (True, False):
            for k in list(d):
                if type(k) is not str or d.get(k) is None or k == "__builtins__":
                    continue
                single = k[:1] == "_" and k[1:2] != "_"
                if single == first or not first:
                    try:
                        d[k] = None
                    except BaseException:
                        pass
    import gc
    import io
    # Only Python's own file classes (open() makes nothing else). The walk
    # covers what the code made: the runner's and the standard library's
    # objects are frozen out of the collector's lists (gc.freeze) first.
    text, binary = {io.TextIOWrapper}, {io.BufferedWriter, io.BufferedRandom, io.BufferedRWPair}
    try:
        objs = gc.get_objects()
        texts = [o for o in objs if type(o) in text]
        binaries = [o for o in objs if type(o) in binary]
        objs = None
    except BaseException:
        texts, binaries = [], []
    # Text layers first: their flush fills the buffers beneath.
    for f in texts + binaries:
        if f is sys.stdout or f is sys.stderr or f is _stdout or f is _stderr:
            continue
        try:
            if not f.closed and f.writable():
                f.flush()
        except BaseException:
            pass
    # Then the cycles, whose __del__ methods run now. (Flushing first: the
    # collector may close a file's raw layer before its buffer's
    # finaliser gets to write it out.)
    texts = binaries = f = None
    try:
        gc.collect()
    except BaseException:
        pass


def _exit(code):
    # The supervisor ends the run at the "exit" frame, without waiting
    # ~10 ms for the sandbox to shut down: _finish does what Python's
    # finalisation would have done first.
    code = _finish(code)
    try:
        _send('{"type":"exit","exit_code":%d}' % code)
    finally:
        os._exit(code)
    return code  # the code replaced os._exit: exit the usual way


def _end(code):
    # The end of a runner that reads frames until EOF (native, sessions):
    # _finish, then os._exit, skipping the rest of Python's finalisation
    # (freeing every object and module: ~1.5 ms of a 10 ms start, which the
    # supervisor waits for; 11 ms after a numpy cell, 50 ms after pandas).
    # When the code loaded an extension module, its C libraries may have
    # registered C atexit handlers or destructors (a library closing its
    # files): C's exit() runs them, and flushes C stdio, with the
    # interpreter still alive and the GIL held (ctypes.PyDLL), as they
    # would run after a finalisation. Without ctypes already loaded (numpy
    # and pandas load it), the usual exit.
    c = _loaded_c()
    code = _finish(code)
    if not c:
        os._exit(code)
    ct = sys.modules.get("ctypes")
    if ct is not None:
        try:
            ct.PyDLL(None).exit(code)
        except BaseException:
            pass
    return code  # the usual exit, or the code replaced os._exit


def _unraisable(e, obj):
    # Reports e through sys.unraisablehook as PyErr_WriteUnraisable(obj)
    # does, without this runner's frames.
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_globals is globals():
        tb = tb.tb_next
    hook, got = sys.unraisablehook, []

    class Probe:
        def __del__(self):
            raise RuntimeError

    try:
        # UnraisableHookArgs has no public constructor: have CPython make one.
        sys.unraisablehook = got.append
        Probe()
    finally:
        sys.unraisablehook = hook
    try:
        hook(type(got[0])((type(e), e, tb, None, obj)))
    except BaseException:
        pass
'''

# display() and matplotlib figures.
_DISPLAY = r'''
def _b64(b):
    import binascii
    return binascii.b2a_base64(bytes(b), newline=False).decode("ascii")


def _png(fig):
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return _b64(buf.getvalue())


def _bundle(obj):
    # The object's rich representation (if it has one), then text/plain,
    # as a notebook shows it.
    out = []
    fm = sys.modules.get("matplotlib.figure")
    try:
        if fm is not None and isinstance(obj, fm.Figure):
            return [("image/png", _png(obj))]
        for meth, mime in (("_repr_html_", "text/html"),
                           ("_repr_png_", "image/png"),
                           ("_repr_svg_", "image/svg+xml")):
            f = getattr(obj, meth, None)
            if f is not None and not isinstance(obj, type):
                d = f()
                if d is not None:
                    if isinstance(d, (bytes, bytearray)):
                        d = _b64(d)
                    out.append((mime, str(d)))
                    break
    except Exception:
        pass
    try:
        out.append(("text/plain", repr(obj)))
    except Exception:
        out.append(("text/plain", "<unrepresentable %s>" % type(obj).__name__))
    return out


def _send_display(mime, data):
    _flush()
    _send('{"type":"display","mime":%s,"data":%s}' % (_estr(mime), _estr(data)))


def _display(*objs):
    for obj in objs:
        for mime, data in _bundle(obj):
            _send_display(mime, data)


def _figures():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        nums = plt.get_fignums()
        for n in nums:
            _send_display("image/png", _png(plt.figure(n)))
        if nums:
            plt.close("all")
    except Exception as e:
        try:
            _stderr.write("pybox: could not render figures: %r\n" % (e,))
        except Exception:
            pass


_MPL_BACKEND = """
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas
FigureManager = FigureCanvas.manager_class


def show(*args, **kwargs):
    _show()
"""


def _mpl_find_spec(name):
    if name == "_pybox_mpl_backend":
        from importlib.machinery import ModuleSpec
        return ModuleSpec(name, _MplLoader)
    mpl = sys.modules.get("matplotlib")
    try:
        b = dict.__getitem__(mpl.rcParams, "backend")
        if b is mpl.rcsetup._auto_backend_sentinel or str(b).lower() == "agg":
            mpl.rcParams["backend"] = "module://_pybox_mpl_backend"
    except Exception:
        pass
    return None


class _MplLoader:
    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        module._show = _figures
        exec(_MPL_BACKEND, module.__dict__)
'''

if __name__ == "__main__":
    sys.exit(_lazy(_EXIT, "_end")(main()))
