package source

import (
	"bytes"
	"os"
	"testing"
)

// TestPrebuiltIsCurrent: the generated filters are what internal/seccomp
// builds from today's deny-list.
func TestPrebuiltIsCurrent(t *testing.T) {
	want, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../zfilters.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("internal/seccomp/prebuilt/zfilters.go is stale: run `go generate ./internal/seccomp/prebuilt`")
	}
}
