// Package runner holds the Python program that runs inside every sandbox
// (native, gvisor, wasm) and the Go side of the supervisor<->runner protocol.
//
// # Starting the runner
//
// The runner source is embedded as [Source] and passed on the command line:
//
//	<python> -I -S -B -c <Source> <IN> <OUT>
//
// -S skips the site module, whose .pth processing costs more than the rest
// of start-up; the runner adds the site directories itself.
//
// [Args] builds that argv. IN and OUT are each a decimal file descriptor
// (native: 3 and 4, inherited pipes; the runner moves them to fds >= 100,
// close-on-exec) or a file path (wasm: IN is a file holding the frames, OUT a
// file the runner creates). The working directory is the sandbox work dir.
//
// # Frames
//
// Both directions carry frames: a 4-byte big-endian unsigned length, then
// that many bytes of one UTF-8 JSON object with a "type" field.
//
// The supervisor sends [Exec] frames. The runner runs each one as main.py in
// one __main__ namespace that persists across frames (so one runner process
// can serve a session) and answers each with exactly one "result" [Message],
// preceded by any number of "display" messages. At EOF on IN it exits: with
// the SystemExit code if the code called sys.exit (right after that frame's
// result), else 1 if the last exec failed, else 0.
//
// With IN "0" (gvisor: the frames arrive on stdin, which the runner moves to
// an fd >= 100, giving the code /dev/null), and on WASI (wasm), the runner
// runs one exec frame,
// then does what Python's finalisation does that the code can see (joins
// non-daemon threads, runs atexit handlers, flushes stdio, tears down the
// code's __main__ so that __del__ methods run and open files are written
// out), sends an "exit" [Message]
// with its exit status and exits with it at once, so that the supervisor
// need not wait for the sandbox to shut down.
//
// # Trust
//
// The runner shares its process with untrusted code, which can find the
// channel and write forged frames. So [ReadFrame] caps every frame and never
// allocates more than its cap, and [DecodeMessage] is strict: unknown types or
// fields, trailing data, invalid UTF-8 and out-of-range values are errors. A
// forged message can at most lie about its own run's output; statuses caused
// by limits are decided by the supervisor, never taken from a message.
//
// docs/protocol.md describes the protocol in full.
package runner

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// Source is the runner program (runner.py).
//
//go:embed runner.py
var Source string

// Frame types.
const (
	TypeExec    = "exec"
	TypeResult  = "result"
	TypeDisplay = "display"
	// TypeExit is the last frame of a gvisor or wasm runner (see [Message]).
	TypeExit = "exit"
)

// DefaultMaxFrame is a frame cap that fits every message the runner sends
// (the runner caps return values at 4 MiB and error texts at 1 MiB; display
// data is not capped by the runner).
const DefaultMaxFrame = 16 << 20

// maxMIME bounds the length of a display MIME type.
const maxMIME = 255

// ErrFrameTooLarge is returned by [ReadFrame] when a frame's length prefix
// exceeds the cap.
var ErrFrameTooLarge = errors.New("runner: frame too large")

// Args returns the argv that starts the runner under python, reading frames
// from in and writing frames to out (each a decimal fd or a file path).
func Args(python, in, out string) []string {
	return []string{python, "-I", "-S", "-B", "-c", Source, in, out}
}

// Bootstrap is a -c program that loads the runner as a compiled code
// object instead of compiling [Source] (about 2 ms of every start, a fifth
// of a cold run): it reads one frame from IN, a 4-byte big-endian length
// then the code object in [marshal] format, made by [CompileScript] with
// the same interpreter, and executes it as the runner; the exec frames
// follow on IN as usual. [BootArgs] builds the argv.
//
// [marshal]: https://docs.python.org/3/library/marshal.html
const Bootstrap = `import marshal, posix, sys
def _pybox_read(fd, n):
    b = b""
    while len(b) < n:
        c = posix.read(fd, n - len(b))
        if not c:
            raise SystemExit("pybox runner: the runner's code frame ended early")
        b += c
    return b
_pybox_fd = int(sys.argv[1])
_pybox_code = marshal.loads(_pybox_read(_pybox_fd, int.from_bytes(_pybox_read(_pybox_fd, 4), "big")))
del _pybox_read, _pybox_fd
exec(_pybox_code)
`

