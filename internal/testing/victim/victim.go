// Package victim holds compiled helpers that tests use to prove denials with
// the real kernel: calls no Go API makes, such as a 32-bit syscall from a
// 64-bit process.
package victim

import "errors"

// ErrUnsupported is returned where a helper does not exist for this
// architecture.
var ErrUnsupported = errors.New("victim: not supported on this architecture")
