// Package early starts a sandbox init from its package initialiser when the
// process is a `pybox run` whose backend will be native (see
// spawn.Early). cmd/pybox imports it for that side effect; it imports
// little, so Go initialises it about 1 ms after exec, before the HTTP, MCP,
// metrics and WebAssembly packages. For an init started ahead (one that
// starts a default request's interpreter before its config comes) it also
// writes the runner's cached compiled code to the interpreter's input
// (codecache.PreSend).
package early
