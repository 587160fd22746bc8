package victim

// int80 makes syscall nr through the i386 entry point (int $0x80) with no
// arguments and returns the raw result (a negative errno on failure).
func int80(nr uintptr) uintptr

// I386Syscall makes the i386 syscall nr (for example 20, getpid) from this
// x86_64 process via int $0x80 and returns its raw result. A seccomp filter
// that rejects foreign architectures kills the process instead.
func I386Syscall(nr uintptr) (int64, error) {
	return int64(int32(uint32(int80(nr)))), nil
}
