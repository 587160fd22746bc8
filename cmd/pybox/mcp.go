package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/cli"
	"github.com/pybox-dev/pybox/internal/server/httpapi"
	"github.com/pybox-dev/pybox/internal/server/mcp"
)

func init() {
	commands["mcp"] = command{summary: "serve MCP (stdio, or streamable HTTP with --http)", run: mcpCmd}
}

type mcpFlags struct {
	serverFlags
	http          string
	timeout       pybox.Duration
	memory        pybox.Size
	backend       string
	maxConcurrent int
	maxSessions   int
}

func newMCPFlagSet(f *mcpFlags) *flag.FlagSet {
	fs := cli.NewFlagSet("mcp")
	fs.StringVar(&f.http, "http", "", "serve streamable HTTP at http://`ADDR`/mcp instead of stdio; a non-loopback address needs a token")
	f.serverFlags.register(fs)
	durVar(fs, &f.timeout, "timeout", 0, "time limit of every call, `DURATION` (default 30s)")
	sizeVar(fs, &f.memory, "memory", 0, "memory limit of every call, `SIZE`")
	fs.StringVar(&f.backend, "backend", "", "backend of every call, `NAME`: native, gvisor or wasm (default: the platform's)")
	fs.IntVar(&f.maxConcurrent, "max-concurrent", 0, "runs in flight at once, `N`; further calls wait (default 2 x CPUs)")
	fs.IntVar(&f.maxSessions, "max-sessions", mcp.DefaultMaxSessions, "live sessions at once, `N` (0: no session tools)")
	return fs
}

func mcpUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: pybox mcp [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Serve the Model Context Protocol: run_python_code, a drop-in replacement for")
	fmt.Fprintln(w, "mcp-run-python, plus session tools (create_session, run_in_session,")
	fmt.Fprintln(w, "write_file, read_file, close_session). Speaks stdio unless --http is given.")
	fmt.Fprintln(w, "See docs/mcp.md.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	cli.PrintUsage(w, fs)
}

func mcpCmd(args []string) int {
	var f mcpFlags
	fs := newMCPFlagSet(&f)
	pos, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		mcpUsage(os.Stdout, fs)
		return 0
	}
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if len(pos) > 0 {
		return fail(exitUsage, "mcp takes no arguments (got %q)", pos[0])
	}
	if f.maxConcurrent < 0 || f.maxSessions < 0 {
		return fail(exitUsage, "--max-concurrent and --max-sessions must not be negative")
	}
	sessions := f.maxSessions
	if sessions == 0 {
		sessions = -1 // Config: negative = no session tools
	}
	f.resolveToken(fs)
	log := f.logger()
	cfg := mcp.Config{
		Timeout: f.timeout, Memory: f.memory, Backend: f.backend,
		MaxConcurrent: f.maxConcurrent, MaxSessions: sessions, Version: versionString(), Logger: log,
	}
	if err := cfg.Validate(); err != nil {
		return fail(exitUsage, "%v", err)
	}
	if f.http != "" {
		if err := httpapi.CheckListen(f.http, f.token); err != nil {
			return fail(exitUsage, "%v", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sb := pybox.New(f.sandboxOptions(log))
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sb.Close(cctx)
	}()
	if f.http == "" {
		if err := mcp.ServeStdio(ctx, sb, cfg); err != nil && ctx.Err() == nil {
			return fail(1, "%v", err)
		}
		return 0
	}
	ln, err := net.Listen("tcp", f.http)
	if err != nil {
		return fail(1, "%v", err)
	}
	log.Info("serving MCP", "url", "http://"+ln.Addr().String()+"/mcp", "auth", f.token != "")
	if err := mcp.ServeHTTP(ctx, ln, sb, cfg, f.token, f.grace); err != nil {
		return fail(1, "%v", err)
	}
	return 0
}
