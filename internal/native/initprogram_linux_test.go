package native

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/initbin/stamp"
)

// TestEmbeddedInit checks that a build made by the Makefile runs its
// sandboxes with the small embedded init, and that the copy is sound.
func TestEmbeddedInit(t *testing.T) {
	if stamp.Value == "" {
		if os.Getenv("PYBOX_REQUIRE_ISOLATION") == "1" {
			t.Fatal("built without the embedded init's stamp: run the tests with `make test`")
		}
		t.Skip("built without the embedded init (go test instead of make test)")
	}
	p := initProgram()
	if p == selfExe {
		t.Fatal("a stamped build re-executes itself instead of the embedded init")
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o555 {
		t.Errorf("%s: mode %v, want 0555", p, fi.Mode().Perm())
	}
	out, err := exec.Command(p).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "not run by hand") {
		t.Errorf("running the init by hand: %v %q", err, out)
	}
}
