package early

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pybox-dev/pybox/internal/testing/golist"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func TestWanted(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	none := env()
	for _, tc := range []struct {
		args string
		env  func(string) string
		want bool
	}{
		{"pybox run -c print(1)", none, true},
		{"pybox run --json --memory 1g file.py", none, true},
		{"pybox run --backend native -c 1", none, true},
		{"pybox run --backend=native -c 1", none, true},
		{"pybox run -backend=native -c 1", none, true},
		{"pybox run -- --backend=wasm", none, true}, // a file name after --
		{"pybox run --backend wasm -c 1", none, false},
		{"pybox run --backend=gvisor -c 1", none, false},
		{"pybox run -backend gvisor -c 1", none, false},
		{"pybox run --backend", none, false},
		{"pybox run --help", none, false},
		{"pybox run -h", none, false},
		{"pybox run -help", none, false},
		{"pybox repl", none, false},
		{"pybox serve", none, false},
		{"pybox mcp", none, false},
		{"pybox doctor", none, false},
		{"pybox", none, false},
		{"", none, false},
		{"pybox-sandbox-init", none, false},
		{"pybox run -c 1", env("PYBOX_EARLY_INIT", "0"), false},
		{"pybox run -c 1", env("PYBOX_EARLY_INIT", "1"), true},
		{"pybox run -c 1", env("PYBOX_INIT", "self"), true},
	} {
		if got := Wanted(strings.Fields(tc.args), tc.env); got != tc.want {
			t.Errorf("Wanted(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestAhead(t *testing.T) {
	for _, tc := range []struct {
		args string
		want bool
	}{
		{"pybox run -c print(1)", true},
		{"pybox run --json --memory 1g --timeout 5s --out d --stream file.py", true},
		{"pybox run --mount /a:/b -c 1", false},
		{"pybox run --mount=/a:/b -c 1", false},
		{"pybox run -file x=@y -c 1", false},
		{"pybox run --disk 1g -c 1", false},
		{"pybox run --python /opt/py/bin/python3 -c 1", false},
		{"pybox run --env A=1 -c 1", false},
		{"pybox run --best-effort -c 1", false},
		{"pybox run -- --env", true}, // a file name after --
	} {
		if got := Ahead(strings.Fields(tc.args)); got != tc.want {
			t.Errorf("Ahead(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestFields(t *testing.T) {
	for in, want := range map[string][]string{
		"":                  nil,
		"cpu memory pids\n": {"cpu", "memory", "pids"},
		" cpuset  io\n\n":   {"cpuset", "io"},
	} {
		if got := fields([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("fields(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArgs(t *testing.T) {
	if got := args(); !slices.Equal(got, os.Args) {
		t.Errorf("args() = %q, os.Args = %q", got, os.Args)
	}
}

// TestNoexec: a noexec mount is seen as one.
func TestNoexec(t *testing.T) {
	require.Root(t)
	dir := t.TempDir()
	if noexec(dir) {
		t.Fatalf("%s is not noexec", dir)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOEXEC, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(dir, 0)
	if !noexec(dir) {
		t.Errorf("%s is mounted noexec, noexec says it is not", dir)
	}
}

// TestInitialisedEarly: Go initialises a package once everything it
// imports is, picking the lexically first path among the ready ones; this
// one's path sorts before "os" and "time", so as long as it imports
// neither (nor what imports them), it is initialised right after syscall,
// before them and everything else of pybox that needs them.
func TestInitialisedEarly(t *testing.T) {
	for _, p := range golist.Deps(t) {
		switch p {
		case "time", "os", "fmt", "encoding/json":
			t.Errorf("package early links %s", p)
		}
	}
}
