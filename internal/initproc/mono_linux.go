package initproc

import "golang.org/x/sys/unix"

// MonoNow is CLOCK_MONOTONIC in ns: comparable across processes, unlike
// time.Now's monotonic reading. Used for tracing.
func MonoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
