package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// newTestBackend returns a backend without a pool whose engine uses o.
func newTestBackend(t *testing.T, o engineOpts) *Backend {
	t.Helper()
	_, err := FindDir()
	require.Feature(t, err == nil, "python.wasm is not built (run `make python-wasm`): %v", err)
	b, err := New()
	require.NoError(t, err)
	b.poolSize, b.engOpts = 0, o
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	require.NoError(t, b.Check())
	return b
}

// needSnapshot fails unless b's engine restores from a snapshot.
func needSnapshot(t *testing.T, b *Backend) {
	t.Helper()
	require.True(t, b.eng.reactor, "build/wasm has no pybox.wasm: rebuild with `make python-wasm`")
	require.True(t, b.eng.snap != nil, "no snapshot was built (run with PYBOX_WASM_SNAPSHOT unset)")
}

func runOn(t *testing.T, b *Backend, req api.Request) *api.Result {
	t.Helper()
	r := req.WithDefaults()
	r.Backend = Name
	require.NoError(t, r.Validate())
	res, err := b.Run(context.Background(), &r, backend.Hooks{})
	require.NoError(t, err)
	return res
}

// TestSnapshotSameResults runs the same requests in interpreters restored
// from the snapshot and in interpreters started from scratch.
func TestSnapshotSameResults(t *testing.T) {
	snap := newTestBackend(t, engineOpts{snapshot: true, snapDir: t.TempDir()})
	needSnapshot(t, snap)
	cold := newTestBackend(t, engineOpts{})
	require.True(t, cold.eng.snap == nil)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/m.txt", []byte("mounted"), 0o644))
	reqs := map[string]api.Request{
		"print":        {Code: "print(1)"},
		"return value": {Code: "x = 20\nx * 2 + 2"},
		"exception":    {Code: "def f():\n    1/0\nf()"},
		"syntax error": {Code: "def ("},
		"exit 3":       {Code: "import sys; print('a'); sys.exit(3)"},
		"env":          {Code: "import os; sorted(os.environ.items())", Env: map[string]string{"FOO": "bar", "HOME": "/tmp"}},
		"files":        {Code: "open('out.txt', 'w').write(open('in.txt').read().upper())", Files: []api.File{{Name: "in.txt", Data: []byte("hi")}}, CollectFiles: true},
		"mount":        {Code: "open('/data/m.txt').read()", Mounts: []api.Mount{{Host: dir, Guest: "/data"}}},
		"timeout":      {Code: "while True: pass", Timeout: api.Duration(200 * time.Millisecond)},
		"memory":       {Code: "x = []\nwhile True: x.append(' ' * (1 << 20))", Memory: 48 << 20},
		"cwd and path": {Code: "import os, sys; (os.getcwd(), sys.path[0], sys.argv, __name__)"},
		"modules":      {Code: "import sys; sorted(m for m in sys.modules if m != 'random')"},
	}
	for name, req := range reqs {
		t.Run(name, func(t *testing.T) {
			before := snap.eng.restored.Load()
			a := runOn(t, snap, req)
			require.Equal(t, before+1, snap.eng.restored.Load(), "the run did not restore the snapshot")
			b := runOn(t, cold, req)
			require.Equal(t, b.Status, a.Status, a.Error)
			require.Equal(t, b.ExitCode, a.ExitCode)
			require.Equal(t, b.Stdout, a.Stdout)
			if a.Status == api.StatusSuccess || a.Status == api.StatusRunError {
				// (Where a limit stops the guest, output is cut at any point.)
				require.Equal(t, b.Stderr, a.Stderr)
			}
			require.Equal(t, string(b.ReturnValue), string(a.ReturnValue))
			require.Equal(t, b.Error, a.Error)
			require.Equal(t, len(b.Files), len(a.Files))
			for i := range a.Files {
				require.Equal(t, b.Files[i].Name, a.Files[i].Name)
				require.Equal(t, string(b.Files[i].Data), string(a.Files[i].Data))
			}
		})
	}
}

// TestSnapshotIsolation checks that restored interpreters share nothing:
// neither state left by a previous run nor random numbers.
func TestSnapshotIsolation(t *testing.T) {
	b := newTestBackend(t, engineOpts{snapshot: true, snapDir: t.TempDir()})
	needSnapshot(t, b)
	res := runOn(t, b, api.Request{Code: "import sys, os, builtins; sys.marker = 1; builtins.marker = 1; os.environ['LEAK'] = '1'; os.chdir('/tmp')"})
	require.Equal(t, api.StatusSuccess, res.Status, res.Error)
	res = runOn(t, b, api.Request{Code: "import sys, os, builtins; (hasattr(sys, 'marker'), hasattr(builtins, 'marker'), 'LEAK' in os.environ, os.getcwd())"})
	require.Equal(t, api.StatusSuccess, res.Status, res.Error)
	require.Equal(t, `[false,false,false,"/work"]`, string(res.ReturnValue))

	code := "import random, os, uuid; [str(random.random()), os.urandom(8).hex(), str(uuid.uuid4())]"
	r1, r2 := runOn(t, b, api.Request{Code: code}), runOn(t, b, api.Request{Code: code})
	require.Equal(t, api.StatusSuccess, r1.Status, r1.Error)
	require.Equal(t, api.StatusSuccess, r2.Status, r2.Error)
	require.NotEqual(t, string(r1.ReturnValue), string(r2.ReturnValue))
	var a1, a2 [3]string
	require.NoError(t, jsonUnmarshal(r1.ReturnValue, &a1))
	require.NoError(t, jsonUnmarshal(r2.ReturnValue, &a2))
	for i := range a1 {
		require.NotEqual(t, a1[i], a2[i], "value %d is the same in two runs", i)
	}
}

