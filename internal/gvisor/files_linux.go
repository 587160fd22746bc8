package gvisor

import (
	"io/fs"
	"os"
	"path"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/guest"
)

// writeFiles writes the request's input files into the work tmpfs, owned
// by the sandbox user. Names were validated (relative, no "..").
func writeFiles(dir string, files []api.File) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range files {
		if d := path.Dir(f.Name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return &api.InputError{Field: "files", Msg: f.Name + ": " + err.Error()}
			}
			for p := d; p != "." && p != "/"; p = path.Dir(p) {
				if err := root.Lchown(p, sandboxUID, sandboxGID); err != nil {
					return err
				}
			}
		}
		mode := fs.FileMode(f.Mode)
		if mode == 0 {
			mode = 0o644
		}
		fh, err := root.OpenFile(f.Name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
		if err != nil {
			return &api.InputError{Field: "files", Msg: f.Name + ": " + err.Error()}
		}
		_, err = fh.Write(f.Data)
		if err == nil {
			err = fh.Chown(sandboxUID, sandboxGID)
		}
		if err == nil {
			err = fh.Chmod(mode) // not narrowed by the umask
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return &api.InputError{Field: "files", Msg: f.Name + ": " + err.Error()}
		}
	}
	return nil
}

// collect returns every regular file under dir, at most limit bytes in all,
// never following symlinks. It runs after every process of the sandbox is
// dead, so nothing can swap a path while it walks; os.Root also keeps every
// open inside dir.
func collect(dir string, limit int64) (files []api.OutFile, truncated bool) {
	truncated = guest.Collect(dir, limit, func(f api.OutFile) error {
		files = append(files, f)
		return nil
	})
	return files, truncated
}