// CompileScript is run by the supervisor, outside any sandbox, with a
// trusted interpreter (python -I -S -B -c CompileScript) with [Source] on
// stdin: it writes the runner's code object in marshal format on stdout,
// for [Bootstrap]. The code's file name is "<string>", as with -c. The
// parts the runner compiles on first use (top-level _NAME = "source"
// strings, see runner.py's _lazy) are compiled too: each string constant
// becomes its code object in marshal format, which _lazy loads only when
// the part is used.
const CompileScript = `import ast, marshal, sys
src = sys.stdin.buffer.read()
code = compile(src, "<string>", "exec")
parts = {}
for node in ast.parse(src).body:
    if (type(node) is ast.Assign and len(node.targets) == 1 and type(node.targets[0]) is ast.Name
            and node.targets[0].id.startswith("_") and node.targets[0].id.isupper()
            and type(node.value) is ast.Constant and type(node.value.value) is str):
        parts[node.value.value] = marshal.dumps(compile(node.value.value, "<string>", "exec"))
consts = tuple(parts.get(c, c) if type(c) is str else c for c in code.co_consts)
sys.stdout.buffer.write(marshal.dumps(code.replace(co_consts=consts)))
`

// BootArgs is [Args] for an interpreter that gets the runner as a code
// frame first (see [Bootstrap]); in must be a file descriptor number.
func BootArgs(python, in, out string) []string {
	return []string{python, "-I", "-S", "-B", "-c", Bootstrap, in, out}
}

// Exec asks the runner to run Code as main.py. Globals, if set, is a JSON
// object whose keys become global variables first.
type Exec struct {
	Type    string          `json:"type"`
	Code    string          `json:"code"`
	Globals json.RawMessage `json:"globals,omitempty"`
	// Marker, when set, is written by the runner to stdout and to stderr
	// after the execution's output and before its result frame, so that a
	// session's supervisor can tell where one execution's output ends.
	Marker string `json:"marker,omitempty"`
}

// NewExec returns an exec frame for code; globals may be nil.
func NewExec(code string, globals json.RawMessage) Exec {
	return Exec{Type: TypeExec, Code: code, Globals: globals}
}

// Message is a frame sent by the runner: a "result" (after each exec), a
// "display" (a rich output, before the result of the exec that made it), or
// an "exit": only with IN "0" (gvisor) or on WASI (wasm), after the
// result, once the runner
// has done what Python's finalisation does before exit (joined non-daemon
// threads, run atexit handlers, flushed stdio), right before the process
// exits with ExitCode.
type Message struct {
	Type string `json:"type"`

	// OK, ReturnValue, Error and ExitCode belong to "result"; ExitCode
	// alone to "exit".
	OK bool `json:"ok"`
	// ReturnValue is the JSON value of the trailing expression; nil if the
	// code has none or it was None.
	ReturnValue json.RawMessage `json:"return_value,omitempty"`
	// Error is the traceback (or SyntaxError text) formatted like CPython,
	// starting at File "main.py", with a trailing newline.
	Error string `json:"error,omitempty"`
	// ExitCode is set (0-255) in a result only when the code raised
	// SystemExit; the runner then exits with that code right after the
	// result. An exit always has it: the status the process exits with.
	ExitCode *int `json:"exit_code,omitempty"`

	// MIME and Data belong to "display". Data is text for text types and
	// base64 for binary ones (image/png).
	MIME string `json:"mime,omitempty"`
	Data string `json:"data,omitempty"`
}

// WriteFrame encodes v as JSON and writes it as one frame in a single Write.
func WriteFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("runner: encode frame: %w", err)
	}
	return WriteRaw(w, b)
}

