package wasm

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// memLimit is the memory limit of one interpreter instance. The limit can
// be lowered after the instance started (a pooled interpreter gets its
// request's limit when it is handed the request), so it is atomic.
type memLimit struct {
	limit atomic.Int64 // bytes of linear memory the guest may have
	peak  atomic.Int64 // largest size reached
	// hit is called (once per refusal) from the guest's goroutine when a
	// memory.grow is refused.
	hit func()
	// pre, if set, is the buffer of the first allocation: a snapshot's
	// image, at least as large as the module's initial memory. usedPre
	// says it was taken.
	pre     []byte
	usedPre bool
}

// allocator returns the wazero memory allocator that enforces m.
func (m *memLimit) allocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, maxBytes uint64) experimental.LinearMemory {
		return &linearMemory{m: m, max: maxBytes, initCap: capacity}
	})
}

// linearMemory is a Go-slice backed linear memory that refuses to grow past
// the limit. Refusal makes memory.grow return -1, so malloc returns NULL and
// CPython raises MemoryError (or aborts); the host then stops the instance
// and reports memory-limit.
type linearMemory struct {
	m       *memLimit
	max     uint64
	initCap uint64
	buf     []byte
}

func (l *linearMemory) Reallocate(size uint64) []byte {
	if size > l.max || int64(size) > l.m.limit.Load() {
		if l.m.hit != nil {
			l.m.hit()
		}
		return nil
	}
	if l.buf == nil && l.m.pre != nil && size <= uint64(len(l.m.pre)) {
		l.buf = l.m.pre[:size]
		l.m.pre, l.m.usedPre = nil, true
	} else if l.buf == nil {
		c := max(l.initCap, size)
		l.buf = make([]byte, size, c)
	} else if size <= uint64(cap(l.buf)) {
		l.buf = l.buf[:size]
	} else {
		// Grow geometrically (as append does) but never past the limit.
		c := max(size, uint64(cap(l.buf))+uint64(cap(l.buf))/2)
		if lim := uint64(l.m.limit.Load()); c > lim {
			c = max(size, lim)
		}
		nb := make([]byte, size, c)
		copy(nb, l.buf)
		l.buf = nb
	}
	for {
		p := l.m.peak.Load()
		if int64(size) <= p || l.m.peak.CompareAndSwap(p, int64(size)) {
			break
		}
	}
	return l.buf
}

func (l *linearMemory) Free() { l.buf = nil }
