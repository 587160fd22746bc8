//go:build unix

package stamp

import "syscall"

// Installed returns Path(dir) when a build with a stamp finds a sound copy
// there: a regular file that only its owner may write, owned by this
// process's user.
func Installed(dir string) (string, bool) {
	if Value == "" || dir == "" {
		return "", false
	}
	p := Path(dir)
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return "", false
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Mode&0o022 != 0 || int(st.Uid) != syscall.Geteuid() {
		return "", false
	}
	return p, true
}
