// Package prime makes the kernel's cgroup v1 migrations of the next few
// milliseconds fast (see Migration). It uses package syscall only, so that
// pybox can call it from a package initialiser (internal/spawn/early),
// ahead of the rest of its own start. Its mountinfo parser (Mounts) and
// MountDir, which maps a cgroup path to its directory under a mount, are
// internal/cgroup's too.
package prime
