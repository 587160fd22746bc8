package runner

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainNamespace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "helper.py"), []byte("VALUE = 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code := `import os, sys, helper
print(__name__, __file__, sys.argv, sys.path[0] == os.getcwd(), helper.VALUE)
print(sys.modules["__main__"].__dict__ is globals())
class C: pass
import pickle
print(type(pickle.loads(pickle.dumps(C()))).__name__)
`
	r := runFD(t, dir, NewExec(code, nil))
	res := r.result(t)
	if !res.OK {
		t.Fatalf("not ok: %s", res.Error)
	}
	want := "__main__ main.py ['main.py'] True 7\nTrue\nC\n"
	if r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	if r.exitCode != 0 || r.stderr != "" {
		t.Errorf("exit %d, stderr %q", r.exitCode, r.stderr)
	}
}

// TestStartImportsNoOS: the runner loads nothing of os (which `python -I
// -S` does not load and which costs ~1 ms of every cold start) for code
// that does not ask for it; code that imports os gets the real module.
func TestStartImportsNoOS(t *testing.T) {
	t.Parallel()
	r := runCode(t, `import sys
print(sorted(m for m in ("os", "posixpath", "stat", "_collections_abc", "json", "re") if m in sys.modules))
import os
print(os.path.join("a", "b"), os.environ.get("LANG"))`)
	if want := "[]\na/b C.UTF-8\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q (stderr %q)", r.stdout, want, r.stderr)
	}
}

