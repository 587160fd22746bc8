package seccomp

import (
	"fmt"
	"unsafe"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/seccomp/load"
)

// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32Bit marks x32 syscall numbers on x86_64.
const x32Bit = 0x40000000

// Build assembles the filter for this architecture (or opts.Arch) without
// installing it.
func Build(opts Options) ([]bpf.Instruction, Info, error) {
	info, err := arch.GetInfo(opts.Arch)
	if err != nil {
		return nil, Info{}, fmt.Errorf("seccomp: %w", err)
	}

	prefix, err := argPrefix(info, len(opts.Only) == 0)
	if err != nil {
		return nil, Info{}, err
	}

	epermGroup := libseccomp.SyscallGroup{Action: libseccomp.ActionErrno | libseccomp.Action(unix.EPERM)}
	enosysGroup := libseccomp.SyscallGroup{Action: libseccomp.ActionErrno | libseccomp.Action(unix.ENOSYS)}
	list := denyList
	if len(opts.Only) > 0 {
		list = nil
		for _, n := range opts.Only {
			list = append(list, denial{name: n, errno: eperm})
		}
	}
	allowed := map[string]bool{}
	for _, n := range opts.Allow {
		allowed[n] = true
	}
	for _, d := range list {
		if allowed[d.name] {
			continue
		}
		if _, ok := info.SyscallNames[d.name]; !ok {
			if info.ID == arch.X86_64.ID {
				// The list is written for x86_64: a missing name is a typo.
				return nil, Info{}, fmt.Errorf("seccomp: unknown syscall %q on %s", d.name, info.Name)
			}
			continue
		}
		switch d.errno {
		case enosys:
			enosysGroup.Names = append(enosysGroup.Names, d.name)
		default:
			epermGroup.Names = append(epermGroup.Names, d.name)
		}
	}
	// BitsSet with a value whose high half is 0 tests only the low half of
	// the flags, where every CLONE_NEW* bit lives.
	epermGroup.NamesWithCondtions = []libseccomp.NameWithConditions{{
		Name: "clone",
		Conditions: libseccomp.ArgumentConditions{{
			Argument: 0, Operation: libseccomp.BitsSet, Value: cloneNewFlags,
		}},
	}}

	policy := libseccomp.Policy{
		DefaultAction: libseccomp.ActionAllow,
		Syscalls:      []libseccomp.SyscallGroup{enosysGroup, epermGroup},
	}
	body, err := policy.Assemble()
	if err != nil {
		return nil, Info{}, fmt.Errorf("seccomp: assemble the deny-list: %w", err)
	}

	// go-seccomp-bpf sends a foreign architecture to the default action
	// (allow); the prefix has already killed it.
	prog := append(prefix, body...)
	if _, err := bpf.Assemble(prog); err != nil {
		return nil, Info{}, fmt.Errorf("seccomp: assemble the filter: %w", err)
	}
	n := len(enosysGroup.Names) + len(epermGroup.Names) + 1 // + clone
	if len(opts.Only) > 0 {
		return prog, Info{Syscalls: n, Instructions: len(prog),
			Summary: fmt.Sprintf("per-child filter: %d syscalls incl. clone namespace flags", n)}, nil
	}
	n += len(argFilters)
	return prog, Info{
		Syscalls:     n,
		Instructions: len(prog),
		Summary: fmt.Sprintf("deny-list: %d syscalls incl. clone namespace flags, ioctl TIOCSTI/TIOCLINUX, personality, MPTCP sockets; %s",
			n, archSummary(info)),
	}, nil
}

func archSummary(info *arch.Info) string {
	if info.ID == arch.X86_64.ID {
		return "i386 killed, x32 ENOSYS"
	}
	return "foreign architectures killed"
}

