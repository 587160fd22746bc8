package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/cli"
)

func init() {
	commands["run"] = command{summary: "run Python code once in a fresh sandbox", run: runCmd}
}

// runFlags are the flags of pybox run: the policy flags it shares with
// pybox repl, plus its own.
type runFlags struct {
	policyFlags
	code    string
	jsonOut bool
	stream  bool
	globals string
	outDir  string
}

func newRunFlagSet(f *runFlags) *flag.FlagSet {
	fs := cli.NewFlagSet("run")
	fs.StringVar(&f.code, "c", "", "run `CODE` given on the command line")
	fs.BoolVar(&f.jsonOut, "json", false, "print one Result JSON object on stdout instead of the program's output")
	fs.BoolVar(&f.stream, "stream", false, "with --json: copy the program's output to stderr as it is written")
	f.policyFlags.register(fs, "wall-clock `LIMIT` of the whole run: 30s, 1m, 2.5 (seconds)")
	fs.StringVar(&f.outDir, "out", "", "write the files the program leaves in its work directory into `DIR`")
	fs.StringVar(&f.globals, "globals", "", "`JSON` object whose keys become global variables")
	return fs
}

func runUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: pybox run [flags] (FILE | -c CODE | -)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Runs Python code once in a fresh sandbox. FILE is read on the host; - reads")
	fmt.Fprintln(w, "the code from stdin. The program's output passes through as it is written;")
	fmt.Fprintln(w, "pybox exits with the program's exit code, 124 on timeout, 137 when a limit")
	fmt.Fprintln(w, "killed it, 125 when the sandbox failed and 2 for bad flags or input.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	cli.PrintUsage(w, fs)
}

func runCmd(args []string) int {
	var f runFlags
	fs := newRunFlagSet(&f)
	pos, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		runUsage(os.Stdout, fs)
		return 0
	}
	if err != nil {
		return inputError(wantsJSON(args), f.backend, err)
	}
	req, err := f.request(fs, pos)
	if err != nil {
		return inputError(f.jsonOut, f.backend, err)
	}
	return execute(&f, req)
}

// wantsJSON reports whether --json appears among args; it is used when the
// flags could not be parsed.
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true", "--json=1", "-json=1":
			return true
		}
	}
	return false
}

// inputError reports a usage error: one line on stderr and, with --json, one
// Result object with status input-error on stdout.
func inputError(jsonOut bool, backendName string, err error) int {
	if jsonOut {
		res := &pybox.Result{Status: pybox.StatusInputError, ExitCode: -1, Error: err.Error()}
		res.Isolation.Backend = backendName
		printJSON(res)
	}
	return fail(exitUsage, "%v", err)
}

// request builds the Request from the parsed flags and the positional
// arguments. It reads --file and the code from the host.
func (f *runFlags) request(fs *flag.FlagSet, pos []string) (pybox.Request, error) {
	req, err := f.policyFlags.request(fs)
	if err != nil {
		return req, err
	}
	req.CollectFiles = f.outDir != ""
	if cli.IsSet(fs, "out") && f.outDir == "" {
		return req, errors.New("--out must not be empty")
	}
	if cli.IsSet(fs, "globals") {
		g := strings.TrimSpace(f.globals)
		if !json.Valid([]byte(g)) || !strings.HasPrefix(g, "{") {
			return req, errors.New("--globals must be a JSON object, e.g. '{\"x\": 1}'")
		}
		req.Globals = json.RawMessage(g)
	}
	code, err := f.readCode(fs, pos)
	if err != nil {
		return req, err
	}
	req.Code = code
	return req, nil
}

func (f *runFlags) readCode(fs *flag.FlagSet, pos []string) (string, error) {
	hasC := cli.IsSet(fs, "c")
	switch {
	case len(pos) > 1:
		return "", fmt.Errorf("too many arguments %q: give one FILE, -c CODE or -", pos)
	case hasC && len(pos) == 1:
		return "", fmt.Errorf("give either -c CODE or a file, not both (got -c and %q)", pos[0])
	case hasC:
		return f.code, nil
	case len(pos) == 0:
		return "", errors.New("no code to run: give FILE, -c CODE or - to read stdin")
	case pos[0] == "-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return "", fmt.Errorf("read code from stdin: %v", err)
		}
		return string(b), nil
	}
	b, err := readRegular(pos[0])
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// readRegular reads a regular host file, with a clear error otherwise.
func readRegular(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, describe(err))
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, describe(err))
	}
	return b, nil
}

