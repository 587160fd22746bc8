//go:build unix

package wasm

import "syscall"

const oNoFollow = syscall.O_NOFOLLOW
