//go:build !linux

package prime

import (
	"errors"
	"time"
)

// Migration returns an error: cgroups exist only on Linux.
func Migration() error { return errors.New("cgroup: not supported on this platform") }

// Since returns a duration longer than any caller waits for.
func Since() time.Duration { return 1 << 62 }
