// Package native is the parent side of the native Linux backend: it starts
// the sandbox init (a re-exec of the pybox binary, package initproc) in new
// user, pid, mount, network, ipc, uts and cgroup namespaces inside a fresh
// cgroup, feeds it the request, watches output and limits, and builds the
// Result. Every status caused by a limit is decided here from what the
// parent observed, never from a message sent by the sandbox.
package native

import "github.com/pybox-dev/pybox/internal/backend"

// Name is the backend's name.
const Name = "native"

func init() { backend.Register(Name, newBackend) }
