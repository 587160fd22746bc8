//go:build !linux

package initproc

func run() {}
