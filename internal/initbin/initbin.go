// Package initbin carries the small sandbox-init program (cmd/pybox-init)
// inside pybox, when the build embedded one.
//
// The native backend starts every sandbox by executing an init program
// in the new namespaces. pybox itself can be that program (it re-executes
// /proc/self/exe, and internal/initproc takes over from a package
// initialiser), but a 20 MB binary with an HTTP server, an MCP server and
// a WebAssembly runtime pays for all their package initialisers and page
// faults first: about 2.5 ms before init's first step, against about 1 ms
// for cmd/pybox-init, which links only the init. The Makefile builds
// cmd/pybox-init into bin/ here, embeds it, and sets the stamp (package
// stamp) to its SHA-256 with -ldflags, so a pybox built any other way (go build, go install)
// has no stamp and keeps re-executing itself: a stale bin/pybox-init left
// from another build is never used.
//
// [Path] writes the embedded program once to a cache directory (named by
// its hash, checked when written; mode 0555 in a directory others can
// search, since the sandbox's init runs as an unprivileged host uid) and
// returns its path.
package initbin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/atomicfile"
	"github.com/pybox-dev/pybox/internal/initbin/stamp"
)

//go:embed bin
var files embed.FS

var (
	once sync.Once
	path string
	err  error
)

// Path returns the path of an executable copy of the embedded init under
// dir, writing it there first if needed. The error says why there is none
// (no embedded init, or the copy cannot be made); callers then fall back to
// re-executing pybox.
func Path(dir string) (string, error) {
	once.Do(func() { path, err = install(dir) })
	return path, err
}

func install(dir string) (string, error) {
	if stamp.Value == "" {
		return "", errors.New("no init embedded in this build")
	}
	if dir == "" {
		return "", errors.New("no cache directory")
	}
	if p, ok := stamp.Installed(dir); ok {
		return p, nil
	}
	p := stamp.Path(dir)
	b, err := files.ReadFile("bin/pybox-init")
	if err != nil {
		return "", fmt.Errorf("embedded init: %w", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != stamp.Value {
		return "", errors.New("embedded init does not match its stamp")
	}
	// The sandbox's init executes it as its user namespace's root, which
	// is an unprivileged uid on the host: the file and the directories
	// down to it must be executable and searchable by others.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", err
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				return "", err
			}
		}
	}
	if err := atomicfile.Write(p, ".pybox-init-*", b, 0o555); err != nil {
		return "", err
	}
	prune(dir, filepath.Base(p))
	return p, nil
}

// pruneAge is how old another build's copy must be before a new build
// removes it. A pybox still running that build and needing it afterwards
// falls back to re-executing itself, so removing one is never fatal.
const pruneAge = 24 * time.Hour

// prune removes other builds' copies (and stray temporary files) older
// than pruneAge from dir.
func prune(dir, keep string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if n == keep || !(strings.HasPrefix(n, "pybox-init-") || strings.HasPrefix(n, ".pybox-init-")) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > pruneAge {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
}
