//go:build linux

// Command gen writes zfilters.go: the native backend's seccomp filters for
// every architecture pybox prebuilds them for, assembled by
// internal/seccomp (go-seccomp-bpf). Run it through `go generate
// ./internal/seccomp/prebuilt` after changing the deny-list, on a
// little-endian Linux machine (the filters are in native byte order, and
// amd64 and arm64 are both little-endian).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/pybox-dev/pybox/internal/seccomp/prebuilt/source"
)

func main() {
	out := flag.String("o", "zfilters.go", "file to write")
	flag.Parse()
	src, err := source.Generate()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
}
