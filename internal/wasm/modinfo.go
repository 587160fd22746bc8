package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// modInfo is what a memory snapshot needs to know about a module, read from
// its binary: wazero does not expose data segments or non-exported globals.
type modInfo struct {
	minPages       uint32     // the memory's initial size, in 64 KiB pages
	mutableGlobals int        // defined (not imported) mutable globals
	data           []segRange // active data segments, applied at instantiation
	passiveData    int        // passive data segments (memory.init)
	exports        map[string]byte
}

// segRange is a range of linear memory that an active data segment writes,
// and the bytes it writes there (a slice of the binary).
type segRange struct {
	off, n uint32
	b      []byte
}

// Export kinds.
const (
	exportFunc   = 0
	exportGlobal = 3
)

var errModule = errors.New("malformed wasm module")

// parseModule reads the sections of a wasm binary that modInfo needs. It
// does not validate the module (wazero does).
func parseModule(b []byte) (*modInfo, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || binary.LittleEndian.Uint32(b[4:8]) != 1 {
		return nil, fmt.Errorf("%w: no wasm header", errModule)
	}
	mi := &modInfo{exports: map[string]byte{}}
	haveMemory := false
	err := sections(b, func(id byte, _ []byte, s *reader) error {
		switch id {
		case 2: // imports
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				s.name()
				s.name()
				switch kind := s.byte(); kind {
				case 0: // func
					s.u32()
				case 1: // table
					s.byte()
					s.limits()
				case 2: // memory
					return fmt.Errorf("%w: imported memory is not supported", errModule)
				case 3: // global
					s.byte()
					s.byte()
				default:
					s.fail()
				}
			}
		case 5: // memory
			if n := s.u32(); n != 1 {
				return fmt.Errorf("%w: want one memory, have %d", errModule, n)
			}
			mi.minPages, _ = s.limits()
			haveMemory = true
		case 6: // globals
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				s.byte() // value type
				if s.byte() == 1 {
					mi.mutableGlobals++
				}
				s.constExpr()
			}
		case 7: // exports
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				name := s.name()
				kind := s.byte()
				s.u32()
				mi.exports[name] = kind
			}
		case 11: // data
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				flags := s.u32()
				var off uint32
				switch flags {
				case 0, 2:
					if flags == 2 && s.u32() != 0 {
						s.fail()
					}
					v, ok := s.constExpr()
					if !ok {
						return fmt.Errorf("%w: a data segment's offset is not a constant", errModule)
					}
					off = uint32(v)
				case 1:
					mi.passiveData++
				default:
					s.fail()
				}
				size := s.u32()
				if uint64(s.pos)+uint64(size) > uint64(len(s.b)) {
					s.fail()
					break
				}
				seg := s.b[s.pos : s.pos+int(size)]
				s.pos += int(size)
				if flags != 1 {
					mi.data = append(mi.data, segRange{off: off, n: size, b: seg})
				}
			}
		}
		if s.err != nil {
			return fmt.Errorf("%w: section %d: %v", errModule, id, s.err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !haveMemory {
		return nil, fmt.Errorf("%w: no memory", errModule)
	}
	return mi, nil
}

// sections calls fn for each section of the module b after its 8-byte
// header: the section's id, its bytes (id and size included) and a reader
// over its body.
func sections(b []byte, fn func(id byte, raw []byte, body *reader) error) error {
	r := &reader{b: b, pos: 8}
	for r.pos < len(b) {
		start := r.pos
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(r.pos)+uint64(size) > uint64(len(b)) {
			return fmt.Errorf("%w: section %d overruns the binary", errModule, id)
		}
		body := &reader{b: b[:r.pos+int(size)], pos: r.pos}
		r.pos += int(size)
		if err := fn(id, b[start:r.pos], body); err != nil {
			return err
		}
	}
	return nil
}

// reader decodes the wasm binary format; the first error sticks.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated or malformed")
	}
	r.pos = len(r.b)
}

func (r *reader) byte() byte {
	if r.pos >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				r.fail()
			}
			return uint32(v)
		}
	}
	r.fail()
	return 0
}

// sleb reads a signed LEB128 of up to 64 bits.
func (r *reader) sleb() int64 {
	var v int64
	for shift := 0; shift < 70; shift += 7 {
		c := r.byte()
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift+7 < 64 && c&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v
		}
	}
	r.fail()
	return 0
}

func (r *reader) name() string {
	n := r.u32()
	if uint64(r.pos)+uint64(n) > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s
}

func (r *reader) limits() (min uint32, max uint32) {
	flags := r.byte()
	min = r.u32()
	if flags&1 != 0 {
		max = r.u32()
	}
	return min, max
}

// constExpr skips a constant expression; it returns its value when it is a
// lone i32.const.
func (r *reader) constExpr() (int64, bool) {
	var v int64
	ok, n := false, 0
	for r.err == nil {
		op := r.byte()
		n++
		switch op {
		case 0x0b: // end
			return v, ok && n == 2
		case 0x41: // i32.const
			v, ok = r.sleb(), true
		case 0x42: // i64.const
			r.sleb()
		case 0x43: // f32.const
			r.pos += 4
		case 0x44: // f64.const
			r.pos += 8
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null
			r.byte()
		default:
			r.fail()
		}
		if r.pos > len(r.b) {
			r.fail()
		}
	}
	return 0, false
}
