// Command pybox runs untrusted Python in a sandbox.
//
//	pybox run [flags] (FILE | -c CODE | -)   run code once and print its output
//	pybox doctor [--json]                    say what this host can enforce
//	pybox version                            print the version
//
// Subcommands register themselves in [commands] from their file's init
// function, so a new subcommand is one new file.
//
// # Exit codes of pybox run
//
//	0..255  the program's own exit code
//	2       bad flags or input (usage error)
//	124     the timeout was hit
//	125     the sandbox could not be set up
//	137     killed by a limit (memory, output) or a signal
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/pybox-dev/pybox"
	// A `pybox run` starts its sandbox's init while the rest of pybox
	// initialises (see internal/spawn).
	_ "github.com/pybox-dev/pybox/internal/spawn/early"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name and returns the process exit code.
type command struct {
	summary string
	run     func(args []string) int
}

// commands maps a subcommand's name to its implementation. Each file fills
// in its own entries from func init.
var commands = map[string]command{}

// version is set at link time with -ldflags "-X main.version=v1.2.3"; when
// empty the module version from the build info is used.
var version = ""

// Exit codes shared by the subcommands.
const (
	exitUsage   = 2
	exitTimeout = 124
	exitSandbox = 125
	exitKilled  = 137
)

func init() {
	commands["help"] = command{summary: "show help for pybox or one of its commands", run: runHelp}
	commands["version"] = command{summary: "print the pybox version", run: runVersion}
}

func main() {
	pybox.Init()
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		usage(os.Stdout)
		return 0
	case "--version", "-version":
		return runVersion(nil)
	}
	c, ok := commands[name]
	if !ok {
		return fail(exitUsage, "unknown command %q (see 'pybox help')", name)
	}
	return c.run(args[1:])
}

// fail prints "pybox: <message>" as one line to stderr and returns code.
func fail(code int, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	msg = strings.ReplaceAll(strings.TrimRight(msg, "\n"), "\n", " ")
	fmt.Fprintln(os.Stderr, "pybox: "+msg)
	return code
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "pybox runs untrusted Python in a sandbox.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "  pybox <command> [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'pybox <command> --help' for a command's flags. Environment variables")
	fmt.Fprintln(w, "(PYBOX_TRACE=1 to see where a run's time goes, PYBOX_CACHE_DIR, ...) are")
	fmt.Fprintln(w, "listed in the README's \"Environment\" section.")
}

func runHelp(args []string) int {
	switch {
	case len(args) == 0:
		usage(os.Stdout)
		return 0
	case len(args) > 1:
		return fail(exitUsage, "help takes at most one command name")
	}
	c, ok := commands[args[0]]
	if !ok {
		return fail(exitUsage, "unknown command %q (see 'pybox help')", args[0])
	}
	if args[0] == "help" {
		usage(os.Stdout)
		return 0
	}
	return c.run([]string{"--help"})
}

func runVersion(args []string) int {
	if len(args) > 0 && args[0] != "--help" && args[0] != "-h" {
		return fail(exitUsage, "version takes no arguments")
	}
	backends := strings.Join(pybox.Backends(), ", ")
	if backends == "" {
		backends = "none"
	}
	fmt.Printf("pybox %s (%s, %s/%s, backends: %s)\n", versionString(), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, backends)
	return 0
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 && (v == "" || v == "(devel)") {
				v = "devel-" + s.Value[:12]
			}
		}
		if v != "" && v != "(devel)" {
			return v
		}
	}
	return "devel"
}
