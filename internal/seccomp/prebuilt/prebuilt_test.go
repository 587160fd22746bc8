package prebuilt

import (
	"errors"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	for k := Default; k < kinds; k++ {
		f, err := Get(k)
		if err != nil {
			t.Fatalf("kind %d: %v", k, err)
		}
		if len(f.Raw) == 0 || len(f.Raw)%8 != 0 {
			t.Errorf("kind %d: %d bytes, want a non-empty sock_filter array", k, len(f.Raw))
		}
		if !strings.Contains(f.Summary, "clone namespace flags") {
			t.Errorf("kind %d: summary %q", k, f.Summary)
		}
	}
	// Callers get a copy: changing it changes nothing for the next one.
	a, _ := Get(Default)
	a.Raw[0] ^= 0xff
	if b, _ := Get(Default); b.Raw[0] == a.Raw[0] {
		t.Error("Get returned shared memory")
	}
	for _, k := range []Kind{-1, kinds} {
		if _, err := Get(k); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("Get(%d) = %v, want ErrUnknownKind", k, err)
		}
	}
}
