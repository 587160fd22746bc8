package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	wapi "github.com/tetratelabs/wazero/api"

	"github.com/pybox-dev/pybox/internal/api"
)

// snapLoad is what the engine learns about snapshots while the module
// compiles.
type snapLoad struct {
	key   [32]byte
	snap  *snapshot
	spare []byte // a first memory buffer filled with snap
	keyed bool   // the module can be snapshotted and key is set
	err   error
}

// snapshotable says why a module's state cannot be captured by its linear
// memory alone, or nil.
func snapshotable(mi *modInfo) error {
	for _, f := range []string{"_initialize", "pybox_init", "pybox_run"} {
		if k, ok := mi.exports[f]; !ok || k != exportFunc {
			return fmt.Errorf("the module exports no function %s", f)
		}
	}
	// The one mutable global a wasi-libc module has is __stack_pointer,
	// back at its initial value whenever an exported function returns.
	// Any other would be lost by a memory snapshot.
	if mi.mutableGlobals != 1 {
		return fmt.Errorf("the module has %d mutable globals, want 1 (the stack pointer)", mi.mutableGlobals)
	}
	if mi.passiveData != 0 {
		return errors.New("the module has passive data segments")
	}
	if mi.minPages == 0 {
		return errors.New("the module's memory starts empty")
	}
	return nil
}

// loadSnapshot looks for the snapshot in dir and, if there is a good one,
// fills a first memory buffer from it. It runs while the module compiles.
func (e *engine) loadSnapshot(binID []byte, dir string) snapLoad {
	var l snapLoad
	if l.key, l.err = snapshotKey(binID, filepath.Join(e.dir, stdlibZip), e.args); l.err != nil {
		return l
	}
	l.keyed = true
	if dir == "" {
		l.err = errSnapMissing
		return l
	}
	if l.snap, l.err = loadSnapshot(dir, l.key); l.err == nil {
		if l.err = l.snap.fits(e.info); l.err == nil {
			l.spare = l.snap.buffer(0)
		} else {
			l.snap = nil
		}
	}
	return l
}

// fits checks that s can be restored into an instance of the module mi.
func (s *snapshot) fits(mi *modInfo) error {
	if uint64(s.size) < uint64(mi.minPages)*65536 {
		return fmt.Errorf("%w: memory of %d bytes is smaller than the module's initial %d pages", errSnapInvalid, s.size, mi.minPages)
	}
	for _, d := range mi.data {
		if uint64(d.off)+uint64(d.n) > uint64(s.size) {
			return fmt.Errorf("%w: a data segment lies outside the memory", errSnapInvalid)
		}
	}
	return nil
}

// useSnapshot takes the result of loadSnapshot: a snapshot that was found
// is used; a missing, stale or corrupt one is rebuilt (and saved in dir).
// Any failure leaves e.snap nil: instances then start CPython themselves.
func (e *engine) useSnapshot(ctx context.Context, l snapLoad, dir string) {
	if l.err == nil {
		e.snap, e.spare = l.snap, l.spare
		return
	}
	if !l.keyed {
		slog.Debug("wasm: no snapshot; each interpreter starts CPython itself", "err", l.err)
		return
	}
	if !errors.Is(l.err, errSnapMissing) {
		slog.Debug("wasm: rebuilding the snapshot", "reason", l.err)
	}
	start := time.Now()
	s, err := e.buildSnapshot(ctx, l.key)
	if err != nil {
		slog.Debug("wasm: building the snapshot failed; each interpreter starts CPython itself", "err", err)
		return
	}
	e.snap = s
	if dir != "" {
		if err := s.save(dir); err != nil {
			slog.Debug("wasm: saving the snapshot failed (used in this process only)", "dir", dir, "err", err)
		}
	}
	slog.Debug("wasm: built the snapshot", "bytes", len(s.data), "memory", s.size, "took", time.Since(start))
}

// buildSnapshot starts an instance from scratch (_initialize, pybox_init)
// and takes its memory.
func (e *engine) buildSnapshot(ctx context.Context, key [32]byte) (*snapshot, error) {
	in, mod, err := e.instantiate(ctx, instanceOpts{memory: api.MaxMemory}, e.freshMemory())
	if err != nil {
		return nil, err
	}
	defer in.abandon(mod)
	for _, name := range []string{"_initialize", "pybox_init"} {
		res, err := mod.ExportedFunction(name).Call(in.ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (stderr: %q)", name, err, firstLine(in.stderr.String()))
		}
		if name == "pybox_init" && (len(res) != 1 || res[0] != 0) {
			return nil, fmt.Errorf("pybox_init failed (code %v; stderr: %q)", res, firstLine(in.stderr.String()))
		}
	}
	if s := in.stdout.String() + in.stderr.String(); s != "" {
		return nil, fmt.Errorf("the interpreter wrote output while starting: %q", firstLine(s))
	}
	mem := mod.Memory()
	b, ok := mem.Read(0, mem.Size())
	if !ok {
		return nil, errors.New("cannot read the linear memory")
	}
	s := newSnapshot(key, b)
	if err := s.fits(e.info); err != nil {
		return nil, err
	}
	return s, nil
}

// takeBuffer returns a memory buffer filled with the snapshot.
func (e *engine) takeBuffer() []byte {
	e.mu.Lock()
	b := e.spare
	e.spare = nil
	e.mu.Unlock()
	if b == nil {
		b = e.snap.buffer(0)
	}
	return b
}

// restore completes an instance made with a snapshot buffer: it grows the
// memory to the snapshot's size and puts back what the module's data
// segments overwrote at instantiation.
func (e *engine) restore(in *instance, mod wapi.Module) error {
	if !in.mem.usedPre {
		return errors.New("the memory allocator was not used")
	}
	mem := mod.Memory()
	cur := mem.Size()
	switch {
	case cur > e.snap.size:
		return fmt.Errorf("memory is %d bytes, larger than the snapshot's %d", cur, e.snap.size)
	case cur < e.snap.size:
		if _, ok := mem.Grow((e.snap.size - cur) / 65536); !ok {
			return fmt.Errorf("cannot grow the memory to the snapshot's %d bytes", e.snap.size)
		}
	}
	b, ok := mem.Read(0, e.snap.size)
	if !ok {
		return errors.New("cannot read the linear memory")
	}
	if !e.shaped { // a shaped module has no data segments
		for _, d := range e.info.data {
			e.snap.restoreRange(b, d.off, d.n)
		}
	}
	return nil
}
