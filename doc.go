// Package pybox runs untrusted Python safely and fast.
//
// One [Request] describes the code, its inputs and the policy it runs under;
// one [Result] describes what happened. Every front end (this library, the
// pybox CLI, the HTTP API and the MCP server) speaks these two types.
//
// # Backends
//
//   - native: Linux namespaces, seccomp, Landlock and cgroups around the real
//     CPython (numpy, pandas, matplotlib work).
//   - gvisor: the same sandbox under runsc, a user-space kernel.
//   - wasm: CPython compiled to WASI, run in-process by wazero (stdlib only;
//     portable to macOS and Windows).
//
// # Sessions and the fork server
//
// [Sandbox.NewSession] starts a long-lived sandbox whose globals, imports
// and files persist between executions, like a notebook kernel.
// [Options.ForkServer] keeps a warm template per policy (numpy already
// imported) and forks a fresh, fully isolated sandbox from it for every
// execution: the fast path for servers and agents.
//
// # Re-exec
//
// The native backend re-executes the current binary as the sandbox's init
// process. Programs that embed pybox must call [Init] first thing in main
// (or in a func init), before flags are parsed:
//
//	func main() {
//		pybox.Init()
//		...
//	}
//
// # Honesty
//
// A layer that cannot be enforced is an error, unless the request sets
// BestEffort; Result.Isolation always lists what was actually in force.
package pybox
