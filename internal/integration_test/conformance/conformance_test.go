package conformance

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/gvisor"
	"github.com/pybox-dev/pybox/internal/testing/require"
	"github.com/pybox-dev/pybox/internal/wasm"
)

// casesDir is the corpus, relative to this package.
const casesDir = "../../../testdata/python/cases"

func TestMain(m *testing.M) {
	// The native backend re-executes this test binary as the sandbox init.
	pybox.Init()
	os.Exit(m.Run())
}

// backends are every backend the corpus knows. Native must work on Linux
// hosts that pass its feature gates. gvisor must work when runsc is usable
// here (gvisor.Available), and gvisor and wasm both must work under
// PYBOX_REQUIRE_ISOLATION=1 (`make test` installs runsc and builds
// python.wasm); otherwise they are skipped when they cannot run.
//
// "native-forkserver" is the native backend with Options.ForkServer: every
// case runs in a child of a fork-server template (Isolation.ForkServer),
// which must give the same outcome as a cold sandbox.
var backends = []struct {
	name     string
	required func() bool
}{
	{"native", func() bool { return true }},
	{forkServer, func() bool { return true }},
	{"wasm", requireIsolation},
	{"gvisor", func() bool {
		return requireIsolation() || gvisor.Available(gvisor.OptionsFromEnv(os.Getenv)) == nil
	}},
}

const forkServer = "native-forkserver"

// backendOf is the Request.Backend of a corpus backend name.
func backendOf(name string) string {
	if name == forkServer {
		return "native"
	}
	return name
}

func requireIsolation() bool { return os.Getenv("PYBOX_REQUIRE_ISOLATION") == "1" }

func TestCorpus(t *testing.T) {
	cases, err := Load(casesDir)
	require.NoError(t, err)
	cold := pybox.New(pybox.Options{})
	t.Cleanup(func() { _ = cold.Close(context.Background()) })
	warm := pybox.New(pybox.Options{ForkServer: true})
	t.Cleanup(func() { _ = warm.Close(context.Background()) })

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			name, sb := backendOf(b.name), cold
			if b.name == forkServer {
				sb = warm
			}
			available(t, sb, name, b.required())
			probe := &moduleProbe{sb: sb, backend: name}
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					if !c.RunsOn(name) {
						t.Skipf("case is for backends %v", c.Backends)
					}
					t.Parallel()
					for _, mod := range c.Requires {
						if err := probe.importErr(mod); err != nil {
							t.Skipf("%s backend cannot import %s: %v", b.name, mod, err)
						}
					}
					if b.name == forkServer {
						awaitTemplate(t, sb, c.Request(name))
					}
					res, err := sb.Run(context.Background(), c.Request(name))
					if res == nil {
						t.Fatalf("Run returned no result (err %v)", err)
					}
					if err != nil && c.Status != pybox.StatusInputError && c.Status != pybox.StatusSandboxError {
						t.Fatalf("Run: %v (status %s)", err, res.Status)
					}
					for _, msg := range c.Check(res) {
						t.Errorf("%s: %s", c.Path, msg)
					}
					if res.Isolation.Backend != name {
						t.Errorf("isolation.backend = %q, want %q", res.Isolation.Backend, name)
					}
					if b.name == forkServer && !res.Isolation.ForkServer {
						t.Errorf("not run by the fork server (isolation %+v)", res.Isolation)
					}
				})
			}
		})
	}
}

// awaitTemplate waits until the fork server has the template that will
// run req (its policy: interpreter, mounts, environment; with the preloads
// or without, by what the code names), running a no-op under the same
// policy until a template serves it.
func awaitTemplate(t *testing.T, sb *pybox.Sandbox, req pybox.Request) {
	t.Helper()
	// A comment holding the code: the same module names, so the same
	// template, and nothing runs.
	probe := pybox.Request{Backend: req.Backend, Python: req.Python, Mounts: req.Mounts, Env: req.Env,
		BestEffort: req.BestEffort, Code: "#" + strings.NewReplacer("\n", " ", "\r", " ").Replace(req.Code),
		Timeout: pybox.Duration(time.Minute)}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := sb.Run(context.Background(), probe)
		if err == nil && res.Isolation.ForkServer {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fork-server template for this policy after 2 minutes (err %v, status %s, error %s)", err, res.Status, firstLine(res.Error))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// available skips (or, for a required backend, fails) when the backend
// cannot run here, after a one-line probe.
func available(t *testing.T, sb *pybox.Sandbox, name string, required bool) {
	t.Helper()
	switch name {
	case "native":
		require.Feature(t, runtime.GOOS == "linux", "the %s backend needs Linux", name)
		require.Root(t)
		require.UserNS(t)
		require.Python(t)
	case "gvisor":
		err := gvisor.Available(gvisor.OptionsFromEnv(os.Getenv))
		require.Feature(t, err == nil, "the gvisor backend cannot run here: %v", err)
		require.Python(t)
	case "wasm":
		_, err := wasm.FindDir()
		require.Feature(t, err == nil, "the wasm backend cannot run here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := sb.Run(ctx, pybox.Request{Backend: name, Code: "1 + 1", Timeout: pybox.Duration(time.Minute)})
	switch {
	case err == nil && res.Status == pybox.StatusSuccess && string(res.ReturnValue) == "2":
		return
	case required:
		t.Fatalf("the %s backend cannot run `1 + 1`: err %v, status %s, error %s", name, err, res.Status, res.Error)
	case errors.Is(err, pybox.ErrUnsupported):
		t.Skipf("the %s backend is not available: %v", name, err)
	default:
		t.Skipf("the %s backend cannot run here: err %v, status %s, error %s", name, err, res.Status, firstLine(res.Error))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// moduleProbe remembers which Python modules a backend can import.
type moduleProbe struct {
	sb      *pybox.Sandbox
	backend string

	mu   sync.Mutex
	seen map[string]func() error
}

func (p *moduleProbe) importErr(mod string) error {
	p.mu.Lock()
	if p.seen == nil {
		p.seen = map[string]func() error{}
	}
	f, ok := p.seen[mod]
	if !ok {
		f = sync.OnceValue(func() error {
			res, err := p.sb.Run(context.Background(), pybox.Request{
				Backend: p.backend, Code: "import " + mod, Timeout: pybox.Duration(time.Minute),
			})
			if err != nil {
				return err
			}
			if res.Status != pybox.StatusSuccess {
				return errors.New(res.Status + ": " + lastLine(res.Error))
			}
			return nil
		})
		p.seen[mod] = f
	}
	p.mu.Unlock()
	return f()
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}
