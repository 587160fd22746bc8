//go:build !linux

package landlock

import "fmt"

// ABI returns 0: Landlock needs Linux.
func ABI() int { return 0 }

// Restrict fails unless c.BestEffort, in which case it enforces nothing and
// reports every requested layer as missing.
func Restrict(c Config) (Info, error) {
	info := Info{Missing: []string{LayerFilesystem}}
	if c.DenyNet {
		info.Missing = append(info.Missing, LayerNetwork)
	}
	if c.Scope {
		info.Missing = append(info.Missing, LayerScope)
	}
	if !c.BestEffort {
		return Info{}, fmt.Errorf("%w: Landlock needs Linux", ErrUnsupported)
	}
	return info, nil
}
