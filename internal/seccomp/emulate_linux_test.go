package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
)

// seccompData is struct seccomp_data.
type seccompData struct {
	nr   int32
	arch uint32
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], uint32(d.nr))
	binary.NativeEndian.PutUint32(b[4:], d.arch)
	for i, a := range d.args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// emulate runs a seccomp classic BPF program over d the way the kernel does
// (native-endian loads, which x/net/bpf's VM does not do) and returns the
// action.
func emulate(prog []bpf.Instruction, d seccompData) (uint32, error) {
	in := d.bytes()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		switch ins := prog[pc].(type) {
		case bpf.LoadAbsolute:
			if ins.Size != 4 || int(ins.Off)+4 > len(in) || ins.Off%4 != 0 {
				return 0, fmt.Errorf("pc %d: bad load %v", pc, ins)
			}
			a = binary.NativeEndian.Uint32(in[ins.Off:])
		case bpf.Jump:
			pc += int(ins.Skip)
		case bpf.JumpIf:
			if cond(ins.Cond, a, ins.Val) {
				pc += int(ins.SkipTrue)
			} else {
				pc += int(ins.SkipFalse)
			}
		case bpf.RetConstant:
			return ins.Val, nil
		default:
			return 0, fmt.Errorf("pc %d: unexpected instruction %v", pc, ins)
		}
	}
	return 0, fmt.Errorf("program ran off its end")
}

func cond(c bpf.JumpTest, a, v uint32) bool {
	switch c {
	case bpf.JumpEqual:
		return a == v
	case bpf.JumpNotEqual:
		return a != v
	case bpf.JumpGreaterThan:
		return a > v
	case bpf.JumpLessThan:
		return a < v
	case bpf.JumpGreaterOrEqual:
		return a >= v
	case bpf.JumpLessOrEqual:
		return a <= v
	case bpf.JumpBitsSet:
		return a&v != 0
	case bpf.JumpBitsNotSet:
		return a&v == 0
	}
	panic(fmt.Sprintf("unknown jump test %v", c))
}
