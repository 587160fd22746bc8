# pybox runner: runs inside every sandbox as
#     python -I -B -c <this source> IN OUT
# IN/OUT are fd numbers (native) or file paths (wasm). Frames both ways are a
# 4-byte big-endian length then UTF-8 JSON. See docs/protocol.md.
# Startup cost matters: import nothing eagerly that `python -I` has not loaded.
import sys, os

_CO_COROUTINE = 0x80
_PyCF_ONLY_AST = 0x400
_PyCF_TOP_AWAIT = 0x2000
_FUTURE_MASK = 0x1FE0000  # CO_FUTURE_* flags, valid as compile() flags
_MAX_RV = 4 << 20  # cap on an encoded return_value (chars)
_MAX_ERR = 1 << 20  # cap on an error text (chars)
_MAX_DEPTH = 100  # nesting depth of a converted return_value
_TRIES = 10  # candidate statement starts tried before parsing an AST
USE_AST = False  # tests flip this to compare the fast split with the AST one

_out = -1
_stdout = sys.stdout
_stderr = sys.stderr

try:
    from _json import encode_basestring_ascii as _estr
except ImportError:  # pragma: no cover - builds without _json
    from json.encoder import py_encode_basestring_ascii as _estr


# ---- frames -----------------------------------------------------------------

def _open(spec, write):
    if spec.isdigit():
        fd = int(spec)
        # Move the channel out of the way (>= 100, close-on-exec) so children
        # do not inherit it and user code does not trip over fds 3 and 4.
        try:
            t = 100
            while True:
                try:
                    os.fstat(t)
                    t += 1
                except OSError:
                    break
            os.dup2(fd, t, inheritable=False)
            os.close(fd)
            fd = t
        except (AttributeError, OSError):
            pass  # WASI and friends: keep the fd as it is
        return fd
    if write:
        return os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.open(spec, os.O_RDONLY)


def _read(fd, n):
    chunks = []
    while n:
        b = os.read(fd, n if n < 1 << 20 else 1 << 20)
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _frames(fd):
    while True:
        h = _read(fd, 4)
        if h is None:
            return
        n = int.from_bytes(h, "big")
        b = _read(fd, n) if n else b""
        if b is None:
            return
        yield b


def _loads(b):
    s = b.decode("utf-8")
    try:
        from _json import make_scanner

        class _C:
            strict = True
            object_hook = object_pairs_hook = None
            parse_float = float
            parse_int = int
            parse_constant = float
            memo = {}

        i = len(s) - len(s.lstrip(" \t\r\n"))
        v, end = make_scanner(_C())(s, i)
        if s[end:].strip(" \t\r\n"):
            raise ValueError("trailing data")
        return v
    except Exception:
        import json
        return json.loads(s)


def _send(text):
    data = text.encode("utf-8", "surrogatepass")
    data = len(data).to_bytes(4, "big") + data
    while data:
        n = os.write(_out, data)
        data = data[n:]


def _flush():
    for f in (sys.stdout, sys.stderr, _stdout, _stderr):
        try:
            f.flush()
        except Exception:
            pass


# ---- JSON conversion of return values -----------------------------------------

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
    """Returns v as strict JSON text; never raises."""
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


# ---- display ----------------------------------------------------------------

def _b64(b):
    import binascii
    return binascii.b2a_base64(bytes(b), newline=False).decode("ascii")


def _png(fig):
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return _b64(buf.getvalue())


def _bundle(obj):
    fm = sys.modules.get("matplotlib.figure")
    try:
        if fm is not None and isinstance(obj, fm.Figure):
            return "image/png", _png(obj)
        for meth, mime in (("_repr_html_", "text/html"),
                           ("_repr_png_", "image/png"),
                           ("_repr_svg_", "image/svg+xml")):
            f = getattr(obj, meth, None)
            if f is not None and not isinstance(obj, type):
                d = f()
                if d is not None:
                    if isinstance(d, (bytes, bytearray)):
                        d = _b64(d)
                    return mime, str(d)
    except Exception:
        pass
    try:
        return "text/plain", repr(obj)
    except Exception:
        return "text/plain", "<unrepresentable %s>" % type(obj).__name__


