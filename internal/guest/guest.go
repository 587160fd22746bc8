// Package guest holds what every process-based backend (native, gvisor)
// gives the interpreter and takes back from it, so that they agree: the
// interpreter's path and prefix, its fixed environment, and the capture of
// its output streams and runner frames, capped and treated as untrusted.
package guest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/runner"
	"github.com/pybox-dev/pybox/internal/spawn"
)

// PassEnv are host variables passed through because they describe the host
// (spawn holds the list: an init started ahead needs it too).
var PassEnv = spawn.PassEnv

// Environ is the interpreter's whole environment: a fixed minimal one, the
// PassEnv variables the host has, and the request's own, sorted. Nothing
// else of the host environment reaches the sandbox.
func Environ(req *api.Request) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/work",
		"USER=sandbox",
		"LANG=C.UTF-8",
		"TMPDIR=/tmp",
		"MPLBACKEND=Agg",
		"MPLCONFIGDIR=/tmp/.matplotlib",
	}
	for _, k := range PassEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(req.Env))
	for k := range req.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+req.Env[k])
	}
	return env
}

// Interpreter resolves the interpreter's host path and, when it lives
// outside /usr, the prefix directory that must be mounted for it.
func Interpreter(p string) (argv0, prefix string, err error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", "", fmt.Errorf("python interpreter %s: %w", p, err)
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o001 == 0 {
		return "", "", fmt.Errorf("python interpreter %s is not an executable file for everyone", p)
	}
	if strings.HasPrefix(real, "/usr/") {
		return real, "", nil
	}
	// A prefix install: <prefix>/bin/python3 needs <prefix>.
	prefix = filepath.Dir(filepath.Dir(real))
	if prefix == "/" {
		return "", "", fmt.Errorf("python interpreter %s: cannot mount its prefix /", p)
	}
	return real, prefix, nil
}

// Output collects one output stream up to a limit, forwarding chunks live.
type Output struct {
	buf       []byte
	truncated bool
}

// Read copies rd into o until EOF. Past limit bytes it keeps nothing more,
// calls over once and goes on draining so that the writer never blocks.
func (o *Output) Read(rd io.Reader, limit int64, hook func([]byte), over func()) {
	chunk := make([]byte, 32<<10)
	for {
		n, err := rd.Read(chunk)
		if n > 0 {
			o.Add(chunk[:n], limit, hook, over)
		}
		if err != nil {
			return
		}
	}
}

// Add appends data up to the limit, forwarding what it keeps to hook; the
// first byte over the limit calls over, once.
func (o *Output) Add(data []byte, limit int64, hook func([]byte), over func()) {
	room := limit - int64(len(o.buf))
	if int64(len(data)) > room {
		data = data[:max(room, 0)]
		if !o.truncated {
			o.truncated = true
			over()
		}
	}
	if len(data) > 0 {
		o.buf = append(o.buf, data...)
		if hook != nil {
			hook(data)
		}
	}
}

// Truncated says the limit cut the stream.
func (o *Output) Truncated() bool { return o.truncated }

// String is the captured text, invalid UTF-8 replaced (Results are JSON).
func (o *Output) String() string { return strings.ToValidUTF8(string(o.buf), "\uFFFD") }

// Frames collects what the runner sent for one execution: display outputs
// (capped in total by the output limit) and the result.
type Frames struct {
	Outputs          []api.Output
	OutputsTruncated bool
	outputBytes      int64
	// Result is the last result frame; Err why there is none.
	Result *runner.Message
	Err    error
}

// Add takes one decoded frame; it reports whether it was the result.
func (f *Frames) Add(m runner.Message, limit int64) bool {
	switch m.Type {
	case runner.TypeDisplay:
		n := int64(len(m.Data) + len(m.MIME))
		if f.outputBytes+n > limit {
			f.OutputsTruncated = true
			return false
		}
		f.outputBytes += n
		f.Outputs = append(f.Outputs, api.Output{MIME: m.MIME, Data: m.Data})
	case runner.TypeResult:
		mm := m
		f.Result = &mm
		return true
	}
	return false
}

// Read reads frames of at most max bytes until EOF. Undecodable frames are
// dropped: the channel is written by untrusted code, and a forged frame may
// at most lie about its own run's output.
func (f *Frames) Read(rd io.Reader, max int, limit int64) {
	for {
		b, err := runner.ReadFrame(rd, max)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if f.Result == nil && err == nil {
				err = errors.New("no result frame")
			}
			f.Err = err
			// Drain so a lying runner cannot block on a full pipe.
			_, _ = io.Copy(io.Discard, rd)
			return
		}
		if m, err := runner.DecodeMessage(b); err == nil {
			f.Add(m, limit)
		}
	}
}

// Settle sets the status of a run whose interpreter ended by itself with
// res.ExitCode (no limit stopped it), and its return value and error, from
// the runner's result frame m (nil when there was none; ferr then says
// why), the same way for every backend.
func Settle(res *api.Result, m *runner.Message, ferr error) {
	if m != nil {
		res.ReturnValue = m.ReturnValue
		res.Error = m.Error
	}
	switch {
	case res.ExitCode == 0 && (m == nil || m.OK || m.ExitCode != nil):
		// A clean exit without a result frame happens when the code
		// closes the protocol pipe or calls os._exit(0): still success.
		res.Status = api.StatusSuccess
		res.Error = ""
	default:
		res.Status = api.StatusRunError
		// sys.exit(n) is reported by its exit code alone, as python does.
		if res.Error == "" && (m == nil || m.ExitCode == nil) {
			if ferr != nil && m == nil {
				res.Error = fmt.Sprintf("interpreter exited with code %d without a result (%v)", res.ExitCode, ferr)
			} else {
				res.Error = fmt.Sprintf("interpreter exited with code %d", res.ExitCode)
			}
		}
	}
}
