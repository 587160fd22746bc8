package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/cli"
)

func init() {
	commands["repl"] = command{summary: "interactive Python session in a sandbox", run: replCmd}
}

type replFlags struct {
	policyFlags
	idle     pybox.Duration
	lifetime pybox.Duration
}

func newReplFlagSet(f *replFlags) *flag.FlagSet {
	fs := cli.NewFlagSet("repl")
	f.policyFlags.register(fs, "wall-clock `LIMIT` of each cell: 30s, 1m, 2.5 (seconds)")
	durVar(fs, &f.idle, "idle-timeout", pybox.Duration(time.Hour), "end the session after `DURATION` without a cell")
	durVar(fs, &f.lifetime, "max-lifetime", pybox.Duration(24*time.Hour), "end the session `DURATION` after it started")
	return fs
}

func replUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: pybox repl [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "An interactive Python session in a sandbox: variables, imports and files last")
	fmt.Fprintln(w, "from one cell to the next. A statement runs once it is complete; a compound")
	fmt.Fprintln(w, "statement (ending in ':') runs after a blank line. The value of a trailing")
	fmt.Fprintln(w, "expression is printed as JSON. Ctrl-D exits. Ctrl-C stops a running cell,")
	fmt.Fprintln(w, "which ends the session: a new, empty one is started.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "When stdin is not a terminal the input is run statement by statement the same")
	fmt.Fprintln(w, "way, without prompts. Exit status: 0, 1 if a cell raised, or pybox run's code")
	fmt.Fprintln(w, "for the limit that ended the session (124 timeout, 137 memory/output).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	cli.PrintUsage(w, fs)
}

func replCmd(args []string) int {
	var f replFlags
	fs := newReplFlagSet(&f)
	pos, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		replUsage(os.Stdout, fs)
		return 0
	}
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if len(pos) > 0 {
		return fail(exitUsage, "repl takes no arguments (got %q); use pybox run for a file", pos[0])
	}
	req, err := f.request(fs)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	req.IdleTimeout, req.MaxLifetime = f.idle, f.lifetime
	d := req.WithDefaults()
	if err := d.Validate(); err != nil {
		return fail(exitUsage, "%v", err)
	}
	r := &repl{req: req, tty: isTerminal(os.Stdin), out: os.Stdout, errw: os.Stderr}
	return r.run(os.Stdin)
}

// isTerminal reports whether f looks like a terminal (a character device).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type repl struct {
	req  pybox.Request
	tty  bool
	out  io.Writer
	errw io.Writer

	sb     *pybox.Sandbox
	ss     *pybox.Session
	failed bool
}

func (r *repl) start() error {
	ss, _, err := r.sb.NewSession(context.Background(), r.req)
	if err != nil {
		return err
	}
	r.ss = ss
	return nil
}

func (r *repl) run(in io.Reader) int {
	r.sb = pybox.New(pybox.Options{})
	defer r.sb.Close(context.Background())
	if err := r.start(); err != nil {
		return fail(exitSandbox, "starting the session: %v", err)
	}
	defer func() { r.ss.Close() }()
	if r.tty {
		backend := r.ss.Request().Backend
		fmt.Fprintf(r.errw, "pybox repl: Python in a %s sandbox. Ctrl-D exits; Ctrl-C stops a running cell (and ends the session).\n", backend)
	}

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt)
	defer signal.Stop(sigc)

	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(in)
		for {
			s, err := br.ReadString('\n')
			if s != "" || err == nil {
				lines <- strings.TrimRight(s, "\r\n")
			}
			if err != nil {
				return
			}
		}
	}()

	var buf cellBuffer
	for {
		r.prompt(buf.pending())
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-sigc:
			// Ctrl-C at the prompt drops the statement being typed.
			fmt.Fprintln(r.errw, "\nKeyboardInterrupt")
			buf = cellBuffer{}
			continue
		}
		if !ok {
			if r.tty {
				fmt.Fprintln(r.errw)
			}
			if cell := buf.flush(); cell != "" {
				if code, done := r.exec(cell, sigc); done {
					return code
				}
			}
			if r.failed && !r.tty {
				return 1
			}
			return 0
		}
		for _, cell := range buf.feed(line) {
			if code, done := r.exec(cell, sigc); done {
				return code
			}
		}
	}
}

func (r *repl) prompt(continuation bool) {
	if !r.tty {
		return
	}
	if continuation {
		fmt.Fprint(r.errw, "... ")
	} else {
		fmt.Fprint(r.errw, ">>> ")
	}
}