// argPrefix returns the hand-written start of the filter: the architecture
// check and the argument filters on 32-bit arguments. On a match it returns;
// otherwise it falls through to go-seccomp-bpf's program, which reloads what
// it needs.
func argPrefix(info *arch.Info, withArgs bool) ([]bpf.Instruction, error) {
	nr := func(name string) (uint32, error) {
		n, ok := info.SyscallNames[name]
		if !ok {
			return 0, fmt.Errorf("seccomp: %s missing from the %s table", name, info.Name)
		}
		return uint32(n), nil
	}
	p := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	}
	if info.ID == arch.X86_64.ID {
		p = append(p,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1},
			bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		)
	}
	for _, f := range argFilters {
		if !withArgs {
			break
		}
		n, err := nr(f.syscall)
		if err != nil {
			return nil, err
		}
		p = append(p, f.block(n)...)
	}
	return p, nil
}

// argFilter denies a syscall by the low 32 bits of one argument: when the
// argument is one of values (deny), or none of them (allow-list).
type argFilter struct {
	syscall string
	arg     uint32
	values  []uint32
	deny    bool // values are denied; otherwise only values are allowed
	errno   unix.Errno
	reason  string
}

// argFilters compare 32-bit arguments (int or unsigned int in the kernel).
var argFilters = []argFilter{
	{syscall: "ioctl", arg: 1, values: []uint32{tiocsti, tioclinux}, deny: true, errno: unix.EPERM,
		reason: "TIOCSTI fakes terminal input, TIOCLINUX pastes the console selection"},
	{syscall: "personality", arg: 0, values: []uint32{perLinux, personalityGet}, errno: unix.EPERM,
		reason: "other personalities turn off ASLR (ADDR_NO_RANDOMIZE) or make data executable"},
	{syscall: "socket", arg: 2, values: []uint32{ipprotoMPTCP}, deny: true, errno: unix.EPROTONOSUPPORT,
		reason: "Landlock's TCP rules miss Multipath TCP; EPROTONOSUPPORT, as on a kernel without MPTCP, makes callers fall back to TCP"},
}

// block returns:
//
//	    jne nr, next        ; not this syscall: A still holds nr
//	    ld  arg (low half)
//	    jeq v1 ...          ; deny: to ret; allow-list: to reload
//	    ret errno
//	    ld  nr              ; reload for the next block
//	next:
func (f argFilter) block(nr uint32) []bpf.Instruction {
	k := len(f.values)
	b := []bpf.Instruction{
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: nr, SkipTrue: uint8(k + 3)},
		bpf.LoadAbsolute{Off: argLo(f.arg), Size: 4},
	}
	for i, v := range f.values {
		toRet := uint8(k - 1 - i) // from index 2+i to index k+2
		if f.deny {
			j := bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: toRet}
			if i == k-1 {
				j.SkipFalse = 1 // past the ret, to the reload
			}
			b = append(b, j)
		} else {
			b = append(b, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: toRet + 1})
		}
	}
	return append(b,
		bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(f.errno)},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	)
}

// argLo is the offset of the low 32 bits of syscall argument arg.
func argLo(arg uint32) uint32 {
	off := uint32(offArgs + 8*arg)
	if !littleEndian() {
		off += 4
	}
	return off
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// Raw returns the built filter as the kernel's struct sock_filter array
// (8 bytes per instruction, native byte order), for installing it from
// another program (the fork server's Python template).
func Raw(opts Options) ([]byte, Info, error) {
	prog, info, err := Build(opts)
	if err != nil {
		return nil, Info{}, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, Info{}, fmt.Errorf("seccomp: assemble the filter: %w", err)
	}
	out := make([]byte, 0, 8*len(raw))
	for _, r := range raw {
		f := unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
		out = append(out, unsafe.Slice((*byte)(unsafe.Pointer(&f)), unsafe.Sizeof(f))...)
	}
	return out, info, nil
}

// Install sets no_new_privs and loads the filter on every thread of this
// process (SECCOMP_FILTER_FLAG_TSYNC). It cannot be undone: call it only in
// the sandbox init or in a test subprocess.
func Install(opts Options) (Info, error) {
	raw, info, err := Raw(opts)
	if err != nil {
		return Info{}, err
	}
	if err := load.Filter(raw); err != nil {
		return Info{}, err
	}
	return info, nil
}

// Supported reports whether the kernel has seccomp filter mode.
func Supported() bool {
	return libseccomp.Supported()
}
