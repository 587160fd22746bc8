package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pybox-dev/pybox"
)

// Case is one parsed corpus file.
type Case struct {
	// Name is the file name without ".py".
	Name string
	// Path is the file's path.
	Path string
	// Code is the whole file, header included: line numbers in
	// expectations count from the top of the file.
	Code string

	// Backends restricts the case to these backends; empty means all.
	Backends []string
	// Requires lists Python modules the case imports.
	Requires []string

	// Request fields.
	Globals      json.RawMessage
	Env          map[string]string
	Files        []pybox.File
	CollectFiles bool
	Timeout      pybox.Duration
	Memory       pybox.Size
	OutputLimit  pybox.Size
	Disk         pybox.Size
	Pids         int
	CPUs         float64

	// Expectations; nil pointers and empty slices are not checked.
	Status          string
	ExitCode        *int
	Signal          *string
	Stdout          *string
	StdoutContains  []string
	StdoutNot       []string
	StdoutBytes     *int
	StdoutMaxBytes  *int
	StdoutTruncated *bool
	Stderr          *string
	StderrContains  []string
	Return          *json.RawMessage // nil: not checked; "absent": must be empty
	ReturnAbsent    bool
	ErrorContains   []string
	ErrorFirstFrame string
	OutFiles        map[string]string
}

// DefaultTimeout is used for cases without a timeout directive, so that a
// hung backend fails the case instead of the whole test binary.
const DefaultTimeout = pybox.Duration(20 * time.Second)

var directive = regexp.MustCompile(`^#\s*([a-z][a-z0-9_-]*):\s?(.*)$`)

// Load parses every *.py file in dir, sorted by name.
func Load(dir string) ([]*Case, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.py"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no cases in %s", dir)
	}
	sort.Strings(paths)
	var cases []*Case
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		c, err := Parse(strings.TrimSuffix(filepath.Base(p), ".py"), string(src))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		c.Path = p
		cases = append(cases, c)
	}
	return cases, nil
}

// Parse parses one case from its source. The header is the run of lines
// starting with "#" at the top of the file; lines of the form
// "# key: value" are directives, other comment lines are free text.
func Parse(name, src string) (*Case, error) {
	c := &Case{Name: name, Code: src}
	var stdout, stderr []string
	for i, line := range strings.Split(src, "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		m := directive.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if err := c.set(m[1], strings.TrimRight(m[2], " \t\r"), &stdout, &stderr); err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", i+1, m[1], err)
		}
	}
	if c.Status == "" {
		return nil, fmt.Errorf("missing the required \"# status:\" directive")
	}
	if stdout != nil {
		if c.Stdout != nil {
			return nil, fmt.Errorf("stdout and stdout-json are exclusive")
		}
		s := strings.Join(stdout, "\n") + "\n"
		c.Stdout = &s
	}
	if stderr != nil {
		if c.Stderr != nil {
			return nil, fmt.Errorf("stderr and stderr-json are exclusive")
		}
		s := strings.Join(stderr, "\n") + "\n"
		c.Stderr = &s
	}
	return c, nil
}

var statuses = []string{
	pybox.StatusSuccess, pybox.StatusRunError, pybox.StatusTimeout, pybox.StatusMemoryLimit,
	pybox.StatusOutputLimit, pybox.StatusKilled, pybox.StatusInputError, pybox.StatusSandboxError,
}

