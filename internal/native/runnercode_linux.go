package native

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/runner"

	"github.com/pybox-dev/pybox/internal/spawn"
)

// The runner's compiled code, per interpreter.
//
// Python compiles the runner's source on every start: about 2 ms, a fifth
// of a cold run. Instead the supervisor compiles it once per interpreter
// (runner.CompileScript, run outside the sandbox) and hands the code object
// to runner.Bootstrap as the first frame on the runner's input. That is
// only done for an interpreter the supervisor may run outside a sandbox: a
// file under /usr/ that only root can change (it and every directory above
// it owned by root, not writable by group or others). Any other --python
// gets the source, as before. The code is kept in memory and on disk
// (codeCacheDir), keyed by the runner's source and the interpreter file's
// identity (path, device, inode, size, mtime), so a changed or upgraded
// interpreter never gets code object bytes made by another one.

// codeCacheMagic starts every cache file; then the SHA-256 of the payload.
const codeCacheMagic = "PYBOXRC1"

// maxRunnerCode caps what the compile step may return.
const maxRunnerCode = 1 << 20

var codeCache struct {
	sync.Mutex
	m map[string][]byte // key -> code (nil: cannot compile, use the source)
}

// runnerCode returns the runner's marshalled code object for interpreter
// argv0 (a real path), or nil when the runner must be started from source.
func runnerCode(argv0 string) []byte {
	key, ok := codeKey(argv0)
	if !ok {
		return nil
	}
	codeCache.Lock()
	defer codeCache.Unlock()
	if codeCache.m == nil {
		codeCache.m = map[string][]byte{}
	}
	if c, ok := codeCache.m[key]; ok {
		return c
	}
	c := loadCode(key)
	if c == nil {
		var err error
		if c, err = compileRunner(argv0); err != nil {
			if trace {
				fmt.Fprintf(os.Stderr, "pybox trace: runner code for %s: %v (using the source)\n", argv0, err)
			}
			c = nil
		} else {
			storeCode(key, c)
		}
	}
	codeCache.m[key] = c
	return c
}

// codeKey identifies the runner source and the interpreter file, and says
// whether the interpreter may be run outside a sandbox.
func codeKey(argv0 string) (string, bool) {
	if !strings.HasPrefix(argv0, "/usr/") || os.Getenv("PYBOX_RUNNER_CODE") == "0" {
		return "", false
	}
	var st syscall.Stat_t
	if err := syscall.Stat(argv0, &st); err != nil || !rootOnly(&st) {
		return "", false
	}
	for d := filepath.Dir(argv0); ; d = filepath.Dir(d) {
		var ds syscall.Stat_t
		if err := syscall.Lstat(d, &ds); err != nil || !rootOnly(&ds) {
			return "", false
		}
		if d == "/" {
			break
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%d.%d\x00", argv0, st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	h.Write([]byte(runner.Source))
	return hex.EncodeToString(h.Sum(nil)[:16]), true
}

// rootOnly: owned by root and not writable by group or others.
func rootOnly(st *syscall.Stat_t) bool {
	return st.Uid == 0 && st.Mode&0o022 == 0
}

// compileRunner runs the interpreter outside any sandbox on trusted input
// only: -I -S -B, an empty environment, the runner source on stdin.
func compileRunner(argv0 string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv0, "-I", "-S", "-B", "-c", runner.CompileScript)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(runner.Source)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("compile the runner: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	if out.Len() == 0 || out.Len() > maxRunnerCode {
		return nil, fmt.Errorf("compile the runner: %d bytes of code", out.Len())
	}
	return out.Bytes(), nil
}

// cacheDir is where the native backend keeps files between processes
// (compiled runner code, the init program).
func cacheDir() string { return spawn.CacheDir() }

// codeCacheDir is where compiled runner code is kept between processes.
func codeCacheDir() string {
	if d := cacheDir(); d != "" {
		return filepath.Join(d, "runner")
	}
	return ""
}

func loadCode(key string) []byte {
	dir := codeCacheDir()
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, key+".code"))
	if err != nil || len(b) < len(codeCacheMagic)+sha256.Size || string(b[:len(codeCacheMagic)]) != codeCacheMagic {
		return nil
	}
	sum, payload := b[len(codeCacheMagic):len(codeCacheMagic)+sha256.Size], b[len(codeCacheMagic)+sha256.Size:]
	if got := sha256.Sum256(payload); !bytes.Equal(got[:], sum) || len(payload) == 0 || len(payload) > maxRunnerCode {
		return nil
	}
	return payload
}

// storeCode writes the cache file atomically; failures only cost speed.
func storeCode(key string, code []byte) {
	dir := codeCacheDir()
	if dir == "" || os.MkdirAll(dir, 0o700) != nil {
		return
	}
	f, err := os.CreateTemp(dir, key+".tmp*")
	if err != nil {
		return
	}
	sum := sha256.Sum256(code)
	_, err = f.Write(append(append([]byte(codeCacheMagic), sum[:]...), code...))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, key+".code"))
	}
	if err != nil {
		os.Remove(f.Name())
		return
	}
	// Code for other runner versions or interpreters: drop what has not
	// been written for a week (a process still using one recompiles it).
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); n != key+".code" && (strings.HasSuffix(n, ".code") || strings.Contains(n, ".tmp")) {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > 7*24*time.Hour {
				_ = os.Remove(filepath.Join(dir, n))
			}
		}
	}
}