def _send_display(mime, data):
    _flush()
    _send('{"type":"display","mime":%s,"data":%s}' % (_estr(mime), _estr(data)))


def display(*objs):
    """Sends each object to the caller as a rich output (MIME bundle)."""
    for obj in objs:
        _send_display(*_bundle(obj))


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


# ---- compiling --------------------------------------------------------------

def _quiet_compile(src, mode, flags):
    """compile() that records warnings instead of showing them."""
    import warnings
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        code = compile(src, "main.py", mode, flags, True)
    return code, ws


def _rewarn(ws):
    if ws:
        import warnings
        for w in ws:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _split_fast(src):
    """Finds the last top-level statement without an AST.

    A candidate start is a line at column 0. If the text before it compiles on
    its own, the tokenizer of the whole source was outside every string,
    bracket, continuation and block there, so the candidate starts the last
    top-level statement. Returns (body, expr or None, tail) or None when the
    AST path must decide.
    """
    lines = src.split("\n")
    tries = 0
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if not line or line[0] in " \t\f#":
            continue
        tries += 1
        if tries > _TRIES:
            return None
        tail = "\n" * i + "\n".join(lines[i:])
        try:
            last, tw = _quiet_compile(tail, "eval", _PyCF_TOP_AWAIT)
            is_expr = True
        except SyntaxError:
            try:
                last, tw = _quiet_compile(tail, "exec", _PyCF_TOP_AWAIT)
            except SyntaxError:
                continue
            is_expr = False
        try:
            body, hw = _quiet_compile("\n".join(lines[:i]), "exec", _PyCF_TOP_AWAIT)
        except SyntaxError:
            continue
        if "__future__" in tail or (not is_expr and ";" in line):
            return None
        if body.co_flags & _FUTURE_MASK:
            return None
        _rewarn(hw)
        _rewarn(tw)
        if is_expr:
            return body, last
        return _Seq(body, last), None
    if tries == 0:  # empty or comments only
        return compile(src, "main.py", "exec", _PyCF_TOP_AWAIT, True), None
    return None


class _Seq:
    """Two code objects run one after the other as one module body."""
    __slots__ = ("a", "b", "co_flags")

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.co_flags = (a.co_flags | b.co_flags) & _CO_COROUTINE


def _split_ast(src):
    import _ast
    f = _PyCF_TOP_AWAIT
    tree = compile(src, "main.py", "exec", f | _PyCF_ONLY_AST, True)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, _ast.Expr):
        tree.body.pop()
        body = compile(tree, "main.py", "exec", f, True)
        f |= body.co_flags & _FUTURE_MASK
        return body, compile(_ast.Expression(last.value), "main.py", "eval", f, True)
    return compile(tree, "main.py", "exec", f, True), None


def split(src):
    """Compiles src into (body, trailing expression or None)."""
    if "\r" in src:
        src = src.replace("\r\n", "\n").replace("\r", "\n")
    if not USE_AST:
        r = _split_fast(src)
        if r is not None:
            return r
    return _split_ast(src)


# ---- running ----------------------------------------------------------------

class _Loader:
    """__loader__ of main.py: lets linecache find the source lazily, so
    tracebacks show source lines without importing linecache up front."""

    def __init__(self):
        self.source = ""

    def get_source(self, name):
        return self.source


def _run(body, expr, ns):
    if (body.co_flags | (expr.co_flags if expr else 0)) & _CO_COROUTINE:
        import asyncio

        async def _main():
            for c in (body.a, body.b) if type(body) is _Seq else (body,):
                r = eval(c, ns)
                if c.co_flags & _CO_COROUTINE:
                    await r
            if expr is not None:
                r = eval(expr, ns)
                if expr.co_flags & _CO_COROUTINE:
                    r = await r
                return r

        return asyncio.run(_main())
    if type(body) is _Seq:
        exec(body.a, ns)
        exec(body.b, ns)
    else:
        exec(body, ns)
    if expr is not None:
        return eval(expr, ns)


