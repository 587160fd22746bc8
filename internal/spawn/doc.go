// Package spawn starts a native sandbox's init process: the namespaces, user
// id maps and descriptor layout that pybox and its init (internal/initproc)
// agree on.
//
// [Early] starts one at the very beginning of a `pybox run`, from a package
// initialiser (internal/spawn/early), before the rest of pybox has
// initialised; the native backend's first cold start takes it with
// [TakeEarly]. The clone, the init's exec and its Go start-up then overlap
// pybox's own start instead of following it. Nothing of the user's reaches
// the early init before the backend has validated the request and sent its
// config, and an early init that is never taken exits when pybox does
// (end of file on its control socket, and a parent-death signal).
package spawn
