package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
)

// # Fast loading: the module's shape
//
// wazero's CompileModule decodes, validates and hashes the whole binary
// even when the compiled machine code is in its cache: for pybox.wasm that
// is 40-80 ms of a cold start, more than everything else. The module's
// "shape" is pybox.wasm with every function body replaced by
// `unreachable`, no data segments, and a custom section naming the binary
// it came from (its file identity): same types, imports, functions, table,
// memory, globals and exports, 50 KB instead of 6.6 MB. Once, pybox.wasm is
// compiled into an empty cache directory and the resulting cache entry is
// stored under the shape's cache key; from then on CompileModule(shape)
// validates 50 KB and loads the real machine code. The instance's memory is
// filled by the host instead of by data segments: from the snapshot, or
// from pybox.wasm's data segments for a fresh start.
//
// This relies on wazero's compilation cache keeping one file per module
// (named by a key pybox cannot compute, hence the empty directories), and
// on compiled code depending only on the function bodies and the module's
// declarations. It is enabled only for the wazero versions it was checked
// with, and checked on every use: if the entry stored for the shape was not
// the one loaded (a miss compiles the stubs and rewrites the file), the
// shape is dropped and pybox.wasm is compiled the normal way.

// shapeWazero lists the wazero versions the shape's cache layout was
// checked with.
var shapeWazero = map[string]bool{"v1.12.0": true}

// shapeFormat changes when makeShape's output changes.
const shapeFormat = 1

// shapeEnabled says whether this build's wazero is one the shape works with.
func shapeEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/tetratelabs/wazero" {
			v := d.Version
			if d.Replace != nil {
				return false
			}
			return shapeWazero[v]
		}
	}
	return false
}

// makeShape returns the shape of bin (see above); id identifies bin.
func makeShape(bin []byte, id []byte) ([]byte, error) {
	if len(bin) < 8 {
		return nil, fmt.Errorf("%w: no wasm header", errModule)
	}
	out := make([]byte, 0, 64<<10)
	out = append(out, bin[:8]...)
	err := sections(bin, func(id byte, raw []byte, body *reader) error {
		switch id {
		case 0, 11, 12: // custom sections, data, data count
		case 10: // code: one `unreachable` per function
			n := body.u32()
			if body.err != nil {
				return fmt.Errorf("%w: code section", errModule)
			}
			sec := appendU32(nil, n)
			for range n {
				sec = append(sec, 3, 0, 0x00, 0x0b) // size, no locals, unreachable, end
			}
			out = appendSection(out, 10, sec)
		default:
			out = append(out, raw...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	name := "pybox.shape"
	cs := appendU32(nil, uint32(len(name)))
	cs = append(cs, name...)
	cs = fmt.Appendf(cs, "format %d\n", shapeFormat)
	cs = append(cs, id...)
	return appendSection(out, 0, cs), nil
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendSection(b []byte, id byte, body []byte) []byte {
	b = append(b, id)
	b = appendU32(b, uint32(len(body)))
	return append(b, body...)
}

// shapeMarker records where the shape's cache entry is, to check that
// CompileModule(shape) loaded it.
type shapeMarker struct {
	Entry string `json:"entry"` // relative to the cache directory
	Size  int64  `json:"size"`
}

func shapeMarkerPath(cacheDir string, shape []byte) string {
	h := sha256.Sum256(shape)
	return filepath.Join(cacheDir, fmt.Sprintf("pybox-shape-%x.json", h[:12]))
}

// entryStat identifies a cache entry's file: a cache miss or a stale entry
// replaces or removes it.
type entryStat struct {
	size int64
	mod  int64
	ino  uint64
}

func statEntry(path string) (entryStat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return entryStat{}, err
	}
	if !fi.Mode().IsRegular() {
		return entryStat{}, fmt.Errorf("%s is not a regular file", path)
	}
	return entryStat{size: fi.Size(), mod: fi.ModTime().UnixNano(), ino: inode(fi)}, nil
}

// readShapeMarker returns the shape's cache entry, if it was prepared.
func readShapeMarker(cacheDir string, shape []byte) (string, entryStat, error) {
	b, err := os.ReadFile(shapeMarkerPath(cacheDir, shape))
	if err != nil {
		return "", entryStat{}, err
	}
	var m shapeMarker
	if err := json.Unmarshal(b, &m); err != nil || m.Entry == "" || !filepath.IsLocal(m.Entry) {
		return "", entryStat{}, errors.New("bad shape marker")
	}
	path := filepath.Join(cacheDir, m.Entry)
	st, err := statEntry(path)
	if err != nil {
		return "", entryStat{}, err
	}
	if st.size != m.Size {
		return "", entryStat{}, errors.New("the shape's cache entry changed")
	}
	return path, st, nil
}

// prepareShape compiles bin and shape each in an empty cache directory and
// stores bin's compiled code under shape's cache key in cacheDir.
func prepareShape(ctx context.Context, cacheDir string, bin, shape []byte) error {
	tmp, err := os.MkdirTemp(cacheDir, ".pybox-shape-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	entry := func(name string, module []byte) (string, error) {
		dir := filepath.Join(tmp, name)
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return "", err
		}
		rt := wazero.NewRuntimeWithConfig(ctx, runtimeConfig().WithCompilationCache(cache))
		_, err = rt.CompileModule(ctx, module)
		_ = rt.Close(ctx)
		_ = cache.Close(ctx)
		if err != nil {
			return "", err
		}
		var files []string
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return "", err
		}
		if len(files) != 1 {
			return "", fmt.Errorf("compiling %s left %d files in an empty cache, want 1", name, len(files))
		}
		return filepath.Rel(dir, files[0])
	}
	full, err := entry("full", bin)
	if err != nil {
		return err
	}
	rel, err := entry("shape", shape)
	if err != nil {
		return err
	}
	if filepath.Dir(full) != filepath.Dir(rel) {
		return fmt.Errorf("cache entries in different directories (%s, %s)", full, rel)
	}
	code, err := os.ReadFile(filepath.Join(tmp, "full", full))
	if err != nil {
		return err
	}
	dst := filepath.Join(cacheDir, rel)
	if err := writeAtomic(dst, code); err != nil {
		return err
	}
	m, _ := json.Marshal(shapeMarker{Entry: rel, Size: int64(len(code))})
	marker := shapeMarkerPath(cacheDir, shape)
	if err := writeAtomic(marker, m); err != nil {
		return err
	}
	pruneShapes(cacheDir, filepath.Base(marker))
	return nil
}

// pruneShapes removes the shapes of other builds of pybox.wasm that were
// prepared more than pruneAge ago: each one's marker and the cache entry
// (15 MB of machine code) it names.
func pruneShapes(cacheDir, keep string) {
	ents, err := os.ReadDir(cacheDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if n == keep || !strings.HasPrefix(n, "pybox-shape-") || !strings.HasSuffix(n, ".json") {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) <= pruneAge {
			continue
		}
		p := filepath.Join(cacheDir, n)
		if b, err := os.ReadFile(p); err == nil {
			var m shapeMarker
			if json.Unmarshal(b, &m) == nil && m.Entry != "" && filepath.IsLocal(m.Entry) {
				_ = os.Remove(filepath.Join(cacheDir, m.Entry))
			}
		}
		_ = os.Remove(p)
	}
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".pybox-tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// runtimeConfig is the configuration of every runtime: the compiled code
// (and so its cache key) depends on it.
func runtimeConfig() wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().WithCloseOnContextDone(true)
}
