package pybox

import "github.com/pybox-dev/pybox/internal/initproc"

// Init must be called first thing in main (or from a func init) by every
// program that uses the native backend. When the process was started as a
// sandbox's init (pybox re-executes its own binary), Init runs the sandbox
// and never returns; otherwise it returns at once.
func Init() { initproc.MaybeRun() }
