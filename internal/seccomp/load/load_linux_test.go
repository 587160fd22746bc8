package load

import "testing"

// TestFilterRejectsWhatIsNotAProgram: a malformed filter is an error, not
// a panic, and nothing is installed (the test process goes on unfiltered).
func TestFilterRejectsWhatIsNotAProgram(t *testing.T) {
	for _, f := range [][]byte{nil, {}, make([]byte, 7), make([]byte, 8*4097)} {
		if err := Filter(f); err == nil {
			t.Errorf("Filter(%d bytes) = nil, want an error", len(f))
		}
	}
}
