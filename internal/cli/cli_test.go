package cli

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantPos []string
		wantN   int
		wantS   []string
		wantErr string
	}{
		{name: "flags first", args: []string{"-n", "3", "f.py"}, wantPos: []string{"f.py"}, wantN: 3},
		{name: "flags after", args: []string{"f.py", "--n=4", "--s", "a"}, wantPos: []string{"f.py"}, wantN: 4, wantS: []string{"a"}},
		{name: "interspersed", args: []string{"--s", "a", "x", "--s=b", "y"}, wantPos: []string{"x", "y"}, wantS: []string{"a", "b"}},
		{name: "stdin dash", args: []string{"--n", "1", "-"}, wantPos: []string{"-"}, wantN: 1},
		{name: "double dash", args: []string{"--n", "1", "--", "--n", "2"}, wantPos: []string{"--n", "2"}, wantN: 1},
		{name: "dash after positional", args: []string{"x", "--", "-n"}, wantPos: []string{"x", "-n"}},
		{name: "none", args: nil},
		{name: "unknown", args: []string{"--bogus"}, wantErr: "unknown flag --bogus"},
		{name: "unknown single dash", args: []string{"-bogus"}, wantErr: "unknown flag --bogus"},
		{name: "missing value", args: []string{"x", "--n"}, wantErr: "flag needs an argument: --n"},
		{name: "bad int", args: []string{"--n", "abc"}, wantErr: `invalid value "abc" for flag --n`},
		{name: "bad bool", args: []string{"--b=maybe"}, wantErr: `invalid boolean value "maybe" for --b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := NewFlagSet("t")
			n := fs.Int("n", 0, "a number")
			fs.Bool("b", false, "a bool")
			var s Strings
			fs.Var(&s, "s", "repeatable")
			pos, err := Parse(fs, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tt.wantPos) && (len(pos) != 0 || len(tt.wantPos) != 0) {
				t.Errorf("positional = %q, want %q", pos, tt.wantPos)
			}
			if *n != tt.wantN {
				t.Errorf("n = %d, want %d", *n, tt.wantN)
			}
			if !reflect.DeepEqual([]string(s), tt.wantS) && (len(s) != 0 || len(tt.wantS) != 0) {
				t.Errorf("s = %q, want %q", s, tt.wantS)
			}
		})
	}
}

func TestHelpAndIsSet(t *testing.T) {
	for _, h := range []string{"-h", "--help", "-help"} {
		fs := NewFlagSet("t")
		if _, err := Parse(fs, []string{"x", h}); !errors.Is(err, ErrHelp) {
			t.Errorf("%s: err = %v, want ErrHelp", h, err)
		}
	}
	fs := NewFlagSet("t")
	fs.Int("n", 5, "")
	fs.Int("m", 5, "")
	if _, err := Parse(fs, []string{"--n=0"}); err != nil {
		t.Fatal(err)
	}
	if !IsSet(fs, "n") || IsSet(fs, "m") {
		t.Errorf("IsSet(n)=%v IsSet(m)=%v, want true false", IsSet(fs, "n"), IsSet(fs, "m"))
	}
}

func TestPrintUsage(t *testing.T) {
	fs := NewFlagSet("t")
	fs.String("c", "", "run `CODE`")
	fs.String("timeout", "30s", "the `LIMIT`")
	fs.Bool("json", false, "print JSON")
	var s Strings
	fs.Var(&s, "mount", "`HOST:GUEST`; repeatable")
	var buf bytes.Buffer
	PrintUsage(&buf, fs)
	out := buf.String()
	for _, want := range []string{"  -c CODE\n", "  --timeout LIMIT\n", "(default 30s)", "  --json\n", "  --mount HOST:GUEST\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "default false") || strings.Contains(out, "(default )") {
		t.Errorf("usage prints zero defaults:\n%s", out)
	}
}
