package guest

import (
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/api"
)

// Collect walks dir and hands emit every regular file, never following a
// symlink (os.Root keeps every open inside dir, O_NOFOLLOW refuses a link
// in the last element), at most limit bytes in all. Callers first kill
// every process that could write to dir, so nothing can swap a path while
// it walks. truncated says the limit left files out; an error from emit
// stops the walk.
func Collect(dir string, limit int64, emit func(api.OutFile) error) (truncated bool) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false
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
		if emit(api.OutFile{Name: p, Size: int64(len(data)), Mode: uint32(fi.Mode().Perm()), Data: data}) != nil {
			return fs.SkipAll
		}
		return nil
	})
	return truncated
}
