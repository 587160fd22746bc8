package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/cli"
)

// FuzzRunFlags: any `pybox run` argument list (NUL-separated) parses or
// fails with a one-line error; it never panics. Only parsing runs here: no
// file is read and no sandbox started.
func FuzzRunFlags(f *testing.F) {
	for _, s := range []string{
		"-c\x00print(1)\x00--timeout=2.5\x00--memory=1g",
		"--pids=0\x00--cpus=-1\x00--disk=1PiB",
		"--output-limit=1e99\x00--timeout=-1s\x00--memory=12XB",
		"--mount=/a:/b:rw\x00--env=K=V\x00--file=x=@/etc/hostname\x00--\x00-x",
		"--cpus=NaN\x00--cpus=Inf\x00--timeout=9999999h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		var rf runFlags
		fs := newRunFlagSet(&rf)
		if _, err := cli.Parse(fs, strings.Split(joined, "\x00")); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error is not one line: %q", err)
		}
	})
}

// FuzzParseMount: --mount values never panic, and an accepted one has an
// absolute host path and a non-empty guest path.
func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"/etc:/data", "/etc:/data:rw", "/etc:/data:xx", ":", "a:b:c:d", "/nonexistent:/x", ".:/w:ro"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMount(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if !filepath.IsAbs(m.Host) || m.Guest == "" {
			t.Fatalf("accepted %q as %+v", s, m)
		}
	})
}
