package gvisor

import (
	"io"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/api"
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
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, false
	}
	defer root.Close()
	budget := limit
	_ = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		f, err := root.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		if fi.Size() > budget {
			truncated = true
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(f, budget+1))
		if err != nil || int64(len(data)) > budget {
			truncated = true
			return nil
		}
		budget -= int64(len(data))
		files = append(files, api.OutFile{Name: p, Size: int64(len(data)), Mode: uint32(fi.Mode().Perm()), Data: data})
		return nil
	})
	return files, truncated
}
