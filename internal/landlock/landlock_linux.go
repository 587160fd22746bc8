package landlock

import (
	"fmt"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// presets are go-landlock's full configurations per ABI version.
var presets = []landlock.Config{
	{}, landlock.V1, landlock.V2, landlock.V3, landlock.V4, landlock.V5, landlock.V6,
	landlock.V7, landlock.V8, landlock.V9, landlock.V10, landlock.V11,
}

// ABI returns the host's Landlock ABI version, or 0 without Landlock. Like
// go-landlock, it reports 5 for ABI 6 or later without the fix for the
// signal scoping erratum, since scoping is unreliable there.
func ABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	if v >= 6 {
		errata, err := ll.LandlockGetErrata()
		if err != nil || errata&0x2 == 0 {
			v = 5
		}
	}
	return v
}

// Restrict applies c to every thread of this process and to every process it
// starts afterwards, and sets no_new_privs. It cannot be undone: call it only
// in the sandbox init or in a test subprocess.
func Restrict(c Config) (Info, error) {
	abi := ABI()
	cfg, info, err := plan(c, abi)
	if err != nil || len(info.Enforced) == 0 {
		return info, err
	}
	if c.ThisThread {
		if err := restrictThisThread(c, cfg); err != nil {
			return Info{ABI: abi}, err
		}
		return info, nil
	}
	rw := landlock.RWDirs(c.RW...)
	if abi >= 2 {
		rw = rw.WithRefer()
	}
	rules := []landlock.Rule{
		landlock.RODirs(c.RO...), rw, landlock.ROFiles(c.ROFiles...), landlock.RWFiles(c.RWFiles...),
	}
	if err := cfg.Restrict(rules...); err != nil {
		return Info{ABI: abi}, fmt.Errorf("landlock: %w", err)
	}
	return info, nil
}

// plan decides what to handle on a host with the given ABI.
func plan(c Config, abi int) (landlock.Config, Info, error) {
	info := Info{ABI: abi}
	preset := presets[max(0, min(abi, len(presets)-1))]
	var cfg landlock.Config
	var missing []string
	want := func(layer string, minABI int, enable func()) {
		if abi >= minABI {
			enable()
			info.Enforced = append(info.Enforced, layer)
			return
		}
		missing = append(missing, fmt.Sprintf("%s (needs ABI %d)", layer, minABI))
		info.Missing = append(info.Missing, layer)
	}
	want(LayerFilesystem, MinABIFilesystem, func() { cfg.HandledAccessFS = preset.HandledAccessFS })
	if c.DenyNet {
		want(LayerNetwork, MinABINetwork, func() { cfg.HandledAccessNet = preset.HandledAccessNet })
	}
	if c.Scope {
		want(LayerScope, MinABIScope, func() { cfg.Scoped = preset.Scoped })
	}
	if len(missing) > 0 && !c.BestEffort {
		return cfg, Info{ABI: abi}, fmt.Errorf("%w: host Landlock ABI %d lacks %s",
			ErrUnsupported, abi, strings.Join(missing, ", "))
	}
	return cfg, info, nil
}
