package load

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Filter sets no_new_privs and loads filter on every thread of this process
// (SECCOMP_FILTER_FLAG_TSYNC). It cannot be undone: call it only in the
// sandbox init or in a test subprocess.
func Filter(filter []byte) error {
	const size = int(unsafe.Sizeof(unix.SockFilter{}))
	if len(filter) == 0 || len(filter)%size != 0 || len(filter)/size > 4096 {
		return fmt.Errorf("seccomp: a filter of %d bytes is not a BPF program", len(filter))
	}
	prog := make([]unix.SockFilter, len(filter)/size)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(filter)), filter)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: set no_new_privs: %w", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	switch {
	case errno != 0:
		return fmt.Errorf("seccomp: load the filter: %w", errno)
	case r != 0:
		// TSYNC failed: r is the id of a thread that could not be synced.
		return fmt.Errorf("seccomp: load the filter: thread %d cannot be synchronized", r)
	}
	return nil
}
