// Command plainwazero runs python.wasm the plainest way wazero allows (a
// compilation cache, the stdlib mounted, `-c CODE`), as the baseline the
// wasm backend's cold start is compared with.
//
// Usage: plainwazero WASM_DIR CACHE_DIR CODE
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: plainwazero WASM_DIR CACHE_DIR CODE")
		os.Exit(2)
	}
	dir, cacheDir, code := os.Args[1], os.Args[2], os.Args[3]
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	bin, err := os.ReadFile(filepath.Join(dir, "python.wasm"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := wazero.NewModuleConfig().
		WithArgs("python", "-I", "-B", "-c", code).
		WithStdout(os.Stdout).WithStderr(os.Stderr).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(filepath.Join(dir, "lib"), "/usr/local/lib"))
	_, err = rt.InstantiateWithConfig(ctx, bin, cfg)
	if exit, ok := err.(*sys.ExitError); ok {
		os.Exit(int(exit.ExitCode()))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
