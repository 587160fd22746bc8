//go:build !linux

package prime

import "errors"

// Migration returns an error: cgroups exist only on Linux.
func Migration() error { return errors.New("cgroup: not supported on this platform") }

// Since returns nanoseconds longer than any caller waits for.
func Since() int64 { return 1 << 62 }
