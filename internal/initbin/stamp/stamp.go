// Package stamp is the identity of the sandbox init embedded in this build
// (see internal/initbin) and the lookup of its installed copy. It is apart
// from initbin and uses package syscall only, so that code running at the
// very start of pybox (internal/spawn/early) can find the installed init
// before os and initbin's dependencies (crypto) are initialised.
package stamp

// Value is the SHA-256 (hex) of the embedded bin/pybox-init, set by the
// Makefile with -ldflags "-X github.com/pybox-dev/pybox/internal/initbin/stamp.Value=...".
// Empty: no init is embedded.
var Value string

// Path is where the embedded init is installed under dir.
func Path(dir string) string {
	return dir + "/pybox-init-" + Value[:min(len(Value), 32)]
}
