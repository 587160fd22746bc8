package native

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pybox-dev/pybox/internal/cgroup"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

// TestKitPoolIsBounded: requests that vary their limits endlessly keep at
// most cgPoolKeys sets of limits pooled, each with at most cgPoolMax kits
// even when used groups come back (recycle); every kit is unused (an empty
// cgroup, empty pipes), and Close-time draining leaves no cgroup.
func TestKitPoolIsBounded(t *testing.T) {
	require.Root(t)
	_, err := cgroup.Detect()
	require.Feature(t, err == nil, "cgroups: %v", err)
	b := &nativeBackend{}
	for i := range 3 * cgPoolKeys {
		k, err := b.runKit(cgroup.Limits{MemoryBytes: int64(64+i) << 20, Pids: 32})
		require.NoError(t, err)
		for _, d := range k.cg.Dirs() {
			procs, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			require.NoError(t, err)
			require.Equal(t, "", string(procs), "a kit's cgroup is not empty")
		}
		k.closeFiles()
		if i%2 == 0 {
			require.NoError(t, k.cg.Delete())
		} else {
			b.recycle(cgroup.Limits{MemoryBytes: int64(64+i) << 20, Pids: 32}, k.cg)
		}
		b.bg.Wait() // the refill
	}
	// The same limits again and again: recycled groups come back, the pool
	// stays within cgPoolMax.
	l := cgroup.Limits{MemoryBytes: 96 << 20, Pids: 32}
	for range 3 * cgPoolMax {
		k, err := b.runKit(l)
		require.NoError(t, err)
		k.closeFiles()
		b.recycle(l, k.cg)
		b.bg.Wait()
	}
	b.fsMu.Lock()
	keys, kits := len(b.cgPool.ready), 0
	for _, q := range b.cgPool.ready {
		kits += len(q)
	}
	b.fsMu.Unlock()
	require.True(t, keys <= cgPoolKeys && kits <= cgPoolKeys*cgPoolMax, "%d sets of limits, %d kits pooled", keys, kits)
	require.True(t, kits > 0, "nothing pooled")
	b.deletes.Wait()
	b.fsMu.Lock()
	b.closed = true
	b.fsMu.Unlock()
	b.drainCgroups()
	require.Equal(t, 0, len(b.cgPool.ready))
}
