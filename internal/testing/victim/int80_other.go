//go:build !amd64

package victim

// I386Syscall returns ErrUnsupported: it needs x86_64.
func I386Syscall(nr uintptr) (int64, error) {
	return 0, ErrUnsupported
}
