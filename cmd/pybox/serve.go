package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/cli"
	"github.com/pybox-dev/pybox/internal/server/httpapi"
)

func init() {
	commands["serve"] = command{summary: "serve the HTTP API (POST /v1/run, sessions)", run: serveCmd}
}

// serverFlags are the flags pybox serve and pybox mcp --http share.
type serverFlags struct {
	token      string
	grace      time.Duration
	level      slog.Level
	forkServer bool
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.token, "token", "", "require `TOKEN` as a bearer token (default $PYBOX_TOKEN; prefer the variable: flags show in ps)")
	fs.DurationVar(&f.grace, "grace", httpapi.DefaultGrace, "on SIGINT/SIGTERM, let runs in flight finish for up to `DURATION`")
	fs.TextVar(&f.level, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	fs.BoolVar(&f.forkServer, "fork-server", true, "fork each run's fresh sandbox from a warm template with numpy imported (native backend); --fork-server=false starts every sandbox cold")
}

// sandboxOptions are the library options the servers use.
func (f *serverFlags) sandboxOptions(log *slog.Logger) pybox.Options {
	return pybox.Options{Logger: log, ForkServer: f.forkServer}
}

// resolveToken falls back to $PYBOX_TOKEN when --token was not given.
func (f *serverFlags) resolveToken(fs *flag.FlagSet) {
	if !cli.IsSet(fs, "token") {
		f.token = os.Getenv("PYBOX_TOKEN")
	}
}

func (f *serverFlags) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: f.level}))
}

// sizeVar defines a size flag (512MiB, 1g, 65536).
func sizeVar(fs *flag.FlagSet, p *pybox.Size, name string, def pybox.Size, usage string) {
	*p = def
	fs.Func(name, fmt.Sprintf("%s (default %s)", usage, def), func(s string) error {
		v, err := pybox.ParseSize(s)
		if err != nil {
			return err
		}
		*p = v
		return nil
	})
}

// durVar defines a duration flag (30s, 1m30s or seconds).
func durVar(fs *flag.FlagSet, p *pybox.Duration, name string, def pybox.Duration, usage string) {
	*p = def
	defText := ""
	if def != 0 {
		defText = fmt.Sprintf(" (default %s)", def)
	}
	fs.Func(name, usage+defText, func(s string) error {
		v, err := pybox.ParseDuration(s)
		if err != nil {
			return err
		}
		*p = v
		return nil
	})
}

type serveFlags struct {
	serverFlags
	listen        string
	allowMounts   bool
	maxBody       pybox.Size
	maxCode       pybox.Size
	maxConcurrent int
	maxQueue      int
	maxTimeout    pybox.Duration
	maxMemory     pybox.Size
	maxSessions   int
	maxLifetime   pybox.Duration
	tokenFile     string
}

func newServeFlagSet(f *serveFlags) *flag.FlagSet {
	fs := cli.NewFlagSet("serve")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "listen on `ADDR`; a non-loopback address needs a token")
	f.serverFlags.register(fs)
	fs.BoolVar(&f.allowMounts, "allow-mounts", false, "let requests set mounts and python (exposes host paths: trusted clients only)")
	sizeVar(fs, &f.maxBody, "max-body", httpapi.DefaultMaxBodyBytes, "largest request body, `SIZE`")
	sizeVar(fs, &f.maxCode, "max-code", httpapi.DefaultMaxCodeBytes, "largest code, `SIZE`")
	fs.IntVar(&f.maxConcurrent, "max-concurrent", 0, "runs in flight at once, `N` (default 2 x CPUs)")
	fs.IntVar(&f.maxQueue, "max-queue", httpapi.DefaultMaxQueue, "requests that may wait for a slot, `N`; past it: 429")
	durVar(fs, &f.maxTimeout, "max-timeout", pybox.Duration(httpapi.DefaultMaxTimeout), "largest timeout a request may ask for, `DURATION`")
	sizeVar(fs, &f.maxMemory, "max-memory", httpapi.DefaultMaxMemory, "largest memory limit a request may ask for, `SIZE`")
	fs.IntVar(&f.maxSessions, "max-sessions", httpapi.DefaultMaxSessions, "live sessions at once, `N`; past it: 429 (0: sessions disabled)")
	durVar(fs, &f.maxLifetime, "max-session-lifetime", pybox.Duration(httpapi.DefaultMaxLifetime), "largest max_lifetime and idle_timeout a session may ask for, `DURATION`")
	fs.StringVar(&f.tokenFile, "token-file", "", "also accept the bearer tokens in `FILE`, one a line; each token owns its own sessions")
	return fs
}

func serveUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: pybox serve [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Serve the HTTP API: POST /v1/run takes a JSON Request and answers with the")
	fmt.Fprintln(w, "Result (or streams output as server-sent events with Accept: text/event-stream).")
	fmt.Fprintln(w, "POST /v1/sessions starts a session whose state lasts across runs")
	fmt.Fprintln(w, "(POST /v1/sessions/{id}/run, PUT and GET /v1/sessions/{id}/files/{path},")
	fmt.Fprintln(w, "DELETE /v1/sessions/{id}). Also GET /healthz, /metrics and /openapi.json.")
	fmt.Fprintln(w, "See docs/http.md.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	cli.PrintUsage(w, fs)
}

func serveCmd(args []string) int {
	var f serveFlags
	fs := newServeFlagSet(&f)
	pos, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		serveUsage(os.Stdout, fs)
		return 0
	}
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if len(pos) > 0 {
		return fail(exitUsage, "serve takes no arguments (got %q)", pos[0])
	}
	if f.maxConcurrent < 0 || f.maxQueue < 0 {
		return fail(exitUsage, "--max-concurrent and --max-queue must not be negative")
	}
	if f.maxBody < 1 || f.maxCode < 1 || f.maxTimeout <= 0 || f.maxMemory < 1 || f.maxLifetime <= 0 {
		return fail(exitUsage, "--max-body, --max-code, --max-timeout, --max-memory and --max-session-lifetime must be positive")
	}
	if f.maxSessions < 0 {
		return fail(exitUsage, "--max-sessions must not be negative")
	}
	f.resolveToken(fs)
	var tokens []string
	if f.tokenFile != "" {
		tokens, err = readTokenFile(f.tokenFile)
		if err != nil {
			return fail(exitUsage, "--token-file: %v", err)
		}
	}
	anyToken := f.token
	if anyToken == "" && len(tokens) > 0 {
		anyToken = tokens[0]
	}
	if err := httpapi.CheckListen(f.listen, anyToken); err != nil {
		return fail(exitUsage, "%v", err)
	}
	log := f.logger()
	queue := f.maxQueue
	if queue == 0 {
		queue = -1 // Config: negative = no queue
	}
	sessions := f.maxSessions
	if sessions == 0 {
		sessions = -1 // Config: negative = sessions disabled
	}
	sb := pybox.New(f.sandboxOptions(log))
	srv := httpapi.New(sb, httpapi.Config{
		Token:         f.token,
		Tokens:        tokens,
		AllowMounts:   f.allowMounts,
		MaxBodyBytes:  int64(f.maxBody),
		MaxCodeBytes:  int(min(f.maxCode, 1<<30)),
		MaxConcurrent: f.maxConcurrent,
		MaxQueue:      queue,
		MaxTimeout:    f.maxTimeout.D(),
		MaxMemory:     f.maxMemory,
		MaxSessions:   sessions,
		MaxLifetime:   f.maxLifetime.D(),
		Logger:        log,
	})
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fail(1, "%v", err)
	}
	log.Info("serving", "addr", ln.Addr().String(), "auth", anyToken != "", "tokens", len(tokens)+min(len(f.token), 1),
		"allow_mounts", f.allowMounts, "max_sessions", f.maxSessions)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = srv.Serve(ctx, ln, f.grace)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cerr := sb.Close(cctx); cerr != nil {
		log.Warn("closing the sandbox", "err", cerr)
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	return 0
}

// readTokenFile reads bearer tokens, one a line; blank lines and lines
// starting with # are skipped.
func readTokenFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, describe(err)
	}
	var tokens []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("line %d: a token must not contain spaces", i+1)
		}
		tokens = append(tokens, line)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return tokens, nil
}