// describe drops the operation and path a *PathError repeats.
func describe(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readInputFile reads a --file NAME=@HOSTPATH argument. The name itself is
// checked by Request.Validate.
func readInputFile(spec string) (pybox.File, error) {
	name, src, ok := strings.Cut(spec, "=")
	if !ok || name == "" || !strings.HasPrefix(src, "@") || len(src) == 1 {
		return pybox.File{}, fmt.Errorf("--file %q: want NAME=@HOSTPATH", spec)
	}
	st, err := os.Stat(src[1:])
	if err == nil && st.IsDir() {
		return pybox.File{}, fmt.Errorf("--file %s: %s is a directory", name, src[1:])
	}
	b, err := readRegular(src[1:])
	if err != nil {
		return pybox.File{}, fmt.Errorf("--file %s: %v", name, err)
	}
	return pybox.File{Name: name, Data: b, Mode: uint32(st.Mode().Perm())}, nil
}

// parseMount parses HOST:GUEST[:ro|rw]. A relative host path is made
// absolute; the host path must exist.
func parseMount(s string) (pybox.Mount, error) {
	parts := strings.Split(s, ":")
	var m pybox.Mount
	switch {
	case len(parts) == 3 && parts[2] == "rw":
		m.RW = true
	case len(parts) == 3 && parts[2] == "ro":
	case len(parts) == 3:
		return m, fmt.Errorf("--mount %q: mode %q must be ro or rw", s, parts[2])
	case len(parts) != 2:
		return m, fmt.Errorf("--mount %q: want HOST:GUEST[:ro|rw]", s)
	}
	if parts[0] == "" || parts[1] == "" {
		return m, fmt.Errorf("--mount %q: want HOST:GUEST[:ro|rw]", s)
	}
	host, err := filepath.Abs(parts[0])
	if err != nil {
		return m, fmt.Errorf("--mount %q: %v", s, err)
	}
	if _, err := os.Stat(host); err != nil {
		return m, fmt.Errorf("--mount %q: host path %q: %v", s, host, describe(err))
	}
	m.Host, m.Guest = host, parts[1]
	return m, nil
}

// execute runs req and reports the result; it returns the exit code.
func execute(f *runFlags, req pybox.Request) int {
	// The first SIGINT or SIGTERM cancels the run (its status is then
	// "killed"); the handlers are then reset, so that a second one ends
	// pybox at once. They are installed from a goroutine: os/signal's
	// first Notify starts threads of its own, 0.1-0.4 ms that the run need
	// not wait for.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
		signal.Stop(sigs)
	}()

	var ro pybox.RunOptions
	switch {
	case !f.jsonOut:
		ro.Stdout = func(b []byte) { os.Stdout.Write(b) }
		ro.Stderr = func(b []byte) { os.Stderr.Write(b) }
	case f.stream:
		ro.Stdout = func(b []byte) { os.Stderr.Write(b) }
		ro.Stderr = ro.Stdout
	}
	sb := pybox.New(pybox.Options{})
	res, err := sb.RunWith(ctx, req, ro)
	sb.Close(context.Background())
	if res == nil { // RunWith promises a Result; stay safe anyway.
		res = &pybox.Result{Status: pybox.StatusSandboxError, ExitCode: -1}
	}
	if res.Error == "" && err != nil && res.Status != pybox.StatusSuccess && res.Status != pybox.StatusRunError {
		res.Error = err.Error()
	}

	code := exitCode(res)
	var outErr error
	if f.outDir != "" && len(res.Files) > 0 {
		outErr = writeFiles(f.outDir, res.Files)
		for i := range res.Files {
			res.Files[i].Data = nil
		}
	}
	if f.jsonOut {
		printJSON(res)
	}
	switch {
	case res.Status == pybox.StatusSuccess:
	case res.Status == pybox.StatusRunError:
		if !f.jsonOut && res.Error != "" && !strings.HasSuffix(strings.TrimRight(res.Stderr, "\n"), strings.TrimRight(res.Error, "\n")) {
			os.Stderr.WriteString(strings.TrimRight(res.Error, "\n") + "\n")
		}
	default:
		// With --json the reason is in the JSON too; stderr gets it for
		// humans either way.
		fail(code, "%s", reason(res))
	}
	if f.outDir != "" && res.FilesTruncated && !f.jsonOut {
		fmt.Fprintln(os.Stderr, "pybox: some files were left out: they exceed the files limit")
	}
	if outErr != nil {
		return fail(exitSandbox, "--out: %v", outErr)
	}
	return code
}

