package initproc

import (
	"maps"
	"os"
	"slices"
)

// Layout is what the sandbox's root is built from besides the user's
// mounts and input files: host directories bound read-only, symlinks,
// host files under /etc, and the size of each writable tmpfs. The native
// backend sends it in every Config; an init whose config has not arrived
// yet builds the root from HostLayout ahead of it (see speculate).
type Layout struct {
	// Binds are host paths mounted at the same path (read-only), e.g. /usr.
	Binds []string `json:"binds"`
	// Symlinks are created in the new root (e.g. lib -> usr/lib).
	Symlinks map[string]string `json:"symlinks"`
	// EtcFiles are host files under /etc bound read-only when present.
	EtcFiles []string `json:"etc_files"`
	// DiskBytes caps each writable tmpfs.
	DiskBytes int64 `json:"disk_bytes"`
}

// Equal reports whether l and o build the same root.
func (l Layout) Equal(o Layout) bool {
	return slices.Equal(l.Binds, o.Binds) && maps.Equal(l.Symlinks, o.Symlinks) &&
		slices.Equal(l.EtcFiles, o.EtcFiles) && l.DiskBytes == o.DiskBytes
}

// etcFiles are host files and directories under /etc the runtime may need;
// those present are bound read-only. passwd, group, hosts and friends are
// generated instead.
var etcFiles = []string{
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
	"/etc/alternatives", "/etc/fonts", "/etc/matplotlibrc", "/etc/mime.types",
	"/etc/python3", "/etc/python3.11", "/etc/python3.12", "/etc/python3.13",
	"/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/timezone",
}

// HostLayout is the layout of an interpreter under /usr on this host with
// disk bytes per tmpfs: /usr, the top-level library and binary
// directories (recreated as symlinks on a usr-merged system, bound
// otherwise) and the /etc files that exist.
func HostLayout(disk int64) Layout {
	l := Layout{Binds: []string{"/usr"}, Symlinks: map[string]string{}, DiskBytes: disk}
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		p := "/" + d
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if t, err := os.Readlink(p); err == nil {
				l.Symlinks[d] = t
			}
		case fi.IsDir():
			l.Binds = append(l.Binds, p)
		}
	}
	for _, f := range etcFiles {
		if _, err := os.Stat(f); err == nil {
			l.EtcFiles = append(l.EtcFiles, f)
		}
	}
	return l
}
