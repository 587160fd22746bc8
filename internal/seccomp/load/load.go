// Package load installs an already built seccomp filter (a struct
// sock_filter array, as internal/seccomp.Raw makes it). It is separate from
// internal/seccomp so that the sandbox init, which gets its filter built by
// the parent, does not link the filter compiler: that one's package
// initialisers (syscall tables of every architecture) cost about 1 ms of
// every sandbox start.
package load

import "errors"

// ErrUnsupported is returned where seccomp does not exist.
var ErrUnsupported = errors.New("seccomp: not supported on this platform")
