package gvisor

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/backend"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

var (
	shared     backend.Backend
	sharedErr  error
	sharedOnce sync.Once
)

// testDir keeps the tests' run directories apart from a real pybox's.
const testDir = "/run/pybox-gvisor-test"

// testOptions are the options of the shared backend: pool off, so that
// no test leaves pooled sandboxes behind for the next one's
// checkNothingLeft (the pool's tests use a backend of their own).
func testOptions() Options {
	o := OptionsFromEnv(os.Getenv)
	if o.Dir == "" {
		o.Dir = testDir
	}
	o.NoPool = true
	return o
}

// settleShared waits for the shared backend's background teardowns (no
// run may be in flight).
func settleShared() {
	if b, ok := shared.(*gvisorBackend); ok {
		b.bg.Wait()
	}
}

// newTestBackend returns the backend shared by the package's tests, or
// skips (fails under PYBOX_REQUIRE_ISOLATION=1) when runsc cannot run here.
func newTestBackend(t *testing.T) backend.Backend {
	t.Helper()
	err := Available(testOptions())
	require.Feature(t, err == nil, "runsc not installed or not usable: %v", err)
	sharedOnce.Do(func() { shared, sharedErr = New(testOptions()) })
	require.NoError(t, sharedErr)
	return shared
}

// newOwnBackend returns a backend of the test's own, with options o (the
// caller closes it), or skips like newTestBackend.
func newOwnBackend(t *testing.T, o Options) backend.Backend {
	t.Helper()
	err := Available(o)
	require.Feature(t, err == nil, "runsc not installed or not usable: %v", err)
	b, err := New(o)
	require.NoError(t, err)
	return b
}

// runReq defaults, validates and runs req on the shared backend.
func runReq(t *testing.T, req api.Request) *api.Result {
	t.Helper()
	return runOn(t, newTestBackend(t), req)
}

// runOn defaults, validates and runs req on b.
func runOn(t *testing.T, b backend.Backend, req api.Request) *api.Result {
	t.Helper()
	req.Backend = Name
	req = req.WithDefaults()
	require.NoError(t, req.Validate())
	res, err := b.Run(context.Background(), &req, backend.Hooks{})
	require.NoError(t, err)
	require.NotNil(t, res)
	return res
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Close(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "close:", err)
			code = 1
		}
	}
	os.Exit(code)
}