func (c *Case) set(key, v string, stdout, stderr *[]string) error {
	var err error
	switch key {
	case "status":
		if !slices.Contains(statuses, v) {
			return fmt.Errorf("unknown status %q", v)
		}
		c.Status = v
	case "exit_code", "exit-code":
		n, e := strconv.Atoi(v)
		c.ExitCode, err = &n, e
	case "signal":
		c.Signal = &v
	case "stdout":
		*stdout = append(*stdout, v)
	case "stdout-json":
		c.Stdout, err = jsonString(v)
	case "stdout-contains":
		c.StdoutContains = append(c.StdoutContains, v)
	case "stdout-not-contains":
		c.StdoutNot = append(c.StdoutNot, v)
	case "stdout-bytes":
		n, e := strconv.Atoi(v)
		c.StdoutBytes, err = &n, e
	case "stdout-max-bytes":
		n, e := strconv.Atoi(v)
		c.StdoutMaxBytes, err = &n, e
	case "stdout-truncated":
		b, e := strconv.ParseBool(v)
		c.StdoutTruncated, err = &b, e
	case "stderr":
		*stderr = append(*stderr, v)
	case "stderr-json":
		c.Stderr, err = jsonString(v)
	case "stderr-contains":
		c.StderrContains = append(c.StderrContains, v)
	case "return":
		if v == "absent" {
			c.ReturnAbsent = true
			return nil
		}
		if !json.Valid([]byte(v)) {
			return fmt.Errorf("not JSON (use \"absent\" for no return value): %s", v)
		}
		raw := json.RawMessage(v)
		c.Return = &raw
	case "error-contains":
		c.ErrorContains = append(c.ErrorContains, v)
	case "error-first-frame":
		c.ErrorFirstFrame = v
	case "out-file":
		name, data, e := nameAndString(v)
		if e != nil {
			return e
		}
		if c.OutFiles == nil {
			c.OutFiles = map[string]string{}
		}
		c.OutFiles[name] = data
	case "backends":
		c.Backends = splitList(v)
	case "requires":
		c.Requires = splitList(v)
	case "globals":
		var m map[string]any
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return fmt.Errorf("want a JSON object: %w", err)
		}
		c.Globals = json.RawMessage(v)
	case "env":
		err = json.Unmarshal([]byte(v), &c.Env)
	case "file":
		name, data, e := nameAndString(v)
		if e != nil {
			return e
		}
		c.Files = append(c.Files, pybox.File{Name: name, Data: []byte(data)})
	case "collect-files":
		c.CollectFiles, err = strconv.ParseBool(v)
	case "timeout":
		c.Timeout, err = pybox.ParseDuration(v)
	case "memory":
		c.Memory, err = pybox.ParseSize(v)
	case "output-limit":
		c.OutputLimit, err = pybox.ParseSize(v)
	case "disk":
		c.Disk, err = pybox.ParseSize(v)
	case "pids":
		c.Pids, err = strconv.Atoi(v)
	case "cpus":
		c.CPUs, err = strconv.ParseFloat(v, 64)
	default:
		return fmt.Errorf("unknown directive")
	}
	return err
}

func jsonString(v string) (*string, error) {
	var s string
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return nil, fmt.Errorf("want a JSON string: %w", err)
	}
	return &s, nil
}

// nameAndString splits `NAME "json string"`.
func nameAndString(v string) (string, string, error) {
	name, rest, ok := strings.Cut(v, " ")
	if !ok || name == "" {
		return "", "", fmt.Errorf("want NAME \"content as a JSON string\"")
	}
	s, err := jsonString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", err
	}
	return name, *s, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// RunsOn reports whether the case applies to the backend.
func (c *Case) RunsOn(backend string) bool {
	return len(c.Backends) == 0 || slices.Contains(c.Backends, backend)
}

