//go:build !unix

package stamp

import "os"

// Installed returns Path(dir) when a build with a stamp finds a sound copy
// there: a regular file that only its owner may write.
func Installed(dir string) (string, bool) {
	if Value == "" || dir == "" {
		return "", false
	}
	p := Path(dir)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 {
		return "", false
	}
	return p, true
}
