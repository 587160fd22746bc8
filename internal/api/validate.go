package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every validation error (errors.Is works).
var ErrInvalid = errors.New("invalid request")

// InputError says which field of a Request is wrong and why.
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InputError) Is(target error) bool { return target == ErrInvalid }

// Upper bounds that keep one request from asking for the whole machine.
const (
	MaxTimeout     = 24 * time.Hour
	MaxMemory      = 1 << 40
	MaxPids        = 1 << 16
	MaxOutputLimit = 1 << 30
	MaxDisk        = 1 << 40
	MaxFilesLimit  = 1 << 32
	MaxEnvEntries  = 256
	MaxMounts      = 64
	MaxFiles       = 4096
)

type check struct {
	name string
	fn   func(*Request) error
}

// checks run in order; the first failure is reported.
var checks = []check{
	{"backend", checkBackend},
	{"code", checkCode},
	{"globals", checkGlobals},
	{"limits", checkLimits},
	{"net", checkNet},
	{"files", checkFiles},
	{"mounts", checkMounts},
	{"env", checkEnv},
	{"python", checkPython},
}

// Validate checks a request that already went through WithDefaults. It is
// the one place requests are validated, whatever front end built them.
func (r *Request) Validate() error {
	for _, c := range checks {
		if err := c.fn(r); err != nil {
			return err
		}
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// DefaultBackend is the backend used when Request.Backend is empty.
func DefaultBackend() string {
	if runtime.GOOS == "linux" {
		return BackendNative
	}
	return BackendWasm
}

func checkBackend(r *Request) error {
	switch r.Backend {
	case "", BackendNative, BackendGVisor, BackendWasm:
		return nil
	}
	return invalid("backend", "unknown backend %q (want native, gvisor or wasm)", r.Backend)
}

func checkCode(r *Request) error {
	if len(r.Code) > MaxCodeSize {
		return invalid("code", "%d bytes is over the %d byte limit", len(r.Code), MaxCodeSize)
	}
	if !utf8.ValidString(r.Code) {
		return invalid("code", "not valid UTF-8")
	}
	if strings.IndexByte(r.Code, 0) >= 0 {
		return invalid("code", "contains a NUL byte")
	}
	return nil
}

func checkGlobals(r *Request) error {
	g := bytes.TrimSpace(r.Globals)
	if len(g) == 0 || string(g) == "null" {
		return nil
	}
	if len(g) > MaxGlobalsSize {
		return invalid("globals", "%d bytes is over the %d byte limit", len(g), MaxGlobalsSize)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(g, &m); err != nil {
		return invalid("globals", "must be a JSON object")
	}
	for k := range m {
		if !isIdentifier(k) {
			return invalid("globals", "key %q is not a Python identifier", k)
		}
	}
	return nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

func checkLimits(r *Request) error {
	switch {
	case r.Timeout <= 0:
		return invalid("timeout", "must be positive")
	case r.Timeout.D() > MaxTimeout:
		return invalid("timeout", "%s is over the %s maximum", r.Timeout, MaxTimeout)
	case r.Memory < 16<<20:
		return invalid("memory", "%s is under the 16MiB minimum", r.Memory)
	case r.Memory > MaxMemory:
		return invalid("memory", "%s is over the 1TiB maximum", r.Memory)
	case r.Pids < 1:
		return invalid("pids", "must be at least 1")
	case r.Pids > MaxPids:
		return invalid("pids", "%d is over the %d maximum", r.Pids, MaxPids)
	case r.CPUs < 0 || math.IsNaN(r.CPUs) || math.IsInf(r.CPUs, 0):
		return invalid("cpus", "must be a positive number of CPUs")
	case r.CPUs != 0 && r.CPUs < 0.01:
		return invalid("cpus", "%g is under the 0.01 minimum", r.CPUs)
	case r.CPUs > 1024:
		return invalid("cpus", "%g is over the 1024 maximum", r.CPUs)
	case r.OutputLimit < 1:
		return invalid("output_limit", "must be positive")
	case r.OutputLimit > MaxOutputLimit:
		return invalid("output_limit", "%s is over the 1GiB maximum", r.OutputLimit)
	case r.Disk < 1<<20:
		return invalid("disk", "%s is under the 1MiB minimum", r.Disk)
	case r.Disk > MaxDisk:
		return invalid("disk", "%s is over the 1TiB maximum", r.Disk)
	case r.IdleTimeout <= 0 || r.IdleTimeout.D() > MaxTimeout:
		return invalid("idle_timeout", "must be between 0 and %s", MaxTimeout)
	case r.MaxLifetime <= 0 || r.MaxLifetime.D() > MaxTimeout:
		return invalid("max_lifetime", "must be between 0 and %s", MaxTimeout)
	case r.FilesLimit < 1 || r.FilesLimit > MaxFilesLimit:
		return invalid("files_limit", "must be between 1 byte and 4GiB")
	}
	return nil
}

func checkNet(r *Request) error {
	if r.Net != NetNone {
		return invalid("net", "unsupported network mode %q (only \"none\" is available)", r.Net)
	}
	return nil
}

// CleanFileName checks an input or output file name and returns its clean
// form. Names are relative, may contain sub-directories, and may never
// climb out of the work directory.
func CleanFileName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty file name")
	case len(name) > 1024:
		return "", errors.New("file name longer than 1024 bytes")
	case !utf8.ValidString(name):
		return "", errors.New("file name is not valid UTF-8")
	case strings.ContainsAny(name, "\x00\\"):
		return "", fmt.Errorf("file name %q contains NUL or a backslash", name)
	case path.IsAbs(name):
		return "", fmt.Errorf("file name %q must be relative to the work directory", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("file name %q climbs out of the work directory", name)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", fmt.Errorf("file name %q names the work directory itself", name)
	}
	return c, nil
}

func checkFiles(r *Request) error {
	if len(r.Files) > MaxFiles {
		return invalid("files", "%d files is over the %d maximum", len(r.Files), MaxFiles)
	}
	var total int64
	seen := map[string]bool{}
	for i := range r.Files {
		c, err := CleanFileName(r.Files[i].Name)
		if err != nil {
			return invalid("files", "%v", err)
		}
		if seen[c] {
			return invalid("files", "file %q given twice", c)
		}
		seen[c] = true
		r.Files[i].Name = c
		if r.Files[i].Mode&^0o777 != 0 {
			return invalid("files", "file %q: mode %o has bits other than permissions", c, r.Files[i].Mode)
		}
		total += int64(len(r.Files[i].Data))
	}
	if total > MaxInputFiles {
		return invalid("files", "%d bytes of input files is over the %d byte limit", total, MaxInputFiles)
	}
	return nil
}

// reservedGuest are sandbox paths a mount may not replace or cover.
var reservedGuest = []string{"/", "/proc", "/dev", "/work", "/tmp", "/etc", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/run"}

func checkMounts(r *Request) error {
	if len(r.Mounts) > MaxMounts {
		return invalid("mounts", "%d mounts is over the %d maximum", len(r.Mounts), MaxMounts)
	}
	for _, m := range r.Mounts {
		if !filepath.IsAbs(m.Host) {
			return invalid("mounts", "host path %q must be absolute", m.Host)
		}
		if !path.IsAbs(m.Guest) || strings.ContainsRune(m.Guest, 0) || strings.ContainsRune(m.Host, 0) {
			return invalid("mounts", "guest path %q must be absolute", m.Guest)
		}
		g := path.Clean(m.Guest)
		for _, p := range strings.Split(m.Guest, "/") {
			if p == ".." {
				return invalid("mounts", "guest path %q contains ..", m.Guest)
			}
		}
		for _, res := range reservedGuest {
			if g == res || (res != "/" && strings.HasPrefix(res, g+"/")) {
				return invalid("mounts", "guest path %q would cover the sandbox's own %s", m.Guest, res)
			}
			if res == "/proc" || res == "/dev" {
				if strings.HasPrefix(g, res+"/") {
					return invalid("mounts", "guest path %q is inside %s", m.Guest, res)
				}
			}
		}
	}
	return nil
}

func checkEnv(r *Request) error {
	if len(r.Env) > MaxEnvEntries {
		return invalid("env", "%d variables is over the %d maximum", len(r.Env), MaxEnvEntries)
	}
	for k, v := range r.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return invalid("env", "bad variable name %q", k)
		}
		if strings.ContainsRune(v, 0) {
			return invalid("env", "value of %s contains a NUL byte", k)
		}
		if len(k)+len(v) > 32<<10 {
			return invalid("env", "variable %s is longer than 32KiB", k)
		}
	}
	return nil
}

func checkPython(r *Request) error {
	if !filepath.IsAbs(r.Python) || strings.ContainsRune(r.Python, 0) {
		return invalid("python", "interpreter path %q must be absolute", r.Python)
	}
	return nil
}
