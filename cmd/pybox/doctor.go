package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pybox-dev/pybox/internal/cli"
	"github.com/pybox-dev/pybox/internal/doctor"
)

func init() {
	commands["doctor"] = command{summary: "check which isolation layers this host can enforce", run: doctorCmd}
}

func doctorCmd(args []string) int {
	fs := cli.NewFlagSet("doctor")
	jsonOut := fs.Bool("json", false, "print the report as one JSON object")
	pos, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		fmt.Println("Usage: pybox doctor [--json]")
		fmt.Println()
		fmt.Println("Checks what this host can enforce: user namespaces, seccomp, Landlock,")
		fmt.Println("cgroups and Python for the native backend, runsc for gvisor, /dev/kvm for")
		fmt.Println("microVMs. Exits 0 when the native backend can enforce every layer, 1 if not.")
		fmt.Println()
		fmt.Println("Flags:")
		cli.PrintUsage(os.Stdout, fs)
		return 0
	}
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if len(pos) > 0 {
		return fail(exitUsage, "doctor takes no arguments, got %q", pos)
	}
	r := doctor.Check()
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fail(1, "encode report: %v", err)
		}
	} else {
		printReport(os.Stdout, r)
	}
	if !r.OK {
		return 1
	}
	return 0
}

func printReport(w io.Writer, r doctor.Report) {
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	if r.Kernel != "" {
		fmt.Fprintf(w, "kernel %s\n", r.Kernel)
	}
	for _, c := range r.Checks {
		state := "ok"
		if !c.OK {
			state = "missing"
		}
		opt := ""
		if !c.Required && !c.OK {
			opt = " (optional)"
		}
		fmt.Fprintf(w, "%-7s  %-*s  %s%s\n", state, width, c.Name, c.Detail, opt)
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(w, "%-7s  %-*s  fix: %s\n", "", width, "", c.Fix)
		}
	}
	if r.OK {
		fmt.Fprintln(w, "native backend: every layer can be enforced")
		return
	}
	var missing []string
	for _, c := range r.Checks {
		if c.Required && !c.OK {
			missing = append(missing, c.Name)
		}
	}
	fmt.Fprintf(w, "native backend: cannot enforce %s (runs only with --best-effort)\n", strings.Join(missing, ", "))
}
