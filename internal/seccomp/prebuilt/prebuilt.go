// Package prebuilt holds the native backend's seccomp filters, assembled
// ahead of time from internal/seccomp's deny-list by `go generate` (see
// gen/). Building them at run time linked github.com/elastic/go-seccomp-bpf
// into pybox, whose package initialisers (syscall tables of every
// architecture) and the build itself cost every one-shot `pybox run` about
// half a millisecond of CPU.
//
// The generated file covers amd64 and arm64. Elsewhere the filters are
// built at run time, as before. TestPrebuiltIsCurrent fails when the
// deny-list changed and the file was not regenerated.
package prebuilt

//go:generate go run ./gen -o zfilters.go

import (
	"errors"
	"runtime"

	"github.com/pybox-dev/pybox/internal/spawn"
)

// Kind names one of the filters.
type Kind int

const (
	// Default is every cold sandbox's filter.
	Default Kind = iota
	// Template is a fork-server template's: the default one, less the
	// namespace and mount syscalls (spawn.TemplateAllow) it needs to
	// build each child's sandbox.
	Template
	// Child is the small filter each fork-server child stacks on the
	// template's: it denies exactly spawn.TemplateAllow.
	Child
	kinds
)

// Spec is the kind's internal/seccomp.Options, field by field.
func (k Kind) Spec() (allow, only []string) {
	switch k {
	case Template:
		return spawn.TemplateAllow, nil
	case Child:
		return nil, spawn.TemplateAllow
	}
	return nil, nil
}

// Filter is a built filter.
type Filter struct {
	// Raw is the kernel's struct sock_filter array, in this machine's byte
	// order.
	Raw []byte
	// Summary is internal/seccomp's Info.Summary for it.
	Summary string
}

// filterData is one generated filter (strings: static data, no
// initialiser runs for it).
type filterData struct {
	raw     string
	summary string
}

// ErrUnknownKind is Get's answer to a Kind out of range.
var ErrUnknownKind = errors.New("seccomp: unknown prebuilt filter kind")

// Get returns the filter of kind k for this machine's architecture.
func Get(k Kind) (Filter, error) {
	if k < 0 || k >= kinds {
		return Filter{}, ErrUnknownKind
	}
	if t := generated(runtime.GOARCH); t != nil {
		return Filter{Raw: []byte(t[k].raw), Summary: t[k].summary}, nil
	}
	return build(k)
}