// Request builds the request for backend.
func (c *Case) Request(backend string) pybox.Request {
	r := pybox.Request{
		Backend:      backend,
		Code:         c.Code,
		Globals:      c.Globals,
		Env:          c.Env,
		Files:        slices.Clone(c.Files),
		CollectFiles: c.CollectFiles,
		Timeout:      c.Timeout,
		Memory:       c.Memory,
		OutputLimit:  c.OutputLimit,
		Disk:         c.Disk,
		Pids:         c.Pids,
		CPUs:         c.CPUs,
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	return r
}

// Check compares res with the case's expectations and returns one line per
// mismatch; none means the case passed.
func (c *Case) Check(res *pybox.Result) []string {
	var bad []string
	badf := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	if res.Status != c.Status {
		badf("status = %q, want %q (error: %s)", res.Status, c.Status, clip(res.Error))
	}
	if c.ExitCode != nil && res.ExitCode != *c.ExitCode {
		badf("exit_code = %d, want %d", res.ExitCode, *c.ExitCode)
	}
	if c.Signal != nil && res.Signal != *c.Signal {
		badf("signal = %q, want %q", res.Signal, *c.Signal)
	}
	if c.Stdout != nil && res.Stdout != *c.Stdout {
		badf("stdout = %q, want %q", clip(res.Stdout), clip(*c.Stdout))
	}
	for _, s := range c.StdoutContains {
		if !strings.Contains(res.Stdout, s) {
			badf("stdout %q does not contain %q", clip(res.Stdout), s)
		}
	}
	for _, s := range c.StdoutNot {
		if strings.Contains(res.Stdout, s) {
			badf("stdout %q contains %q", clip(res.Stdout), s)
		}
	}
	if c.StdoutBytes != nil && len(res.Stdout) != *c.StdoutBytes {
		badf("stdout has %d bytes, want %d", len(res.Stdout), *c.StdoutBytes)
	}
	if c.StdoutMaxBytes != nil && len(res.Stdout) > *c.StdoutMaxBytes {
		badf("stdout has %d bytes, want at most %d", len(res.Stdout), *c.StdoutMaxBytes)
	}
	if c.StdoutTruncated != nil && res.StdoutTruncated != *c.StdoutTruncated {
		badf("stdout_truncated = %v, want %v", res.StdoutTruncated, *c.StdoutTruncated)
	}
	if c.Stderr != nil && res.Stderr != *c.Stderr {
		badf("stderr = %q, want %q", clip(res.Stderr), clip(*c.Stderr))
	}
	for _, s := range c.StderrContains {
		if !strings.Contains(res.Stderr, s) {
			badf("stderr %q does not contain %q", clip(res.Stderr), s)
		}
	}
	switch {
	case c.ReturnAbsent && len(res.ReturnValue) != 0:
		badf("return_value = %s, want none", clip(string(res.ReturnValue)))
	case c.Return != nil && len(res.ReturnValue) == 0:
		badf("no return_value, want %s", *c.Return)
	case c.Return != nil:
		if eq, err := JSONEqual(*c.Return, res.ReturnValue); err != nil || !eq {
			badf("return_value = %s, want %s (%v)", clip(string(res.ReturnValue)), *c.Return, err)
		}
	}
	for _, s := range c.ErrorContains {
		if !strings.Contains(res.Error, s) {
			badf("error %q does not contain %q", clip(res.Error), s)
		}
	}
	if c.ErrorFirstFrame != "" {
		if f := firstFrame(res.Error); f != c.ErrorFirstFrame {
			badf("the traceback's first frame is in %q, want %q; error: %q", f, c.ErrorFirstFrame, clip(res.Error))
		}
	}
	if c.OutFiles != nil {
		got := map[string]string{}
		for _, f := range res.Files {
			got[f.Name] = string(f.Data)
		}
		for name, want := range c.OutFiles {
			if g, ok := got[name]; !ok {
				badf("output file %q missing (files: %v)", name, keys(got))
			} else if g != want {
				badf("output file %q = %q, want %q", name, clip(g), clip(want))
			}
		}
	}
	return bad
}

var frameRE = regexp.MustCompile(`(?m)^  File "([^"]*)"`)

// firstFrame returns the file of the first `  File "..."` line.
func firstFrame(tb string) string {
	m := frameRE.FindStringSubmatch(tb)
	if m == nil {
		return ""
	}
	return m[1]
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func clip(s string) string {
	if len(s) > 400 {
		return s[:200] + fmt.Sprintf(" ...(%d bytes)... ", len(s)-400) + s[len(s)-200:]
	}
	return s
}

// JSONEqual reports whether two JSON texts hold the same value. Numbers are
// compared exactly as decimals (1 == 1.0, and big integers keep every digit).
func JSONEqual(a, b []byte) (bool, error) {
	va, err := decode(a)
	if err != nil {
		return false, fmt.Errorf("expected value: %w", err)
	}
	vb, err := decode(b)
	if err != nil {
		return false, fmt.Errorf("actual value: %w", err)
	}
	return same(va, vb), nil
}

func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func same(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, ok1 := new(big.Rat).SetString(string(x))
		ry, ok2 := new(big.Rat).SetString(string(y))
		return ok1 && ok2 && rx.Cmp(ry) == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !same(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !same(v, w) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}
