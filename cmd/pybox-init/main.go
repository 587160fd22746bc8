// Command pybox-init is the native backend's sandbox init on its own: the
// same code as pybox's re-executed init (internal/initproc), in a binary a
// fifth the size of pybox, so that it starts in about half the time. The
// Makefile builds it and embeds it in pybox (internal/initbin); pybox runs
// it as the first process of every native sandbox. It is not meant to be
// run by hand.
package main

import (
	"fmt"
	"os"

	"github.com/pybox-dev/pybox/internal/initproc"
)

func main() {
	initproc.MaybeRun() // does not return when started by pybox
	fmt.Fprintln(os.Stderr, "pybox-init is the sandbox init of pybox's native backend; pybox starts it, it is not run by hand")
	os.Exit(2)
}