// WriteRaw writes one frame whose payload is b as is (not JSON: the
// runner's code frame, see [Bootstrap]).
func WriteRaw(w io.Writer, b []byte) error {
	if uint64(len(b)) > math.MaxUint32 {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(b))
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("runner: write frame: %w", err)
	}
	return nil
}

// readChunk is how much ReadFrame allocates before the data has arrived.
const readChunk = 64 << 10

// ReadFrame reads one frame and returns its payload. It returns io.EOF if r
// ends cleanly before a frame, io.ErrUnexpectedEOF if it ends inside one, and
// an error wrapping [ErrFrameTooLarge] if the length prefix exceeds max. It
// never allocates more than max bytes for the payload, and grows its buffer
// only as data arrives, so a lying length prefix costs little.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := uint64(binary.BigEndian.Uint32(h[:]))
	if max < 0 || n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	size := int(n)
	buf := make([]byte, 0, min(size, readChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(size, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// DecodeMessage decodes and validates one runner frame payload. It rejects
// invalid UTF-8 or JSON, unknown types and fields, trailing data, fields that
// do not belong to the type, exit codes outside 0-255 (or missing from an
// exit) and malformed MIME types. A return_value of JSON null is kept as
// "null".
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if !utf8.Valid(b) {
		return Message{}, errors.New("runner: message is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("runner: bad message: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Message{}, errors.New("runner: bad message: trailing data after the JSON object")
	}
	switch m.Type {
	case TypeResult:
		if m.MIME != "" || m.Data != "" {
			return Message{}, errors.New("runner: bad result: has display fields")
		}
		if m.ExitCode != nil && (*m.ExitCode < 0 || *m.ExitCode > 255) {
			return Message{}, fmt.Errorf("runner: bad result: exit_code %d outside 0-255", *m.ExitCode)
		}
		if m.ReturnValue != nil {
			if !json.Valid(m.ReturnValue) {
				return Message{}, errors.New("runner: bad result: return_value is not valid JSON")
			}
			var c bytes.Buffer
			if err := json.Compact(&c, m.ReturnValue); err != nil {
				return Message{}, fmt.Errorf("runner: bad result: return_value: %w", err)
			}
			m.ReturnValue = c.Bytes()
		}
	case TypeDisplay:
		if m.OK || m.ReturnValue != nil || m.Error != "" || m.ExitCode != nil {
			return Message{}, errors.New("runner: bad display: has result fields")
		}
		if err := checkMIME(m.MIME); err != nil {
			return Message{}, err
		}
	case TypeExit:
		if m.OK || m.ReturnValue != nil || m.Error != "" || m.MIME != "" || m.Data != "" {
			return Message{}, errors.New("runner: bad exit: has fields other than exit_code")
		}
		if m.ExitCode == nil {
			return Message{}, errors.New("runner: bad exit: no exit_code")
		}
		if *m.ExitCode < 0 || *m.ExitCode > 255 {
			return Message{}, fmt.Errorf("runner: bad exit: exit_code %d outside 0-255", *m.ExitCode)
		}
	case "":
		return Message{}, errors.New("runner: bad message: no type")
	default:
		return Message{}, fmt.Errorf("runner: bad message: unknown type %q", truncate(m.Type, 40))
	}
	return m, nil
}

// ReadMessage reads one frame of at most max bytes and decodes it with
// [DecodeMessage].
func ReadMessage(r io.Reader, max int) (Message, error) {
	b, err := ReadFrame(r, max)
	if err != nil {
		return Message{}, err
	}
	return DecodeMessage(b)
}

// checkMIME accepts type/subtype made of RFC 6838 restricted-name characters
// (plus "+" suffixes), e.g. image/png, image/svg+xml, text/html.
func checkMIME(s string) error {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || len(s) > maxMIME {
		return fmt.Errorf("runner: bad display: mime %q is not type/subtype", truncate(s, 40))
	}
	for _, c := range typ + sub {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("!#$&-^_.+", c)) {
			return fmt.Errorf("runner: bad display: mime %q has a bad character", truncate(s, 40))
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
