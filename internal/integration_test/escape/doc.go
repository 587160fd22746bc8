// Package escape is pybox's escape and abuse suite: each test runs hostile
// Python in a real sandbox and asserts both that the attack failed (from the
// Result and markers the code prints) and that the host is unchanged (files,
// processes, signals, sockets, mounts and cgroups checked on the host after
// the run).
//
// Tests drive the root package only, as an embedder would. The backend is
// "native" unless PYBOX_ESCAPE_BACKEND names another one. Host requirements
// go through internal/testing/require, so PYBOX_REQUIRE_ISOLATION=1 turns
// every skip into a failure. A failing test here is a sandbox escape or a
// broken limit: it must fail CI.
package escape
