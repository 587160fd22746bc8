package main

import (
	"strings"
	"testing"
)

func TestCellBuffer(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"simple statements", "x = 1\nprint(x)\n", []string{"x = 1", "print(x)"}},
		{"blank lines skipped", "\n  \nx = 1\n\n", []string{"x = 1"}},
		{"open bracket", "d = {\n  'a': 1,\n}\nd", []string{"d = {\n  'a': 1,\n}", "d"}},
		{"triple string", "s = '''a\n\nb'''\ns", []string{"s = '''a\n\nb'''", "s"}},
		{"backslash", "x = 1 + \\\n  2\nx", []string{"x = 1 + \\\n  2", "x"}},
		{"compound ends at blank", "for i in range(2):\n    print(i)\n\nx", []string{"for i in range(2):\n    print(i)", "x"}},
		{"compound ends at dedent", "if True:\n    a = 1\nb = 2\n", []string{"if True:\n    a = 1", "b = 2"}},
		{"else continues", "if x:\n  a = 1\nelse:\n  a = 2\n\n", []string{"if x:\n  a = 1\nelse:\n  a = 2"}},
		{"try except finally", "try:\n  1/0\nexcept ZeroDivisionError:\n  pass\nfinally:\n  print(1)\n", []string{"try:\n  1/0\nexcept ZeroDivisionError:\n  pass\nfinally:\n  print(1)"}},
		{"decorator", "@dec\ndef f():\n  return 1\n\nf()", []string{"@dec\ndef f():\n  return 1", "f()"}},
		{"colon in brackets", "d = {'a': 1}\nx = l[1:]\n", []string{"d = {'a': 1}", "x = l[1:]"}},
		{"colon in comment and string", "x = 1  # note:\ny = 'a:'\n", []string{"x = 1  # note:", "y = 'a:'"}},
		{"one-line compound", "for i in range(2): print(i)\n", []string{"for i in range(2): print(i)"}},
		{"annotation", "x: int = 1\n", []string{"x: int = 1"}},
		{"hash in string", "s = '#('\ns\n", []string{"s = '#('", "s"}},
		{"escaped quote", "s = 'it\\'s ('\ns\n", []string{"s = 'it\\'s ('", "s"}},
		{"unfinished at eof", "def f():\n  return 1", []string{"def f():\n  return 1"}},
		{"class with blank inside bracket", "x = [\n\n1]\n", []string{"x = [\n\n1]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c cellBuffer
			var got []string
			for _, line := range strings.Split(strings.TrimSuffix(tc.input, "\n"), "\n") {
				got = append(got, c.feed(line)...)
			}
			if rest := c.flush(); rest != "" {
				got = append(got, rest)
			}
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
				t.Errorf("cells %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReplPiped drives pybox repl with piped stdin: one cell per complete
// statement, state kept, values printed as JSON, tracebacks shown.
func TestReplPiped(t *testing.T) {
	in := "import math\nx = 41\nfor i in range(2):\n    print('loop', i)\n\nx + 1\n" +
		"def f(n):\n    return {'n': n, 'pi': round(math.pi, 2)}\nf(1)\n" +
		"print('out'); 1/0\n'still here', x\n"
	o := runBin(t, in, "repl", "--timeout", "10s")
	if strings.Contains(o.stderr, "starting the session") {
		t.Skipf("no working backend: %s", o.stderr)
	}
	want := "loop 0\nloop 1\n42\n{\"n\":1,\"pi\":3.14}\nout\n[\"still here\",41]\n"
	if o.stdout != want {
		t.Errorf("stdout %q, want %q (stderr %q)", o.stdout, want, o.stderr)
	}
	if !strings.Contains(o.stderr, "ZeroDivisionError: division by zero") || strings.Contains(o.stderr, ">>>") {
		t.Errorf("stderr %q", o.stderr)
	}
	if o.code != 1 {
		t.Errorf("exit %d, want 1 (a cell raised)", o.code)
	}
}

func TestReplLimitEnds(t *testing.T) {
	o := runBin(t, "x = 1\nwhile True: pass\nprint('never')\n", "repl", "--timeout", "1s")
	if strings.Contains(o.stderr, "starting the session") {
		t.Skipf("no working backend: %s", o.stderr)
	}
	if o.code != exitTimeout || o.stdout != "" || !strings.Contains(o.stderr, "session ended") {
		t.Errorf("exit %d stdout %q stderr %q", o.code, o.stdout, o.stderr)
	}
}

func TestReplUsage(t *testing.T) {
	o := runBin(t, "", "repl", "extra")
	oneLine(t, o, "no arguments")
	o = runBin(t, "", "repl", "--idle-timeout", "48h")
	oneLine(t, o, "idle")
	o = runBin(t, "", "repl", "--help")
	if o.code != 0 || !strings.Contains(o.stdout, "--memory") || !strings.Contains(o.stdout, "Ctrl-C") {
		t.Errorf("help: %d %q", o.code, o.stdout)
	}
}
