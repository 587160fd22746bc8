//go:build !linux

package require

import "errors"

func userNSErr() error { return errors.New("user namespaces need Linux") }

// LandlockABI returns 0: Landlock needs Linux.
func LandlockABI() int { return 0 }

func seccompSupported() bool { return false }
