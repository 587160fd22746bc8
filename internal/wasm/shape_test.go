package wasm

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

func TestMakeShape(t *testing.T) {
	dir, err := FindDir()
	require.Feature(t, err == nil, "python.wasm is not built: %v", err)
	bin, err := os.ReadFile(filepath.Join(dir, reactorFile))
	require.Feature(t, err == nil, "pybox.wasm is not built: %v", err)
	full, err := parseModule(bin)
	require.NoError(t, err)

	shape, err := makeShape(bin, []byte("id-1"))
	require.NoError(t, err)
	require.True(t, len(shape) < len(bin)/20, "shape is %d bytes", len(shape))
	mi, err := parseModule(shape)
	require.NoError(t, err)
	require.Equal(t, full.exports, mi.exports)
	require.Equal(t, full.minPages, mi.minPages)
	require.Equal(t, full.mutableGlobals, mi.mutableGlobals)
	require.Len(t, mi.data, 0)

	// The shape names the binary it came from.
	other, err := makeShape(bin, []byte("id-2"))
	require.NoError(t, err)
	require.False(t, bytes.Equal(shape, other))
	again, err := makeShape(bin, []byte("id-1"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(shape, again))

	_, err = makeShape(bin[:len(bin)/2], nil)
	require.Error(t, err)
}

func TestShapeMarker(t *testing.T) {
	cache := t.TempDir()
	shape := []byte("shape")
	_, _, err := readShapeMarker(cache, shape)
	require.Error(t, err)

	entry := filepath.Join("sub", "entry")
	require.NoError(t, writeAtomic(filepath.Join(cache, entry), []byte("code")))
	write := func(m shapeMarker) {
		b, _ := json.Marshal(m)
		require.NoError(t, writeAtomic(shapeMarkerPath(cache, shape), b))
	}
	write(shapeMarker{Entry: entry, Size: 4})
	path, st, err := readShapeMarker(cache, shape)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(cache, entry), path)
	require.Equal(t, int64(4), st.size)

	for _, m := range []shapeMarker{{Entry: entry, Size: 5}, {Entry: "../outside", Size: 4}, {Entry: "", Size: 4}, {Entry: "missing", Size: 4}} {
		write(m)
		_, _, err := readShapeMarker(cache, shape)
		require.Error(t, err, m)
	}
}
