// Package cli holds the small flag-parsing helpers shared by pybox's
// subcommands: GNU-style interspersed flags on top of the standard flag
// package, repeatable flags, one-line errors and a "--flag" usage listing.
//
// Every error this package returns is a single line meant to be printed as
// "pybox: <error>"; it never prints anything itself.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// ErrHelp is returned by [Parse] when -h or --help was given.
var ErrHelp = flag.ErrHelp

// NewFlagSet returns a flag set that reports errors instead of exiting and
// prints nothing by itself.
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// Parse parses args into fs and returns the positional arguments. Flags may
// appear before, between and after positional arguments; "--" ends flag
// parsing and a lone "-" is a positional argument. Both "--name=value" and
// "--name value" work. Errors are one line, with flags spelled "--name".
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ErrHelp
			}
			return nil, errors.New(oneLine(err.Error()))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first non-flag and swallows "--".
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// oneLine rewrites the flag package's messages to the "--name" spelling and
// keeps only the first line.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	for _, p := range []string{"defined: -", "argument: -", " for flag -", " for -"} {
		if i := strings.Index(s, p); i >= 0 && !strings.HasPrefix(s[i+len(p):], "-") {
			s = s[:i+len(p)] + "-" + s[i+len(p):]
		}
	}
	s = strings.Replace(s, "flag provided but not defined: ", "unknown flag ", 1)
	return s
}

// IsSet reports whether the flag name was given on the command line.
func IsSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// Strings is a repeatable string flag: each use appends one value.
type Strings []string

// String implements flag.Value.
func (s *Strings) String() string { return strings.Join(*s, ", ") }

// Set implements flag.Value.
func (s *Strings) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// PrintUsage writes every flag of fs to w, one per entry, as
//
//	--name VALUE    (single-letter flags as -n VALUE)
//	    usage (default X)
//
// The value's placeholder is the back-quoted word in the usage string, as
// with flag.UnquoteUsage. Defaults that are zero values are left out.
func PrintUsage(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if len(f.Name) == 1 {
			line = "  -" + f.Name
		}
		if isBool(f) {
			name = ""
		}
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		usage = strings.ReplaceAll(usage, "\n", "\n    \t")
		if f.DefValue != "" && !isZeroDefault(f) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "    \t%s\n", usage)
	})
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "false", "0", "":
		return true
	}
	// Repeatable flags print their (empty) contents as the default.
	if reflect.TypeOf(f.Value) == reflect.TypeOf((*Strings)(nil)) {
		return true
	}
	return false
}
