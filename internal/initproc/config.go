package initproc

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/runner/codecache"
	"github.com/pybox-dev/pybox/internal/spawn"
)

// File descriptors the parent passes to the init process. 0-2 are the
// interpreter's stdin/stdout/stderr; RunnerIn and RunnerOut are handed on to
// the runner; Control is init's own channel to the parent.
// The layout is package spawn's, which starts init.
const (
	FDRunnerIn  = spawn.FDRunnerIn
	FDRunnerOut = spawn.FDRunnerOut
	FDControl   = spawn.FDControl
)

// Identity of the code inside the sandbox.
const (
	SandboxUID = spawn.SandboxUID
	SandboxGID = spawn.SandboxGID
	Hostname   = "pybox"
)

// TemplateAllow are the syscalls a fork-server template needs that the
// sandbox's seccomp filter otherwise denies; every child denies them again
// with a small stacked filter.
var TemplateAllow = spawn.TemplateAllow

// InitThreads is how many tasks the pids limit reserves for the init
// process's own threads (a Go process runs several), so that Request.Pids
// counts the user's processes and threads only.
const InitThreads = 8

// Config is everything the init process needs, sent by the parent as the
// first frame on the control channel. The parent has already validated the
// request; init trusts it.
type Config struct {
	// Argv is the interpreter command line (runner included).
	Argv []string `json:"argv"`
	// Env is the interpreter's full environment.
	Env []string `json:"env"`
	// Layout is the root's runtime binds, symlinks, /etc files and
	// tmpfs size (its JSON fields are Config's own).
	Layout
	// Mounts are the user's mounts.
	Mounts []api.Mount `json:"mounts,omitempty"`
	// MountTrees: the parent sends, right after the config, one byte
	// carrying a detached copy of each mount's source (open_tree
	// OPEN_TREE_CLONE, made with the parent's rights), which init moves
	// into place. Without it (kernels before 5.2) init opens the sources
	// itself, as an unprivileged host uid.
	MountTrees bool `json:"mount_trees,omitempty"`
	// Files are input files written into /work.
	Files []api.File `json:"files,omitempty"`
	// CollectFiles asks init to send back what the code left in /work,
	// at most FilesLimit bytes in all.
	CollectFiles bool  `json:"collect_files,omitempty"`
	FilesLimit   int64 `json:"files_limit"`
	// SeccompFilter is the seccomp filter init installs last (the struct
	// sock_filter array internal/seccomp.Raw builds: the default filter,
	// or the template's for Template), and SeccompSummary describes it.
	// The parent builds it: the filter compiler's initialisation would
	// cost every sandbox start about 1 ms.
	SeccompFilter  []byte `json:"seccomp_filter"`
	SeccompSummary string `json:"seccomp_summary,omitempty"`
	// BestEffort lets init skip Landlock or seccomp when the kernel lacks
	// them; what was skipped is reported.
	BestEffort bool `json:"best_effort,omitempty"`
	// Session keeps init serving file requests on the control channel
	// while the interpreter runs (see Request).
	Session bool `json:"session,omitempty"`
	// Template makes the interpreter a fork-server template
	// (internal/zygote): it keeps uid 0 and its capabilities inside the
	// sandbox's user namespace, gets no Landlock domain and a seccomp
	// filter that still allows TemplateAllow, because it builds a fresh
	// sandbox for every child; each child drops all of that before any
	// user code runs.
	Template bool `json:"template,omitempty"`
	// LateCgroup: the parent moves the interpreter into the run's cgroup
	// while it starts up (cgroup v1, where a move waits for an RCU grace
	// period), and holds back the exec frame until it is in; init does
	// not wait for "go", and stays in the parent's groups. Only for
	// runner interpreters: nothing runs user code before its exec frame.
	LateCgroup bool `json:"late_cgroup,omitempty"`
	// RunnerCode, when set, is the runner's compiled code (Argv is then
	// runner.BootArgs): the parent writes it to the runner's input as the
	// first frame. Parent-side only; never sent to init.
	RunnerCode []byte `json:"-"`
	// RunnerSource is the cache file RunnerCode was read from (zero if
	// none). Parent-side only.
	RunnerSource codecache.Source `json:"-"`
	// Trace asks init to report how long each step took.
	Trace bool `json:"trace,omitempty"`
}

// Message is a frame from init to the parent.
type Message struct {
	// Type is "error" (setup failed at Step), "ready" (interpreter
	// started), "exit" (interpreter ended), "file" (one collected file) or
	// "done" (nothing follows).
	Type  string `json:"type"`
	Step  string `json:"step,omitempty"`
	Error string `json:"error,omitempty"`

	// ready
	LandlockABI int      `json:"landlock_abi,omitempty"`
	Landlock    []string `json:"landlock,omitempty"`
	Seccomp     string   `json:"seccomp,omitempty"`
	Missing     []string `json:"missing,omitempty"`
	// Steps is "name=µs" per containment step, when Config.Trace is set;
	// "start" is the time from process start to reading the config.
	Steps []string `json:"steps,omitempty"`

	// exit
	ExitCode int    `json:"exit_code,omitempty"`
	Signal   int    `json:"signal,omitempty"`
	CPUMS    int64  `json:"cpu_ms,omitempty"`
	MaxRSS   int64  `json:"max_rss,omitempty"`
	Note     string `json:"note,omitempty"`

	// file
	File *api.OutFile `json:"file,omitempty"`
	// FilesTruncated says the files limit left some out.
	FilesTruncated bool `json:"files_truncated,omitempty"`
}

// Request is a frame from the parent to a session's init: "put-file"
// (write File into /work) or "get-file" (read Name from /work, at most Max
// bytes). Init answers each with a "reply" Message carrying File or Error.
type Request struct {
	Type string    `json:"type"`
	File *api.File `json:"file,omitempty"`
	Name string    `json:"name,omitempty"`
	Max  int64     `json:"max,omitempty"`
}

// ErrFrameTooLarge is returned when a frame's length prefix exceeds the cap.
var ErrFrameTooLarge = errors.New("frame too large")

// WriteFrame writes v as one length-prefixed JSON frame.
func WriteFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame of at most max bytes and decodes it into v.
func ReadFrame(r io.Reader, max int, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return json.Unmarshal(b, v)
}