// exec runs one cell and shows its outcome. done is true when the repl
// must exit with code.
func (r *repl) exec(cell string, sigc <-chan os.Signal) (code int, done bool) {
	ctx, cancel := context.WithCancel(context.Background())
	interrupted := make(chan bool, 1)
	stop := make(chan struct{})
	go func() {
		select {
		case <-sigc:
			interrupted <- true
			cancel()
		case <-stop:
			interrupted <- false
		}
	}()
	res, err := r.ss.RunWith(ctx, pybox.Exec{Code: cell}, pybox.RunOptions{
		Stdout: func(b []byte) { r.out.Write(b) },
		Stderr: func(b []byte) { r.errw.Write(b) },
	})
	close(stop)
	intr := <-interrupted
	cancel()

	switch {
	case intr:
		fmt.Fprintln(r.errw, "\nKeyboardInterrupt")
	case res.Status == pybox.StatusSuccess:
		r.show(res)
	case res.Status == pybox.StatusRunError:
		r.failed = true
		if res.Error != "" && !strings.HasSuffix(strings.TrimRight(res.Stderr, "\n"), strings.TrimRight(res.Error, "\n")) {
			fmt.Fprintln(r.errw, strings.TrimRight(res.Error, "\n"))
		}
	default:
		r.failed = true
		if err != nil && res.Error == "" {
			res.Error = err.Error()
		}
		fmt.Fprintln(r.errw, "pybox: "+reason(res))
	}
	if r.ss.Err() == nil {
		return 0, false
	}
	// The session is over: a limit, Ctrl-C, exit() or the idle timeout.
	why := r.ss.Err()
	r.ss.Close()
	if !r.tty {
		if intr {
			return 130, true
		}
		fmt.Fprintf(r.errw, "pybox: the session ended (%v)\n", why)
		if res.Status == pybox.StatusSuccess || res.Status == pybox.StatusRunError {
			return clampExit(res.ExitCode, 0), true
		}
		return exitCode(res), true
	}
	fmt.Fprintf(r.errw, "pybox: the session ended (%v); starting a new one: earlier variables and files are gone\n", why)
	if err := r.start(); err != nil {
		return fail(exitSandbox, "starting a new session: %v", err), true
	}
	return 0, false
}

// show prints a successful cell's return value and display outputs.
func (r *repl) show(res *pybox.Result) {
	for _, o := range res.Outputs {
		if o.MIME == "text/plain" {
			fmt.Fprintln(r.out, strings.TrimRight(o.Data, "\n"))
			continue
		}
		fmt.Fprintf(r.errw, "[%s output, %d bytes: not shown in a terminal]\n", o.MIME, len(o.Data))
	}
	if rv := strings.TrimSpace(string(res.ReturnValue)); rv != "" && rv != "null" {
		fmt.Fprintln(r.out, rv)
	}
}

// cellBuffer accumulates input lines into cells, Python-REPL style: a
// simple statement runs as soon as it is complete (no open bracket, string
// or backslash continuation); a compound statement (a first line ending in
// ':' or a decorator) runs at the next blank line, or when a new statement
// starts at column 0.
type cellBuffer struct {
	lines    []string
	compound bool
}

func (c *cellBuffer) pending() bool { return len(c.lines) > 0 }

// feed adds a line and returns the cells it completed.
func (c *cellBuffer) feed(line string) []string {
	if len(c.lines) == 0 {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		return c.add(line)
	}
	open, _ := scanPython(strings.Join(c.lines, "\n"))
	if !open && c.compound {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			return []string{c.take()}
		}
		afterDecorator := strings.HasPrefix(strings.TrimSpace(c.lines[len(c.lines)-1]), "@")
		if line[0] != ' ' && line[0] != '\t' && !isClauseContinuation(trimmed) && !afterDecorator {
			cell := c.take()
			return append([]string{cell}, c.feed(line)...)
		}
	}
	return c.add(line)
}

func (c *cellBuffer) add(line string) []string {
	c.lines = append(c.lines, line)
	open, last := scanPython(strings.Join(c.lines, "\n"))
	if open {
		return nil
	}
	if !c.compound && (last == ':' || strings.HasPrefix(strings.TrimSpace(c.lines[0]), "@")) {
		c.compound = true
	}
	if c.compound {
		return nil
	}
	return []string{c.take()}
}

func (c *cellBuffer) take() string {
	s := strings.Join(c.lines, "\n")
	*c = cellBuffer{}
	return s
}

// flush returns what is left at the end of the input.
func (c *cellBuffer) flush() string {
	if len(c.lines) == 0 {
		return ""
	}
	return c.take()
}

// isClauseContinuation reports whether a column-0 line continues the
// compound statement before it (else, elif, except, finally).
func isClauseContinuation(s string) bool {
	for _, kw := range []string{"else", "elif", "except", "finally"} {
		if rest, ok := strings.CutPrefix(s, kw); ok && (rest == "" || strings.ContainsAny(rest[:1], " :(*\t")) {
			return true
		}
	}
	return false
}

// scanPython reports whether src is unfinished (an open bracket or
// triple-quoted string, or a trailing backslash) and the last significant
// character outside strings and comments at bracket depth 0.
func scanPython(src string) (open bool, last rune) {
	depth := 0
	var quote byte // 0, ' or "
	triple := false
	escaped := false
	for i := 0; i < len(src); i++ {
		ch := src[i]
		if quote != 0 {
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '\n' && !triple:
				quote = 0 // unterminated: a syntax error Python will report
			case ch == quote && (!triple || strings.HasPrefix(src[i:], strings.Repeat(string(quote), 3))):
				if triple {
					i += 2
				}
				quote = 0
				if depth == 0 {
					last = rune(ch)
				}
			}
			continue
		}
		switch ch {
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i--
		case '\'', '"':
			quote = ch
			triple = strings.HasPrefix(src[i:], strings.Repeat(string(ch), 3))
			if triple {
				i += 2
			}
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
			if depth == 0 {
				last = rune(ch)
			}
		case ' ', '\t', '\r', '\n':
		default:
			if depth == 0 {
				last = rune(ch)
			}
		}
	}
	trimmed := strings.TrimRight(src, " \t")
	backslash := quote == 0 && strings.HasSuffix(trimmed, "\\")
	return depth > 0 || (quote != 0 && triple) || backslash, last
}
