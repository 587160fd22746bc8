package initproc

import (
	"bytes"
	"errors"
	"slices"
	"strconv"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/guest"
	"github.com/pybox-dev/pybox/internal/runner"
	"github.com/pybox-dev/pybox/internal/seccomp/prebuilt"
)

// AheadConfig is the config the native backend sends for a default
// request's run on this host (no mounts, files, environment or other
// interpreter, default disk size, not best effort), as far as the steps up
// to the interpreter's start use it: the host's layout, the default
// interpreter running the runner from its compiled code, the default
// environment (with the host's spawn.PassEnv variables, which an init
// started ahead gets in its environment), the default seccomp filter and
// a late cgroup join. An init started ahead (spawn.Options.Ahead) builds
// the sandbox and starts the interpreter from it before its real config
// comes, and keeps them only if the config matches it (AheadMatches); the
// native backend does not hand such an init a config that does not.
func AheadConfig() (Config, error) {
	argv0, prefix, err := guest.Interpreter(api.DefaultPython)
	if err != nil {
		return Config{}, err
	}
	if prefix != "" {
		return Config{}, errors.New("the default interpreter is outside /usr")
	}
	f, err := prebuilt.Get(prebuilt.Default)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Argv:           runner.BootArgs(argv0, strconv.Itoa(FDRunnerIn), strconv.Itoa(FDRunnerOut)),
		Env:            guest.Environ(&api.Request{}),
		Layout:         HostLayout(api.DefaultDisk),
		SeccompFilter:  f.Raw,
		SeccompSummary: f.Summary,
		LateCgroup:     true,
	}, nil
}

// AheadMatches reports whether c asks for exactly the sandbox and the
// interpreter that a (AheadConfig) made: every field the steps up to the
// interpreter's start read. What only the run's end reads (CollectFiles,
// FilesLimit, Trace) may differ.
func (c *Config) AheadMatches(a *Config) bool {
	return slices.Equal(c.Argv, a.Argv) && slices.Equal(c.Env, a.Env) && c.Layout.Equal(a.Layout) &&
		len(c.Mounts) == 0 && len(c.Files) == 0 &&
		bytes.Equal(c.SeccompFilter, a.SeccompFilter) && c.SeccompSummary == a.SeccompSummary &&
		c.BestEffort == a.BestEffort && c.Session == a.Session && c.Template == a.Template &&
		c.LateCgroup == a.LateCgroup
}
