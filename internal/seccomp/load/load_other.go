//go:build !linux

package load

// Filter returns ErrUnsupported: seccomp needs Linux.
func Filter(filter []byte) error { return ErrUnsupported }
