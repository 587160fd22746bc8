package main

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/cli"
)

// policyFlags are the sandbox policy flags pybox run and pybox repl share.
// Limits left unset stay zero so that Request.WithDefaults fills them in;
// explicitly set zeros are errors.
type policyFlags struct {
	bestEffort bool
	backend    string
	timeout    durationFlag
	memory     sizeFlag
	pids       intFlag
	cpus       floatFlag
	output     sizeFlag
	disk       sizeFlag
	net        string
	python     string
	mounts     cli.Strings
	files      cli.Strings
	env        cli.Strings
}

// register defines the policy flags on fs; timeoutUsage says what --timeout
// bounds for this command.
func (f *policyFlags) register(fs *flag.FlagSet, timeoutUsage string) {
	d := pybox.Request{}.WithDefaults()
	defBackend := "native"
	if runtime.GOOS != "linux" {
		defBackend = "wasm"
	}
	f.timeout.def, f.memory.def, f.output.def, f.disk.def = d.Timeout.String(), d.Memory.String(), d.OutputLimit.String(), d.Disk.String()
	f.pids.def = strconv.Itoa(d.Pids)

	fs.StringVar(&f.backend, "backend", "", "isolation backend: `NAME` is native, gvisor or wasm (default "+defBackend+")")
	fs.Var(&f.timeout, "timeout", timeoutUsage)
	fs.Var(&f.memory, "memory", "memory `SIZE` of the process tree, swap included: 512MiB, 1g")
	fs.Var(&f.pids, "pids", "allow at most `N` processes and threads")
	fs.Var(&f.cpus, "cpus", "CPU quota in `CORES`, e.g. 1.5 (default no quota)")
	fs.Var(&f.output, "output-limit", "`SIZE` limit of stdout and of stderr, each")
	fs.Var(&f.disk, "disk", "`SIZE` of the writable /work and /tmp (tmpfs), each")
	fs.StringVar(&f.net, "net", "", "network `MODE`; only none (loopback only) exists (default none)")
	fs.Var(&f.mounts, "mount", "`HOST:GUEST[:ro|rw]` shows host path HOST at GUEST in the sandbox, read-only unless rw; repeatable")
	fs.Var(&f.files, "file", "`NAME=@HOSTPATH` copies host file HOSTPATH into the work directory as NAME; repeatable")
	fs.Var(&f.env, "env", "`K=V` sets an environment variable in the sandbox; repeatable")
	fs.StringVar(&f.python, "python", "", "host `PATH` of the interpreter (default "+d.Python+")")
	fs.BoolVar(&f.bestEffort, "best-effort", false, "run even if an isolation layer is missing here (the result lists what was)")
}

// request builds the policy part of a Request from the parsed flags. It
// reads --file from the host.
func (f *policyFlags) request(fs *flag.FlagSet) (pybox.Request, error) {
	req := pybox.Request{
		Backend:     f.backend,
		Timeout:     f.timeout.v,
		Memory:      f.memory.v,
		Pids:        f.pids.v,
		CPUs:        f.cpus.v,
		OutputLimit: f.output.v,
		Disk:        f.disk.v,
		Net:         f.net,
		Python:      f.python,
		BestEffort:  f.bestEffort,
	}
	// A zero limit in a Request means "default"; on the command line it is
	// a mistake, so it is refused here.
	for _, z := range []struct {
		name string
		zero bool
	}{
		{"timeout", f.timeout.set && f.timeout.v == 0},
		{"memory", f.memory.set && f.memory.v == 0},
		{"pids", f.pids.set && f.pids.v == 0},
		{"output-limit", f.output.set && f.output.v == 0},
		{"disk", f.disk.set && f.disk.v == 0},
	} {
		if z.zero {
			return req, fmt.Errorf("--%s must be greater than zero", z.name)
		}
	}
	if cli.IsSet(fs, "net") && f.net == "" {
		return req, errors.New("--net must not be empty")
	}
	if cli.IsSet(fs, "python") && f.python == "" {
		return req, errors.New("--python must not be empty")
	}
	for _, m := range f.mounts {
		mt, err := parseMount(m)
		if err != nil {
			return req, err
		}
		req.Mounts = append(req.Mounts, mt)
	}
	for _, e := range f.env {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return req, fmt.Errorf("--env %q: want K=V", e)
		}
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		req.Env[k] = v
	}
	for _, spec := range f.files {
		file, err := readInputFile(spec)
		if err != nil {
			return req, err
		}
		req.Files = append(req.Files, file)
	}
	return req, nil
}
