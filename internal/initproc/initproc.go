// Package initproc is the child side of the native backend: it runs as pid 1
// inside the new namespaces, builds the sandbox step by step and supervises
// the interpreter.
package initproc

import (
	"os"

	"github.com/pybox-dev/pybox/internal/spawn"
)

// Arg0 marks a process started as a sandbox init.
const Arg0 = spawn.Arg0

// MaybeRun runs the sandbox init and exits if this process is one.
func MaybeRun() {
	if len(os.Args) > 0 && os.Args[0] == Arg0 {
		run()
		os.Exit(255)
	}
}

// init dispatches as early as Go allows: package initialisation runs in
// dependency order, so the sandbox init starts before the packages it does
// not import (HTTP, MCP, metrics, wazero) spend time initialising.
func init() { MaybeRun() }
