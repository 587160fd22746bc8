//go:build !linux

package cgroup

// Detect returns ErrUnsupported: cgroups exist only on Linux.
func Detect() (Info, error) { return Info{}, ErrUnsupported }

// Group is a cgroup; it cannot be created on this platform.
type Group struct{}

// New returns ErrUnsupported.
func New(name string, l Limits) (*Group, error) { return nil, ErrUnsupported }

// Version returns "".
func (g *Group) Version() string { return "" }

// Name returns "".
func (g *Group) Name() string { return "" }

// Dirs returns nil.
func (g *Group) Dirs() []string { return nil }

// AddProc returns ErrUnsupported.
func (g *Group) AddProc(pid int) error { return ErrUnsupported }

// FD returns ok=false.
func (g *Group) FD() (fd int, ok bool) { return -1, false }

// Stats returns ErrUnsupported.
func (g *Group) Stats() (Stats, error) { return Stats{}, ErrUnsupported }

// Reuse returns ErrUnsupported.
func (g *Group) Reuse() error { return ErrUnsupported }

// Kill returns ErrUnsupported.
func (g *Group) Kill() error { return ErrUnsupported }

// Delete returns nil: there is nothing to remove.
func (g *Group) Delete() error { return nil }

// Cleanup returns nil: there is nothing to remove.
func Cleanup() error { return nil }

// Empty is not supported off Linux.
func (g *Group) Empty() (bool, error) { return false, ErrUnsupported }

// PidsCurrent returns ErrUnsupported.
func (g *Group) PidsCurrent() (int64, error) { return 0, ErrUnsupported }

// ProcsFiles returns ErrUnsupported.
func (g *Group) ProcsFiles() ([]int, error) { return nil, ErrUnsupported }