// TestSnapshotFileChecked corrupts and replaces the snapshot file: a new
// engine must detect it, rebuild it, and still run correctly.
func TestSnapshotFileChecked(t *testing.T) {
	dir := t.TempDir()
	b := newTestBackend(t, engineOpts{snapshot: true, snapDir: dir})
	needSnapshot(t, b)
	path := snapshotPath(dir, b.eng.snap.key)
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	stale := bytes.Clone(good)
	stale[20] ^= 0xff // the key
	binary.LittleEndian.PutUint32(stale[len(stale)-4:], crc32c(stale[:len(stale)-4]))
	for _, data := range [][]byte{good[:len(good)/3], good[:10], nil} {
		require.NoError(t, os.WriteFile(path, data, 0o600))
		_, err := loadSnapshot(dir, b.eng.snap.key)
		require.True(t, errors.Is(err, errSnapInvalid), err)
	}
	for name, data := range map[string][]byte{"corrupt": corrupt, "stale": stale} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, data, 0o600))
			_, err := loadSnapshot(dir, b.eng.snap.key)
			require.True(t, errors.Is(err, errSnapInvalid) || errors.Is(err, errSnapStale), err)
			nb := newTestBackend(t, engineOpts{snapshot: true, snapDir: dir})
			needSnapshot(t, nb)
			res := runOn(t, nb, api.Request{Code: "print('ok')"})
			require.Equal(t, api.StatusSuccess, res.Status, res.Error)
			require.Equal(t, "ok\n", res.Stdout)
			// Rebuilt in place: the file is good again.
			again, err := os.ReadFile(path)
			require.NoError(t, err)
			_, err = decodeSnapshot(again, b.eng.snap.key)
			require.NoError(t, err)
		})
	}
}

func TestDecodeSnapshot(t *testing.T) {
	var key [32]byte
	key[0] = 7
	mem := make([]byte, 128<<10)
	copy(mem[5000:], "hello")
	copy(mem[70000:], "world")
	s := newSnapshot(key, mem)
	require.Equal(t, 2, len(s.runs))
	enc := s.encode()
	got, err := decodeSnapshot(enc, key)
	require.NoError(t, err)
	buf := got.buffer(0)
	require.True(t, bytes.Equal(mem, buf))

	// restoreRange puts the image back over something else.
	junk := bytes.Repeat([]byte{0xaa}, len(mem))
	got.restoreRange(junk, 4000, 70010-4000)
	require.True(t, bytes.Equal(mem[4000:70010], junk[4000:70010]))
	require.Equal(t, byte(0xaa), junk[3999])
	require.Equal(t, byte(0xaa), junk[70010])

	fix := func(b []byte) []byte { // a valid checksum over a bad body
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32c(b[:len(b)-4]))
		return b
	}
	withU32 := func(off int, v uint32) []byte {
		b := bytes.Clone(enc)
		binary.LittleEndian.PutUint32(b[off:], v)
		return fix(b)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{name: "short", in: enc[:10], wantErr: errSnapInvalid},
		{name: "bad magic", in: fix(append([]byte("XXXXXXXX"), enc[8:]...)), wantErr: errSnapInvalid},
		{name: "bad checksum", in: append(bytes.Clone(enc[:len(enc)-1]), enc[len(enc)-1]^1), wantErr: errSnapInvalid},
		{name: "other format", in: withU32(8, snapFormat+1), wantErr: errSnapStale},
		{name: "odd memory size", in: withU32(44, 1000), wantErr: errSnapInvalid},
		{name: "huge run count", in: withU32(48, 1<<30), wantErr: errSnapInvalid},
		{name: "run past the memory", in: withU32(snapHeader, 128<<10), wantErr: errSnapInvalid},
		{name: "run lengths", in: withU32(snapHeader+4, 8192), wantErr: errSnapInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeSnapshot(tt.in, key)
			require.True(t, errors.Is(err, tt.wantErr), err)
		})
	}
	var other [32]byte
	_, err = decodeSnapshot(enc, other)
	require.True(t, errors.Is(err, errSnapStale), err)
}

func TestParseModule(t *testing.T) {
	dir, err := FindDir()
	require.Feature(t, err == nil, "python.wasm is not built: %v", err)
	bin, err := os.ReadFile(dir + "/" + reactorFile)
	require.Feature(t, err == nil, "pybox.wasm is not built: %v", err)
	mi, err := parseModule(bin)
	require.NoError(t, err)
	require.NoError(t, snapshotable(mi))
	require.True(t, len(mi.data) > 0)

	tests := []struct {
		name string
		in   []byte
	}{
		{name: "empty", in: nil},
		{name: "not wasm", in: []byte("hello world")},
		{name: "truncated", in: bin[:len(bin)/2]},
		{name: "header only", in: bin[:8]},
		{name: "section overrun", in: append(bytes.Clone(bin[:8]), 1, 0xff, 0xff, 0xff, 0x0f)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseModule(tt.in)
			require.Error(t, err)
		})
	}
}