// TestLoadsWithoutJSON: the runner decodes an exec frame with code only,
// as the supervisor's encoder writes it, without _json (_jstr), to exactly
// what _json decodes; any other frame (more keys, or not what the encoder
// writes) goes to _json, as before.
func TestLoadsWithoutJSON(t *testing.T) {
	t.Parallel()
	needPython(t)
	codes := []string{"", "print(1)", `"`, `\`, `\"`, `"\`, "a\nb", "\\n", "/", "</script>&", "\x00\x01\x1f\x7f",
		"\t\r\n\b\f", "\u2028\u2029", "é日本😀", "\xff\xfe", `\u0041`, `","marker":"m`, "x = '''\n\\'''\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab\"\\/\n\t\r\x00\x1f\x7f<>&u0\u2028é日😀")
	for range 300 {
		r := make([]rune, rng.IntN(40))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		codes = append(codes, string(r))
	}
	var goFrames, other []string
	for _, c := range codes {
		b, err := json.Marshal(NewExec(c, nil))
		if err != nil {
			t.Fatal(err)
		}
		goFrames = append(goFrames, base64.StdEncoding.EncodeToString(b))
	}
	for _, f := range []string{
		`{"type":"exec","code":"a\"}`, `{"type":"exec","code":"\ud83d\ude00"}`, `{"type":"exec","code":"\ud83d"}`,
		`{"type":"exec","code":"\ud83d\u0041"}`, `{"type":"exec","code":"\ud83d\uzzzz"}`, `{"type":"exec","code":"\u+123"}`,
		`{"type":"exec","code":"\u 123"}`, `{"type":"exec","code":"\u1_23"}`, `{"type":"exec","code":"a","marker":"m"}`,
		"{\"type\":\"exec\",\"code\":\"tab\there\"}", `{"type":"exec","code":"\x"}`, `{"type":"exec","code":"\/\u00e9"}`,
		`{"type":"exec","code":"a" }`, `{"type":"exec","code":"q\"}"}`, `{"type":"exec","code":"\\"}`,
	} {
		other = append(other, base64.StdEncoding.EncodeToString([]byte(f)))
	}
	in, err := json.Marshal(map[string][]string{"go": goFrames, "other": other})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "runner.py")
	frames := filepath.Join(dir, "frames.json")
	if err := os.WriteFile(src, []byte(Source), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(frames, in, 0o644); err != nil {
		t.Fatal(err)
	}
	const driver = `import sys, base64
R = {"__name__": "pybox_runner"}
exec(compile(open(sys.argv[1]).read(), "<string>", "exec"), R)
loaded = "_json" in sys.modules
import json
frames = json.load(open(sys.argv[2]))
head = R["_exec_head"]
def both(f):
    try:
        want = json.loads(f.decode())
    except Exception:
        want = "error"
    try:
        got = R["_loads"](f)
    except Exception:
        got = "error"
    return want, got
bad = []
for kind in ("go", "other"):
    for f in frames[kind]:
        f = base64.b64decode(f)
        want, got = both(f)
        if want != got:
            bad.append([kind, f.decode("utf-8", "replace"), repr(want), repr(got)])
        s = f.decode()
        if kind == "go" and R["_jstr"](s[len(head):-2]) is None:
            bad.append(["not decoded without _json", s])
print(json.dumps({"loaded_at_start": loaded, "bad": bad}))
`
	out, err := exec.Command(python, "-I", "-S", "-c", driver, src, frames).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var res struct {
		Loaded bool       `json:"loaded_at_start"`
		Bad    [][]string `json:"bad"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Loaded {
		t.Errorf("the runner loaded _json at start")
	}
	for _, b := range res.Bad {
		t.Errorf("%q", b)
	}
}

// TestErrorsStayLight: in a runner started as pybox starts it (nothing
// imported but what python -I -S loads), formatting an error does not
// import traceback or linecache (see _tb_module): the next execution
// finds neither. (It once did, when os stopped bringing in a module the
// light path takes from sys.modules.)
func TestErrorsStayLight(t *testing.T) {
	t.Parallel()
	r := runFD(t, "", NewExec("x = 1\nx / 0", nil),
		NewExec("import sys\nprint('traceback' in sys.modules, 'linecache' in sys.modules)", nil))
	res := r.results()
	if len(res) != 2 || res[0].OK || !strings.Contains(res[0].Error, "ZeroDivisionError") {
		t.Fatalf("results = %+v", res)
	}
	if r.stdout != "False False\n" {
		t.Errorf("after an error, traceback and linecache loaded: stdout %q", r.stdout)
	}
}

func TestLinecacheSourceLines(t *testing.T) {
	t.Parallel()
	// Tracebacks printed by the user's own code show main.py source lines.
	code := `import traceback
def boom():
    raise ValueError("x")  # marker
try:
    boom()
except ValueError:
    traceback.print_exc(file=__import__("sys").stdout)
`
	r := runCode(t, code)
	if !strings.Contains(r.stdout, `raise ValueError("x")  # marker`) {
		t.Errorf("user traceback lacks the source line:\n%s", r.stdout)
	}
}

func TestTrailingExpression(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		code string
		want string // JSON; "" = no return_value
	}{
		{"print", "print(1)", ""},
		{"sum", "1 + 1", "2"},
		{"after assignment", "x = 21\nx * 2", "42"},
		{"none", "None", ""},
		{"assignment last", "x = 5", ""},
		{"empty", "", ""},
		{"comments only", "# just a comment\n", ""},
		{"trailing comment", "x = 3\nx\n# done\n\n", "3"},
		{"semicolons", "x = 1; x + 1", "2"},
		{"multi-line call", "def f(*a):\n    return sum(a)\nf(\n1,\n2)", "3"},
		{"string in brackets", "[\n'a',\n'b'\n]", `["a","b"]`},
		{"if block", "if True:\n    5", ""},
		{"def last", "def f():\n    return 1", ""},
		{"for loop", "for i in range(3):\n    i", ""},
		{"docstring only", `"""doc"""`, `"doc"`},
		{"triple-quoted tail", "x = 1\n\"\"\"\nx\n\"\"\"", `"\nx\n"`},
		{"assignment of triple-quoted", "s = \"\"\"\n1\n\"\"\"", ""},
		{"backslash", "x = 1 + \\\n2\nx", "3"},
		{"crlf", "x = 4\r\nx\r\n", "4"},
		{"decorator", "def d(f):\n    return f\n@d\ndef g():\n    return 1\ng()", "1"},
		{"top-level await", "import asyncio\nawait asyncio.sleep(0)\n42", "42"},
		{"await in expression", "import asyncio\nasync def f():\n    return 9\nawait f()", "9"},
		{"await then statement", "import asyncio\nawait asyncio.sleep(0)\nx = 1", ""},
		{"await in first part only", "import asyncio\nawait asyncio.sleep(0)\nx = 2\nx", "2"},
		{"future import", "from __future__ import annotations\nx: int = 3\nx", "3"},
		{"walrus", "(y := 6)", "6"},
		{"lambda", "f = lambda: 1\nf()", "1"},
		{"async with task", "import asyncio\nasync def f():\n    return 5\nt = asyncio.ensure_future(f())\nawait t", "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runCode(t, tt.code).result(t)
			if !res.OK {
				t.Fatalf("not ok: %s", res.Error)
			}
			if tt.want == "" {
				if res.ReturnValue != nil {
					t.Errorf("return_value = %s, want none", res.ReturnValue)
				}
				return
			}
			if res.ReturnValue == nil || !jsonEq(t, res.ReturnValue, tt.want) {
				t.Errorf("return_value = %s, want %s", res.ReturnValue, tt.want)
			}
		})
	}
}

