package wasm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Files of a python.wasm distribution directory (scripts/build-python-wasm.sh).
const (
	wasmFile = "python.wasm"
	// reactorFile is CPython linked as a WASI reactor with pybox's entry
	// points (scripts/wasm/pybox_entry.c); used instead of wasmFile when
	// present.
	reactorFile = "pybox.wasm"
	stdlibZip   = "lib/python311.zip"
	// EnvDir names the directory holding python.wasm and lib/.
	EnvDir = "PYBOX_WASM_DIR"
	// EnvPool sets the number of pre-started interpreters (0 disables).
	EnvPool = "PYBOX_WASM_POOL"
	// EnvCache overrides the compilation cache directory (memory
	// snapshots are kept there too).
	EnvCache = "PYBOX_WASM_CACHE"
	// EnvSnapshot set to 0 disables memory snapshots: every interpreter
	// then starts CPython from scratch.
	EnvSnapshot = "PYBOX_WASM_SNAPSHOT"
)

// ErrNoPythonWasm is wrapped when python.wasm cannot be found.
var ErrNoPythonWasm = errors.New("python.wasm not found")

// FindDir returns the directory holding python.wasm and lib/python311.zip:
// $PYBOX_WASM_DIR if set, else build/wasm of the source tree this package
// was built from (development), else build/wasm in the working directory or
// one of its parents, else the directory of the executable (and its wasm/
// subdirectory).
func FindDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		if err := checkDir(d); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvDir, d, err)
		}
		return d, nil
	}
	var tried []string
	try := func(d string) bool {
		if d == "" {
			return false
		}
		tried = append(tried, d)
		return checkDir(d) == nil
	}
	// The module root this package was compiled from (go test, go run).
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if d := filepath.Join(root, "build", "wasm"); try(d) {
			return d, nil
		}
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if c := filepath.Join(d, "build", "wasm"); try(c) {
				return c, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		exeDir := filepath.Dir(exe)
		for _, d := range []string{exeDir, filepath.Join(exeDir, "wasm")} {
			if try(d) {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("%w (looked in %v): build it with `make python-wasm` (scripts/build-python-wasm.sh) or set %s to a directory holding python.wasm and lib/python311.zip",
		ErrNoPythonWasm, tried, EnvDir)
}

func checkDir(d string) error {
	for _, f := range []string{wasmFile, stdlibZip} {
		fi, err := os.Stat(filepath.Join(d, f))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoPythonWasm, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: %s is not a regular file", ErrNoPythonWasm, filepath.Join(d, f))
		}
	}
	return nil
}

// cacheDir is where compiled machine code is kept between processes:
// $PYBOX_WASM_CACHE, else /var/cache/pybox/wazero for root, else
// <user cache dir>/pybox/wazero. "" disables the persistent cache.
func cacheDir() string {
	if d, ok := os.LookupEnv(EnvCache); ok {
		return d
	}
	if os.Getenv("XDG_CACHE_HOME") == "" && runtime.GOOS == "linux" && os.Geteuid() == 0 {
		return "/var/cache/pybox/wazero"
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "pybox", "wazero")
}
