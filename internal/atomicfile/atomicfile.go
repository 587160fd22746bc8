// Package atomicfile writes a file so that readers see either its old
// content or the whole new one, never a part: to a temporary file in the
// same directory, then renamed into place. pybox's caches (the init
// program, the runner's compiled code and its index) are written this
// way, so a file under one name is never rewritten in place.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write makes path hold data, with permissions perm (set with chmod: the
// umask does not apply). The temporary file is named from pattern
// (os.CreateTemp) in path's directory, and removed on failure.
func Write(path, pattern string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
