package wasm

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"

	"github.com/pybox-dev/pybox/internal/api"
)

// readOnlyRoot exposes a host directory read-only through os.Root, which
// refuses to follow symlinks out of it.
func readOnlyRoot(host string) (experimentalsys.FS, error) {
	fi, err := os.Stat(host)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("host path %s is not a directory (the wasm backend mounts directories only)", host)
	}
	root, err := os.OpenRoot(host)
	if err != nil {
		return nil, err
	}
	return &sysfs.AdaptFS{FS: root.FS()}, nil
}

// writeInputs copies the request's files into the work directory through
// an os.Root, so nothing lands outside it.
func writeInputs(workDir string, files []api.File) error {
	if len(files) == 0 {
		return nil
	}
	root, err := os.OpenRoot(workDir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range files {
		name, err := api.CleanFileName(f.Name)
		if err != nil {
			return &api.InputError{Field: "files", Msg: err.Error()}
		}
		if dir := path.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return &api.InputError{Field: "files", Msg: fmt.Sprintf("file %q: %v", name, err)}
			}
		}
		mode := fs.FileMode(f.Mode & 0o777)
		if mode == 0 {
			mode = 0o644
		}
		w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o200)
		if err != nil {
			return &api.InputError{Field: "files", Msg: fmt.Sprintf("file %q: %v", name, err)}
		}
		_, werr := w.Write(f.Data)
		cerr := w.Close()
		if werr != nil || cerr != nil {
			return fmt.Errorf("write input file %q: %v", name, errorsJoin(werr, cerr))
		}
	}
	return nil
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// collectFiles returns the regular files under workDir, sorted by name,
// with their contents while their total stays within limit. Symlinks and
// other special files are skipped and never followed.
func collectFiles(workDir string, limit int64) ([]api.OutFile, bool, error) {
	root, err := os.OpenRoot(workDir)
	if err != nil {
		return nil, false, err
	}
	defer root.Close()
	var names []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skip
		}
		if d.Type().IsRegular() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	sort.Strings(names)
	var out []api.OutFile
	var total int64
	truncated := false
	for _, n := range names {
		fi, err := root.Lstat(n)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if total+fi.Size() > limit {
			truncated = true
			continue
		}
		f, err := root.OpenFile(n, os.O_RDONLY|oNoFollow, 0)
		if err != nil {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(f, limit-total+1))
		f.Close()
		if err != nil {
			continue
		}
		if total+int64(len(data)) > limit {
			truncated = true
			continue
		}
		total += int64(len(data))
		out = append(out, api.OutFile{
			Name: filepath.ToSlash(n),
			Size: int64(len(data)),
			Mode: uint32(fi.Mode().Perm()),
			Data: data,
		})
	}
	return out, truncated, nil
}

func toValidUTF8(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }
