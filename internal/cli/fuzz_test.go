package cli

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParse: any argument list (NUL-separated) parses or fails with one
// line, never panics, and positional arguments are a subsequence of args.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"run\x00--timeout=3s\x00-c\x00print(1)",
		"--x\x00--\x00--y",
		"-\x00--list=a\x00--list\x00b",
		"--n=notanumber", "--h", "--b=maybe", "---x", "--=1", "-c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		fs := NewFlagSet("fuzz")
		var list Strings
		fs.String("c", "", "")
		fs.Bool("b", false, "")
		fs.Int("n", 0, "")
		fs.Duration("d", time.Second, "")
		fs.Var(&list, "list", "")
		pos, err := Parse(fs, args)
		if err != nil {
			if !errors.Is(err, ErrHelp) && strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		i := 0
		for _, p := range pos {
			for i < len(args) && args[i] != p {
				i++
			}
			if i == len(args) {
				t.Fatalf("positional %q is not one of the arguments %q", p, args)
			}
			i++
		}
	})
}
