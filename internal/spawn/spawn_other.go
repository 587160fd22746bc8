//go:build !linux

package spawn
