//go:build !(amd64 || arm64)

package prebuilt

import "github.com/pybox-dev/pybox/internal/seccomp"

// build assembles a filter at run time, on an architecture the generated
// file does not cover.
func build(k Kind) (Filter, error) {
	allow, only := k.Spec()
	raw, info, err := seccomp.Raw(seccomp.Options{Allow: allow, Only: only})
	if err != nil {
		return Filter{}, err
	}
	return Filter{Raw: raw, Summary: info.Summary}, nil
}
