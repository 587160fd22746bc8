//go:build !linux

package seccomp

import "golang.org/x/net/bpf"

// Build returns ErrUnsupported: seccomp needs Linux.
func Build(opts Options) ([]bpf.Instruction, Info, error) {
	return nil, Info{}, ErrUnsupported
}

// Install returns ErrUnsupported: seccomp needs Linux.
func Install(opts Options) (Info, error) {
	return Info{}, ErrUnsupported
}

// Supported reports false: seccomp needs Linux.
func Supported() bool { return false }