def _clip(s):
    if len(s) > _MAX_ERR:
        s = s[: _MAX_ERR // 2] + "\n... (%d characters cut) ...\n" % (len(s) - _MAX_ERR) + s[-_MAX_ERR // 2:]
    return s


def _format_tb(e):
    import traceback
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
        return "".join(traceback.format_exception(type(e), e, tb))
    except BaseException:
        return "%s: %s\n" % (type(e).__name__, _safe_str(e))


def _format_only(e):
    import traceback
    try:
        return "".join(traceback.format_exception_only(type(e), e))
    except BaseException:
        return "%s: %s\n" % (type(e).__name__, _safe_str(e))


def _safe_str(e):
    try:
        return str(e)
    except BaseException:
        return "<unprintable>"


def _exit_code(e):
    """Mirrors CPython's handling of SystemExit (Python/pythonrun.c)."""
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


class Runner:
    def __init__(self):
        self.loader = _Loader()
        m = type(sys)("__main__")
        m.__file__ = "main.py"
        m.__loader__ = self.loader
        m.__builtins__ = sys.modules["builtins"]
        self.module = m
        self.ns = m.__dict__

    def setup(self):
        sys.modules["__main__"] = self.module
        sys.argv[:] = ["main.py"]
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = ""
        sys.path.insert(0, cwd)
        sys.modules["builtins"].display = display
        for f in (sys.stdout, sys.stderr):
            try:
                if f.encoding.lower().replace("-", "") != "utf8":
                    f.reconfigure(encoding="utf-8")
            except Exception:
                pass

    def exec(self, msg):
        """Runs one exec message; returns (result JSON text, ok, exit code or None)."""
        if not isinstance(msg, dict) or msg.get("type") != "exec" or not isinstance(msg.get("code"), str):
            return self.result(False, error="runner: bad frame: want {\"type\":\"exec\",\"code\":string}\n"), False, None
        src = msg["code"]
        g = msg.get("globals")
        if g is not None and not isinstance(g, dict):
            return self.result(False, error="runner: globals must be a JSON object\n"), False, None
        lc = sys.modules.get("linecache")
        if lc is not None:
            lc.cache.pop("main.py", None)
        self.loader.source = src
        if g:
            self.ns.update(g)
        ok, rv, err, code = True, None, None, None
        try:
            try:
                body, expr = split(src)
            except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as e:
                ok, err = False, _format_only(e)
            else:
                v = _run(body, expr, self.ns)
                if v is not None:
                    rv = to_json(v)
        except SystemExit as e:
            code = _exit_code(e)
            ok = code == 0
        except BaseException as e:
            ok, err = False, _format_tb(e)
        _figures()
        _flush()
        return self.result(ok, rv, err, code), ok, code

    def result(self, ok, rv=None, error=None, code=None):
        p = ['{"type":"result","ok":', "true" if ok else "false"]
        if rv is not None:
            p += [',"return_value":', rv]
        if error:
            p += [',"error":', _estr(_clip(error))]
        if code is not None:
            p += [',"exit_code":', str(code)]
        p.append("}")
        return "".join(p)


def main():
    global _out
    if len(sys.argv) != 3:
        sys.stderr.write("usage: python -I -B -c <runner> IN OUT\n")
        return 2
    infd = _open(sys.argv[1], False)
    _out = _open(sys.argv[2], True)
    r = Runner()
    r.setup()
    status = 0
    for b in _frames(infd):
        try:
            msg = _loads(b)
        except Exception:
            msg = None
        text, ok, code = r.exec(msg)
        _send(text)
        if code is not None:
            return code
        status = 0 if ok else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
