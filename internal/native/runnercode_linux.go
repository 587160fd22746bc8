package native

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/atomicfile"
	"github.com/pybox-dev/pybox/internal/runner"
	"github.com/pybox-dev/pybox/internal/runner/codecache"

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

// The cache's file layout is internal/runner/codecache's. For the default
// interpreter the cache also keeps an index naming its file, which `pybox
// run`'s early start reads to put the code on the input of an interpreter
// started ahead (codecache.PreSend); the backend takes such an interpreter
// only if the file sent is the one it would send (startWith).

// maxRunnerCode caps what the compile step may return.
const maxRunnerCode = codecache.MaxCode

// cachedCode is the runner code for one key: nil code when it cannot be
// compiled (the source is used); src.File is zero unless the code was read
// from the cache's file.
type cachedCode struct {
	code []byte
	src  codecache.Source
}

var codeCache struct {
	sync.Mutex
	m map[string]cachedCode
	// indexed: the key whose index this process has checked
	indexed string
}

// runnerCode returns the runner's marshalled code object for interpreter
// argv0 (a real path), or nil when the runner must be started from source,
// and the cache file it came from.
func runnerCode(argv0 string) ([]byte, codecache.Source) {
	key, ok := codeKey(argv0)
	if !ok {
		return nil, codecache.Source{}
	}
	codeCache.Lock()
	defer codeCache.Unlock()
	if codeCache.m == nil {
		codeCache.m = map[string]cachedCode{}
	}
	if c, ok := codeCache.m[key]; ok {
		return c.code, c.src
	}
	c := cachedCode{src: codecache.Source{Key: key}}
	c.code, c.src.File = loadCode(key)
	if c.code == nil {
		var err error
		if c.code, err = compileRunner(argv0); err != nil {
			if trace {
				fmt.Fprintf(os.Stderr, "pybox trace: runner code for %s: %v (using the source)\n", argv0, err)
			}
			c.code = nil
		} else {
			storeCode(key, c.code)
		}
	}
	codeCache.m[key] = c
	return c.code, c.src
}

// indexAhead makes the cache's ahead index name src, the code of the
// default interpreter argv0 read from its file, for this executable; once
// per process, and only when it names something else.
func indexAhead(argv0 string, src codecache.Source) {
	codeCache.Lock()
	defer codeCache.Unlock()
	dir := codeCacheDir()
	if dir == "" || src.File == (codecache.FileID{}) || codeCache.indexed == src.Key {
		return
	}
	codeCache.indexed = src.Key
	exe, ok1 := codecache.Stat("/proc/self/exe")
	interp, ok2 := codecache.Stat(argv0)
	if !ok1 || !ok2 {
		return
	}
	want := codecache.Index(exe, argv0, interp, src.Key)
	p := codecache.IndexPath(dir)
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, want) {
		return
	}
	_ = atomicfile.Write(p, "ahead.tmp*", want, 0o600)
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
		return codecache.Dir(d)
	}
	return ""
}

// loadCode reads key's cache file; it returns the payload and the version
// of the file it read, or nil.
func loadCode(key string) ([]byte, codecache.FileID) {
	dir := codeCacheDir()
	if dir == "" {
		return nil, codecache.FileID{}
	}
	f, err := os.Open(codecache.CodePath(dir, key))
	if err != nil {
		return nil, codecache.FileID{}
	}
	defer f.Close()
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil || st.Size < int64(codecache.HeaderLen) || st.Size > int64(codecache.HeaderLen+maxRunnerCode) {
		return nil, codecache.FileID{}
	}
	b := make([]byte, st.Size)
	m := codecache.Magic
	if _, err := io.ReadFull(f, b); err != nil || string(b[:len(m)]) != m {
		return nil, codecache.FileID{}
	}
	sum, payload := b[len(m):codecache.HeaderLen], b[codecache.HeaderLen:]
	if got := sha256.Sum256(payload); !bytes.Equal(got[:], sum) || len(payload) == 0 {
		return nil, codecache.FileID{}
	}
	return payload, codecache.StatID(&st)
}

// storeCode writes the cache file atomically; failures only cost speed.
func storeCode(key string, code []byte) {
	dir := codeCacheDir()
	if dir == "" || os.MkdirAll(dir, 0o700) != nil {
		return
	}
	sum := sha256.Sum256(code)
	if atomicfile.Write(codecache.CodePath(dir, key), key+".tmp*", append(append([]byte(codecache.Magic), sum[:]...), code...), 0o600) != nil {
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