// reason is the one-line explanation printed for a non-success status.
func reason(res *pybox.Result) string {
	msg := strings.TrimSpace(res.Error)
	if msg == "" {
		return res.Status
	}
	if strings.HasPrefix(msg, "pybox: ") {
		msg = strings.TrimPrefix(msg, "pybox: ")
	}
	if res.Status == pybox.StatusInputError || res.Status == pybox.StatusSandboxError {
		return msg
	}
	return res.Status + ": " + msg
}

// exitCode maps a Result to the process exit code.
func exitCode(res *pybox.Result) int {
	switch res.Status {
	case pybox.StatusSuccess:
		return clampExit(res.ExitCode, 0)
	case pybox.StatusRunError:
		return clampExit(res.ExitCode, 1)
	case pybox.StatusTimeout:
		return exitTimeout
	case pybox.StatusMemoryLimit, pybox.StatusOutputLimit, pybox.StatusKilled:
		return exitKilled
	case pybox.StatusInputError:
		return exitUsage
	default:
		return exitSandbox
	}
}

// clampExit returns code when it is a valid non-zero process exit code and
// otherwise fallback (0 for success, 1 for a run-error without one).
func clampExit(code, fallback int) int {
	if code > 0 && code < 256 {
		return code
	}
	return fallback
}

func printJSON(res *pybox.Result) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		// Result is plain data; this cannot happen short of a bug.
		fmt.Fprintf(&buf, "{\"status\":%q,\"exit_code\":-1,\"error\":%q}\n", pybox.StatusSandboxError, "encode result: "+err.Error())
	}
	os.Stdout.Write(buf.Bytes())
}

// writeFiles writes collected files beneath dir, which it creates. os.Root
// refuses any name that would resolve outside dir, symlinks included.
func writeFiles(dir string, files []pybox.OutFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var errs []error
	for _, file := range files {
		if err := writeOne(root, file); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func writeOne(root *os.Root, file pybox.OutFile) error {
	name := filepath.FromSlash(file.Name)
	if !filepath.IsLocal(name) {
		return fmt.Errorf("refusing to write %q outside the output directory", file.Name)
	}
	if d := filepath.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("%s: %v", file.Name, describe(err))
		}
	}
	mode := os.FileMode(file.Mode).Perm()
	if mode == 0 {
		mode = 0o644
	}
	w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("%s: %v", file.Name, describe(err))
	}
	_, err = w.Write(file.Data)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %v", file.Name, describe(err))
	}
	return nil
}

// durationFlag is a --timeout style flag that remembers whether it was set.
type durationFlag struct {
	v   pybox.Duration
	set bool
	def string
}

func (d *durationFlag) String() string {
	if d == nil || !d.set {
		if d != nil {
			return d.def
		}
		return ""
	}
	return d.v.String()
}

func (d *durationFlag) Set(s string) error {
	v, err := pybox.ParseDuration(s)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "pybox: "))
	}
	d.v, d.set = v, true
	return nil
}

// sizeFlag is a --memory style flag that remembers whether it was set.
type sizeFlag struct {
	v   pybox.Size
	set bool
	def string
}

func (s *sizeFlag) String() string {
	if s == nil {
		return ""
	}
	if !s.set {
		return s.def
	}
	return s.v.String()
}

func (s *sizeFlag) Set(str string) error {
	v, err := pybox.ParseSize(str)
	if err != nil {
		return err
	}
	s.v, s.set = v, true
	return nil
}

// intFlag is an integer flag that remembers whether it was set.
type intFlag struct {
	v   int
	set bool
	def string
}

func (i *intFlag) String() string {
	if i == nil {
		return ""
	}
	if !i.set {
		return i.def
	}
	return strconv.Itoa(i.v)
}

func (i *intFlag) Set(s string) error {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	if v < 0 {
		return fmt.Errorf("%d is negative", v)
	}
	i.v, i.set = v, true
	return nil
}

// floatFlag is a number flag with a readable error.
type floatFlag struct{ v float64 }

func (f *floatFlag) String() string {
	if f == nil || f.v == 0 {
		return "0"
	}
	return strconv.FormatFloat(f.v, 'g', -1, 64)
}

func (f *floatFlag) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	f.v = v
	return nil
}