func TestReturnValueConversion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		code string
		want string // JSON
	}{
		{"tuple", "(1, 'a', None, True)", `[1,"a",null,true]`},
		{"set", "{3, 1, 2}", `[1,2,3]`},
		{"mixed set", "{1, 'a'}", ""},
		{"dict keys", "{1: 'a', None: 'b', True: 'c', 2.5: 'd', (1, 2): 'e'}", `{"1":"c","null":"b","2.5":"d","(1, 2)":"e"}`},
		{"nan inf", "[float('nan'), float('inf'), -float('inf'), 1.5]", `[null,null,null,1.5]`},
		{"bytes", `b"caf\xc3\xa9 \xff"`, `"café ` + "\ufffd" + `"`},
		{"bytearray", `bytearray(b"ab")`, `"ab"`},
		{"unicode", `"héllo \u2603 \U0001F600"`, `"héllo ☃ 😀"`},
		{"lone surrogate", `"\ud800"`, ""},
		{"dataclass", "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: list\nP(1, [2])", `{"x":1,"y":[2]}`},
		{"nested dataclass", "from dataclasses import dataclass, field\n@dataclass\nclass A:\n    v: int\n@dataclass\nclass B:\n    a: A\nB(A(3))", `{"a":{"v":3}}`},
		{"recursive list", "a = [1]\na.append(a)\na", `[1,"<recursive list>"]`},
		{"recursive dict", "d = {}\nd['d'] = d\nd", `{"d":"<recursive dict>"}`},
		{"shared not recursive", "x = [1]\n[x, x]", `[[1],[1]]`},
		{"repr raises", "class Bad:\n    def __repr__(self):\n        raise RuntimeError\nBad()", `"<unrepresentable Bad>"`},
		{"repr raises nested", "class Bad:\n    def __repr__(self):\n        raise RuntimeError\n[Bad()]", `["<unrepresentable Bad>"]`},
		{"huge int", "import sys\nsys.set_int_max_str_digits(4300)\n10 ** 5000", `"<int with 16610 bits>"`},
		{"big int", "2 ** 100", "1267650600228229401496703205376"},
		{"deep nesting", "x = []\nfor _ in range(500):\n    x = [x]\nx", ""},
		{"object repr", "class O:\n    def __repr__(self):\n        return 'O!'\nO()", `"O!"`},
		{"complex", "1+2j", `"(1+2j)"`},
		{"int subclass", "import enum\nclass E(enum.IntEnum):\n    A = 4\nE.A", "4"},
		{"str subclass", "class S(str): pass\nS('s')", `"s"`},
		{"range", "range(3)", `"range(0, 3)"`},
		{"fake pydantic v2", "import sys, types\nm = types.ModuleType('pydantic')\nclass BaseModel:\n    def model_dump(self, mode='python'):\n        return {'mode': mode}\nm.BaseModel = BaseModel\nsys.modules['pydantic'] = m\nclass M(BaseModel): pass\nM()", `{"mode":"json"}`},
		{"fake pydantic v1", "import sys, types\nm = types.ModuleType('pydantic')\nclass BaseModel:\n    def dict(self):\n        return {'v': 1}\nm.BaseModel = BaseModel\nsys.modules['pydantic'] = m\nclass M(BaseModel): pass\nM()", `{"v":1}`},
		{"too large", "'x' * (5 << 20)", `"<return value too large: str>"`},
		{"class", "int", `"<class 'int'>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runCode(t, tt.code).result(t)
			if !res.OK {
				t.Fatalf("not ok: %s", res.Error)
			}
			if res.ReturnValue == nil {
				t.Fatal("no return_value")
			}
			if tt.want != "" && !jsonEq(t, res.ReturnValue, tt.want) {
				t.Errorf("return_value = %.200s, want %s", res.ReturnValue, tt.want)
			}
		})
	}
}

func TestNumpy(t *testing.T) {
	t.Parallel()
	needPython(t)
	if !pyHas("numpy") {
		t.Skip("numpy is not importable by /usr/bin/python3 (apt-get install python3-numpy)")
	}
	tests := []struct{ code, want string }{
		{"import numpy as np\nnp.arange(6).reshape(2, 3)", `[[0,1,2],[3,4,5]]`},
		{"import numpy as np\nnp.float32(1.5)", `1.5`},
		{"import numpy as np\nnp.int64(7)", `7`},
		{"import numpy as np\nnp.bool_(True)", `true`},
		{"import numpy as np\nnp.array([np.nan, 1.0])", `[null,1.0]`},
		{"import numpy as np\n{'a': np.zeros(2)}", `{"a":[0.0,0.0]}`},
		{"import numpy as np\nnp.array(3)", `3`},
	}
	// One session, so numpy is imported once.
	var execs []Exec
	for _, tt := range tests {
		execs = append(execs, NewExec(tt.code, nil))
	}
	res := runFD(t, "", execs...).results()
	if len(res) != len(tests) {
		t.Fatalf("got %d results, want %d", len(res), len(tests))
	}
	for i, tt := range tests {
		if !res[i].OK {
			t.Errorf("%q: not ok: %s", tt.code, res[i].Error)
			continue
		}
		if !jsonEq(t, res[i].ReturnValue, tt.want) {
			t.Errorf("%q: return_value = %s, want %s", tt.code, res[i].ReturnValue, tt.want)
		}
	}
}

func TestGlobals(t *testing.T) {
	t.Parallel()
	r := runFD(t, "", NewExec("print(a, b['c'])\na + len(b)", json.RawMessage(`{"a": 40, "b": {"c": [1, "x"]}}`)))
	res := r.result(t)
	if !res.OK || !jsonEq(t, res.ReturnValue, "41") {
		t.Fatalf("got %+v", res)
	}
	if r.stdout != "40 [1, 'x']\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestGlobalsNotObject(t *testing.T) {
	t.Parallel()
	res := runFD(t, "", NewExec("1", json.RawMessage(`[1]`))).result(t)
	if res.OK || !strings.Contains(res.Error, "globals must be a JSON object") {
		t.Errorf("got %+v", res)
	}
}

func TestTraceback(t *testing.T) {
	t.Parallel()
	code := "import json\nx = 1\njson.loads('{')\n"
	r := runCode(t, code)
	res := r.result(t)
	if res.OK {
		t.Fatal("ok for a failing run")
	}
	mustPrefix(t, res.Error, "Traceback (most recent call last):\n  File \"main.py\", line 3, in <module>\n    json.loads('{')\n")
	if !strings.Contains(res.Error, "json/decoder.py") {
		t.Errorf("frames of called modules are missing:\n%s", res.Error)
	}
	if !strings.HasSuffix(res.Error, "json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)\n") {
		t.Errorf("bad last line:\n%s", res.Error)
	}
	if strings.Contains(res.Error, "<string>") {
		t.Errorf("runner frames leak:\n%s", res.Error)
	}
	if r.stderr != "" {
		t.Errorf("runner printed to stderr: %q", r.stderr)
	}
	if r.exitCode != 1 {
		t.Errorf("exit code %d, want 1", r.exitCode)
	}
}

func TestTracebackShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, code, prefix, contains string
	}{
		{"in trailing expression", "x = 0\n1 / x", "Traceback (most recent call last):\n  File \"main.py\", line 2, in <module>\n    1 / x\n", "ZeroDivisionError: division by zero"},
		{"in function", "def f():\n    return {}['k']\nf()", "Traceback (most recent call last):\n  File \"main.py\", line 3, in <module>\n    f()\n  File \"main.py\", line 2, in f\n", "KeyError: 'k'"},
		{"under await", "import asyncio\nasync def f():\n    raise ValueError('v')\nawait f()", "Traceback (most recent call last):\n  File \"main.py\", line 4, in <module>\n", "ValueError: v"},
		{"chained", "try:\n    1/0\nexcept Exception as e:\n    raise KeyError('k') from e", "Traceback (most recent call last):\n  File \"main.py\", line 2, in <module>\n", "The above exception was the direct cause"},
		{"keyboard interrupt", "raise KeyboardInterrupt", "Traceback (most recent call last):\n  File \"main.py\", line 1, in <module>\n", "KeyboardInterrupt"},
		{"recursion", "def f():\n    f()\nf()", "Traceback (most recent call last):\n  File \"main.py\", line 3, in <module>\n", "RecursionError"},
		{"syntax error", "x = (\n", "  File \"main.py\", line 1\n    x = (\n        ^\nSyntaxError: '(' was never closed", ""},
		{"syntax error later", "x = 1\ny = 2\nfor\n", "  File \"main.py\", line 3\n", "SyntaxError: invalid syntax"},
		{"syntax error after expression", "x = 1\ny = )\nx", "  File \"main.py\", line 2\n", "SyntaxError: unmatched ')'"},
		{"indentation error", "  x = 1", "  File \"main.py\", line 1\n", "IndentationError: unexpected indent"},
		{"null byte", "x = 1\x00", "", "null"},
		{"future not first", "x = 1\nfrom __future__ import annotations", "  File \"main.py\", line 2\n", "SyntaxError: from __future__ imports must occur at the beginning of the file"},
		{"error in imported module", "import os\nos.listdir('/nonexistent-dir')", "Traceback (most recent call last):\n  File \"main.py\", line 2, in <module>\n", "FileNotFoundError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCode(t, tt.code)
			res := r.result(t)
			if res.OK {
				t.Fatal("ok for a failing run")
			}
			mustPrefix(t, res.Error, tt.prefix)
			if !strings.Contains(res.Error, tt.contains) {
				t.Errorf("error lacks %q:\n%s", tt.contains, res.Error)
			}
			if strings.Contains(res.Error, "<string>") || strings.Contains(res.Error, "asyncio/runners.py") {
				t.Errorf("runner frames leak:\n%s", res.Error)
			}
			if r.stderr != "" {
				t.Errorf("stderr = %q", r.stderr)
			}
			if res.ExitCode != nil {
				t.Errorf("exit_code set: %d", *res.ExitCode)
			}
		})
	}
}

func TestSystemExit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		code     string
		ok       bool
		exit     int
		stderr   string
		stdoutOK string
	}{
		{"code 3", "import sys\nprint('before')\nsys.exit(3)\nprint('after')", false, 3, "", "before\n"},
		{"code 0", "import sys\nsys.exit(0)", true, 0, "", ""},
		{"no code", "import sys\nsys.exit()", true, 0, "", ""},
		{"message", "import sys\nsys.exit('bye now')", false, 1, "bye now\n", ""},
		{"raise SystemExit", "raise SystemExit(5)", false, 5, "", ""},
		{"negative", "import sys\nsys.exit(-1)", false, 255, "", ""},
		{"under await", "import asyncio, sys\nawait asyncio.sleep(0)\nsys.exit(4)", false, 4, "", ""},
		{"in trailing expression", "import sys\nsys.exit(6)", false, 6, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A second exec must not run: the runner exits after the first.
			r := runFD(t, "", NewExec(tt.code, nil), NewExec("print('second')", nil))
			res := r.result(t)
			if res.OK != tt.ok || res.ExitCode == nil || *res.ExitCode != tt.exit {
				t.Fatalf("got ok=%v exit_code=%v error=%q, want ok=%v exit_code=%d", res.OK, res.ExitCode, res.Error, tt.ok, tt.exit)
			}
			if r.exitCode != tt.exit {
				t.Errorf("process exit code %d, want %d", r.exitCode, tt.exit)
			}
			if r.stderr != tt.stderr {
				t.Errorf("stderr = %q, want %q", r.stderr, tt.stderr)
			}
			if r.stdout != tt.stdoutOK {
				t.Errorf("stdout = %q, want %q", r.stdout, tt.stdoutOK)
			}
			if res.Error != "" {
				t.Errorf("error set for SystemExit: %q", res.Error)
			}
		})
	}
}

func TestFlushBeforeResult(t *testing.T) {
	t.Parallel()
	// os._exit skips every flush: output of the first exec survives only if
	// the runner flushed it before sending the first result.
	r := runFD(t, "",
		NewExec("import sys\nprint('out', end='')\nsys.stderr.write('err')", nil),
		NewExec("import os\nos._exit(0)", nil))
	if len(r.results()) != 1 {
		t.Fatalf("frames: %+v", r.msgs)
	}
	if r.stdout != "out" || r.stderr != "err" {
		t.Errorf("stdout %q stderr %q, want %q %q", r.stdout, r.stderr, "out", "err")
	}
}

func TestSessionPersists(t *testing.T) {
	t.Parallel()
	r := runFD(t, "",
		NewExec("import math\nx = 5", nil),
		NewExec("1/0", nil),
		NewExec("del __loader__, __builtins__\nx + math.floor(1.5)", nil),
		NewExec("y = x", json.RawMessage(`{"x": 1}`)),
		NewExec("y", nil))
	res := r.results()
	if len(res) != 5 {
		t.Fatalf("got %d results", len(res))
	}
	if !res[0].OK || res[1].OK || !res[2].OK || !jsonEq(t, res[2].ReturnValue, "6") || !jsonEq(t, res[4].ReturnValue, "1") {
		t.Errorf("results %+v", res)
	}
	mustPrefix(t, res[1].Error, "Traceback (most recent call last):\n  File \"main.py\", line 1, in <module>\n    1/0\n")
	if r.exitCode != 0 {
		t.Errorf("exit code %d, want 0 (last exec succeeded)", r.exitCode)
	}
}

func TestBadFrames(t *testing.T) {
	t.Parallel()
	r := runFD(t, "", Exec{Type: "nonsense", Code: "print(1)"}, NewExec("2", nil))
	res := r.results()
	if len(res) != 2 {
		t.Fatalf("got %d results", len(res))
	}
	if res[0].OK || !strings.Contains(res[0].Error, "bad frame") || r.stdout != "" {
		t.Errorf("bad frame answered %+v, stdout %q", res[0], r.stdout)
	}
	if !res[1].OK || !jsonEq(t, res[1].ReturnValue, "2") {
		t.Errorf("after a bad frame: %+v", res[1])
	}
}

func TestHiddenFDs(t *testing.T) {
	t.Parallel()
	code := `import os, stat, subprocess
def closed(fd):
    try:
        os.fstat(fd)
        return False
    except OSError:
        return True
print(closed(3), closed(4))
pipes = [f for f in range(100, 110) if not closed(f) and stat.S_ISFIFO(os.fstat(f).st_mode)]
print(len(pipes), [os.get_inheritable(f) for f in pipes])
child = subprocess.run(['ls', '/proc/self/fd'], capture_output=True, text=True, close_fds=False).stdout.split()
print([int(f) for f in child if 100 <= int(f) < 110])
`
	r := runCode(t, code)
	res := r.result(t)
	if !res.OK {
		t.Fatal(res.Error)
	}
	if want := "True True\n2 [False, False]\n[]\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}

func TestPathMode(t *testing.T) {
	t.Parallel()
	r := runPaths(t, NewExec("print('hi')\nx = 2", nil), NewExec("x * 21", nil), NewExec("import sys\nsys.exit(2)", nil))
	res := r.results()
	if len(res) != 3 || !jsonEq(t, res[1].ReturnValue, "42") || res[2].ExitCode == nil || *res[2].ExitCode != 2 {
		t.Fatalf("results %+v", res)
	}
	if r.stdout != "hi\n" || r.exitCode != 2 {
		t.Errorf("stdout %q exit %d", r.stdout, r.exitCode)
	}
}

// TestPathModeHiddenFDs: in path mode (gvisor, wasm) the channel files are
// moved to fds >= 100, close-on-exec, as in fd mode.
func TestPathModeHiddenFDs(t *testing.T) {
	t.Parallel()
	code := `import os, stat, subprocess
def closed(fd):
    try:
        os.fstat(fd)
        return False
    except OSError:
        return True
print(closed(3), closed(4))
chan = [f for f in range(100, 110) if not closed(f) and stat.S_ISREG(os.fstat(f).st_mode)]
print(len(chan), [os.get_inheritable(f) for f in chan])
child = subprocess.run(['ls', '/proc/self/fd'], capture_output=True, text=True, close_fds=False).stdout.split()
print([int(f) for f in child if 100 <= int(f) < 110])
`
	r := runPaths(t, NewExec(code, nil))
	res := r.result(t)
	if !res.OK {
		t.Fatal(res.Error)
	}
	if want := "True True\n2 [False, False]\n[]\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}

func TestCompileWarningsShownOnce(t *testing.T) {
	t.Parallel()
	r := runCode(t, "x = 1\ny = x is 1\ny")
	res := r.result(t)
	if !res.OK || !jsonEq(t, res.ReturnValue, "true") {
		t.Fatalf("got %+v", res)
	}
	if n := strings.Count(r.stderr, "SyntaxWarning"); n != 1 {
		t.Errorf("SyntaxWarning shown %d times, want 1:\n%s", n, r.stderr)
	}
}

func TestDisplay(t *testing.T) {
	t.Parallel()
	code := `class H:
    def _repr_html_(self):
        return '<b>h</b>'
print('a')
display(1, H())
print('b')
`
	r := runCode(t, code)
	// display(1) is text/plain; H() is text/html then text/plain; result.
	if len(r.msgs) != 4 {
		t.Fatalf("frames %+v", r.msgs)
	}
	if m := r.msgs[0]; m.Type != TypeDisplay || m.MIME != "text/plain" || m.Data != "1" {
		t.Errorf("frame 0 = %+v", m)
	}
	if m := r.msgs[1]; m.Type != TypeDisplay || m.MIME != "text/html" || m.Data != "<b>h</b>" {
		t.Errorf("frame 1 = %+v", m)
	}
	if m := r.msgs[2]; m.Type != TypeDisplay || m.MIME != "text/plain" || !strings.Contains(m.Data, "H object") {
		t.Errorf("frame 2 = %+v", m)
	}
	if r.msgs[3].Type != TypeResult || !r.msgs[3].OK || r.stdout != "a\nb\n" {
		t.Errorf("result %+v stdout %q", r.msgs[3], r.stdout)
	}
}

func TestMatplotlibFigures(t *testing.T) {
	t.Parallel()
	needPython(t)
	if !pyHas("matplotlib") {
		t.Skip("matplotlib is not importable by /usr/bin/python3 (apt-get install python3-matplotlib)")
	}
	code := `import matplotlib.pyplot as plt
plt.plot([1, 2, 3])
plt.show()
fig = plt.figure()
display(fig)
plt.figure()
plt.get_fignums()
`
	r := runFD(t, "", NewExec(code, nil), NewExec("import matplotlib.pyplot as plt\nplt.get_fignums()", nil))
	var pngs int
	for _, m := range r.msgs {
		if m.Type != TypeDisplay {
			continue
		}
		if m.MIME != "image/png" {
			t.Errorf("display %s", m.MIME)
			continue
		}
		b, err := base64.StdEncoding.DecodeString(m.Data)
		if err != nil || !strings.HasPrefix(string(b), "\x89PNG\r\n\x1a\n") {
			t.Errorf("display data is not a base64 PNG (%v)", err)
		}
		pngs++
	}
	// plt.show() sends figure 1 and closes it, so the next two figures reuse
	// numbers 1 and 2; display(fig) sends the first of them; the end of the
	// exec sends the figures still open (1 and 2) and closes them.
	res := r.results()
	if len(res) != 2 || !res[0].OK || !res[1].OK {
		t.Fatalf("results %+v", res)
	}
	if !jsonEq(t, res[0].ReturnValue, "[1,2]") || !jsonEq(t, res[1].ReturnValue, "[]") {
		t.Errorf("figures left open: %s then %s", res[0].ReturnValue, res[1].ReturnValue)
	}
	if pngs != 4 {
		t.Errorf("got %d PNG frames, want 4", pngs)
	}
	if strings.Contains(r.stderr, "Warning") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestPandasHTML(t *testing.T) {
	t.Parallel()
	needPython(t)
	if !pyHas("pandas") {
		t.Skip("pandas is not importable by /usr/bin/python3 (apt-get install python3-pandas)")
	}
	// A DataFrame as the trailing expression is shown like display(df):
	// text/html plus text/plain, and is also the return value.
	r := runCode(t, "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})\ndf")
	if len(r.msgs) != 3 || r.msgs[0].MIME != "text/html" || !strings.Contains(r.msgs[0].Data, "<table") ||
		r.msgs[1].MIME != "text/plain" || !strings.Contains(r.msgs[1].Data, "a") {
		t.Fatalf("frames %+v", r.msgs)
	}
	res := r.result(t)
	if !res.OK || !strings.Contains(string(res.ReturnValue), "a") {
		t.Errorf("result %+v", res)
	}
}

// BenchmarkStartup compares one runner process running print(1) with plain
// `python3 -I -B -c 'print(1)'`, both started the same way.
func BenchmarkStartup(b *testing.B) {
	if _, err := os.Stat(python); err != nil {
		b.Skipf("%s not found", python)
	}
	dir := b.TempDir()
	in := filepath.Join(dir, "in")
	var frames strings.Builder
	if err := WriteFrame(&frames, NewExec("print(1)", nil)); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(in, []byte(frames.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
	}{
		{"plain", []string{python, "-I", "-B", "-c", "print(1)"}},
		{"runner", Args(python, in, filepath.Join(dir, "out"))},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(c.args[0], c.args[1:]...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil || string(out) != "1\n" {
					b.Fatalf("%v: %q", err, out)
				}
			}
		})
	}
}

// TestMarker: with a marker, the runner writes it to stdout and stderr after
// each execution's output and before its result frame (sessions cut output
// there).
func TestMarker(t *testing.T) {
	e1 := NewExec("print('a'); import sys; sys.stderr.write('b')", nil)
	e1.Marker = "\x00END1\x00"
	e2 := NewExec("print('c')", nil)
	e2.Marker = "\x00END2\x00"
	r := runFD(t, t.TempDir(), e1, e2)
	if got, want := r.stdout, "a\n\x00END1\x00c\n\x00END2\x00"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got, want := r.stderr, "b\x00END1\x00\x00END2\x00"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if n := len(r.results()); n != 2 {
		t.Errorf("%d results, want 2", n)
	}
}

// TestNoSite: under -S (as pybox starts it) the runner still finds the
// distribution's packages and provides exit() and quit().
func TestNoSite(t *testing.T) {
	r := runCode(t, "import sys\nprint(sys.flags.no_site, any(p.endswith('dist-packages') for p in sys.path))\nexit(4)")
	if got := r.stdout; got != "1 True\n" {
		t.Errorf("stdout = %q", got)
	}
	if m := r.result(t); m.ExitCode == nil || *m.ExitCode != 4 {
		t.Errorf("exit() did not raise SystemExit(4): %+v", m)
	}
}

// TestTracebackText: the runner formats errors without importing the
// traceback module when it can (see _tb_module in runner.py: traceback's
// own code, run with light stand-ins for what it imports). The text must be
// exactly what the traceback module gives, which is checked here for each
// snippet in two fresh interpreters, one with traceback imported first
// (the runner then uses it as is).
func TestTracebackText(t *testing.T) {
	t.Parallel()
	needPython(t)
	src := filepath.Join(t.TempDir(), "runner.py")
	if err := os.WriteFile(src, []byte(Source), 0o644); err != nil {
		t.Fatal(err)
	}
	const driver = `import sys, json
mode, src, code = sys.argv[1:]
if mode == "module":
    import traceback
R = {"__name__": "pybox_runner"}
exec(compile(open(src).read(), "<string>", "exec"), R)
m = type(sys)("__main__")
m.__file__, m.__loader__, m.__builtins__ = "main.py", R["_loader"], sys.modules["builtins"]
sys.modules["__main__"] = m
ok, rv, err, ec = R["_exec"]({"type": "exec", "code": code}, m.__dict__)
print(json.dumps({"error": err, "light": "traceback" not in sys.modules and "linecache" not in sys.modules}))
`
	snippets := []string{
		"x = 1\nx / 0",
		"def f(a):\n    return a['k']\nf({})",
		"x = (\n",
		"  x = 1",
		"import json\njson.loads('{')",
		"try:\n    1/0\nexcept Exception as e:\n    raise KeyError('k') from e",
		"try:\n    {}['a']\nexcept KeyError:\n    None.x",
		"def f():\n    f()\nf()",
		"l = [1]\nl[5]",
		"x = 'é' * 3; y = x + 1",
		"s = '日本' + 1",
		"x = [1,\n     2][5]",
		"a = {'k': [1, 2]}\n(a['k'][3]\n + 1)",
		"def f():\n\treturn 1 / 0\nf()",
		"raise ValueError()",
		"class E(Exception):\n    def __str__(self):\n        raise RuntimeError\nraise E()",
		"e = ValueError('v')\ne.add_note('a note')\nraise e",
		"raise ExceptionGroup('g', [ValueError(1)])",
		"import os\nos.listdir('/nonexistent')",
		"f = lambda: 1/0\nf()",
		"def g():\n    yield 1/0\nlist(g())",
		"assert 1 == 2, 'msg'",
		"int('x')",
		"exec('1/0')",
		"compile('x = (', 'other.py', 'exec')",
		"import sys\nsys.tracebacklimit = 1\ndef f():\n    1/0\nf()",
	}
	type out struct {
		Error string `json:"error"`
		Light bool   `json:"light"`
	}
	run := func(mode, code string) out {
		cmd := exec.Command(python, "-I", "-S", "-B", "-c", driver, mode, src, code)
		cmd.Dir = t.TempDir()
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %q: %v", mode, code, err)
		}
		var o out
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s %q: %v: %s", mode, code, err, b)
		}
		return o
	}
	light := 0
	for _, code := range snippets {
		got, want := run("light", code), run("module", code)
		if got.Error != want.Error {
			t.Errorf("%q:\n got %q\nwant %q", code, got.Error, want.Error)
		}
		if want.Error == "" {
			t.Errorf("%q: no error", code)
		}
		if got.Light {
			light++
		}
	}
	// Most go the light way (not the exception group).
	if light < len(snippets)-2 {
		t.Errorf("only %d of %d errors were formatted without importing traceback", light, len(snippets))
	}
}
