package seccomp

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

const (
	retAllow = unix.SECCOMP_RET_ALLOW
	retKill  = unix.SECCOMP_RET_KILL_PROCESS
	retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retNOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

func nativeArch(t *testing.T) *arch.Info {
	t.Helper()
	info, err := arch.GetInfo("")
	require.NoError(t, err)
	return info
}

func TestBuild(t *testing.T) {
	prog, info, err := Build(Options{})
	require.NoError(t, err)
	require.Equal(t, len(prog), info.Instructions)
	_, err = bpf.Assemble(prog)
	require.NoError(t, err)
	require.True(t, info.Instructions < 4096, "BPF_MAXINSNS is 4096")
	require.Contains(t, info.Summary, fmt.Sprintf("deny-list: %d syscalls", info.Syscalls))
	if runtime.GOARCH == "amd64" {
		require.Equal(t, len(denyList)+1+len(argFilters), info.Syscalls, "every name exists on x86_64")
	}
	t.Logf("%d syscalls, %d instructions: %s", info.Syscalls, info.Instructions, info.Summary)
}

func TestDenyListUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range denyList {
		require.False(t, seen[d.name], "duplicate %s", d.name)
		require.NotEqual(t, "", d.reason, "%s has no reason", d.name)
		seen[d.name] = true
	}
	for _, f := range argFilters {
		require.False(t, seen[f.syscall], "%s must only be filtered by argument", f.syscall)
		require.NotEqual(t, "", f.reason, "%s has no reason", f.syscall)
	}
	require.False(t, seen["clone"], "clone must only be filtered by argument")
}

// TestBuild_emulated runs the built program over syscalls the way the kernel
// would: denied calls, argument filters, foreign architectures, and calls the
// Go init and CPython need.
func TestBuild_emulated(t *testing.T) {
	prog, _, err := Build(Options{})
	require.NoError(t, err)
	a := nativeArch(t)
	nr := func(name string) int32 {
		n, ok := a.SyscallNames[name]
		require.True(t, ok, "no syscall %s on %s", name, a.Name)
		return int32(n)
	}
	call := func(name string, args ...uint64) seccompData {
		d := seccompData{nr: nr(name), arch: uint32(a.ID)}
		copy(d.args[:], args)
		return d
	}
	const (
		goThreadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
			unix.CLONE_SYSVSEM | unix.CLONE_THREAD
		goForkFlags = unix.CLONE_VFORK | unix.CLONE_VM | unix.CLONE_PIDFD | uint64(unix.SIGCHLD)
	)
	tests := []struct {
		name string
		data seccompData
		want uint32
	}{
		{name: "read", data: call("read", 0, 0, 0), want: retAllow},
		{name: "openat", data: call("openat"), want: retAllow},
		{name: "execve", data: call("execve"), want: retAllow},
		{name: "wait4", data: call("wait4"), want: retAllow},
		{name: "kill", data: call("kill"), want: retAllow},
		{name: "seccomp", data: call("seccomp"), want: retAllow},
		{name: "clone Go thread", data: call("clone", goThreadFlags), want: retAllow},
		{name: "clone Go fork", data: call("clone", goForkFlags), want: retAllow},
		{name: "clone CLONE_NEWUSER", data: call("clone", unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), want: retEPERM},
		{name: "clone CLONE_NEWNS", data: call("clone", unix.CLONE_NEWNS), want: retEPERM},
		{name: "clone CLONE_NEWNET high bits", data: call("clone", 1<<40|unix.CLONE_NEWNET), want: retEPERM},
		{name: "clone3", data: call("clone3"), want: retNOSYS},
		{name: "unshare", data: call("unshare", unix.CLONE_FILES), want: retEPERM},
		{name: "ioctl TCGETS", data: call("ioctl", 1, unix.TCGETS), want: retAllow},
		{name: "ioctl TIOCSTI", data: call("ioctl", 0, unix.TIOCSTI), want: retEPERM},
		{name: "ioctl TIOCSTI high bits", data: call("ioctl", 0, 1<<32|unix.TIOCSTI), want: retEPERM},
		{name: "ioctl TIOCLINUX", data: call("ioctl", 0, unix.TIOCLINUX), want: retEPERM},
		{name: "ioctl cmd equal to personality's number", data: call("ioctl", 7, uint64(nr("personality"))), want: retAllow},
		{name: "personality query", data: call("personality", 0xffffffff), want: retAllow},
		{name: "personality PER_LINUX", data: call("personality", 0), want: retAllow},
		{name: "personality ADDR_NO_RANDOMIZE", data: call("personality", 0x0040000 /* ADDR_NO_RANDOMIZE */), want: retEPERM},
		{name: "personality READ_IMPLIES_EXEC", data: call("personality", 0x0400000), want: retEPERM},
		{name: "socket TCP", data: call("socket", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP), want: retAllow},
		{name: "socket unix", data: call("socket", unix.AF_UNIX, unix.SOCK_STREAM, 0), want: retAllow},
		{name: "socket MPTCP", data: call("socket", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP),
			want: unix.SECCOMP_RET_ERRNO | uint32(unix.EPROTONOSUPPORT)},
		{name: "socket MPTCP high bits", data: call("socket", unix.AF_INET6, unix.SOCK_STREAM, 1<<33|unix.IPPROTO_MPTCP),
			want: unix.SECCOMP_RET_ERRNO | uint32(unix.EPROTONOSUPPORT)},
		{name: "ioctl cmd equal to socket's number", data: call("ioctl", 7, uint64(nr("socket"))), want: retAllow},
		{name: "personality arg equal to ioctl's number", data: call("personality", uint64(nr("ioctl"))), want: retEPERM},
		{name: "foreign architecture", data: seccompData{nr: 20, arch: 0x40000003 /* i386 */}, want: retKill},
	}
	if a.ID == arch.X86_64.ID {
		tests = append(tests, struct {
			name string
			data seccompData
			want uint32
		}{name: "x32 getpid", data: seccompData{nr: 0x40000000 | 39, arch: uint32(a.ID)}, want: retNOSYS})
	}
	for _, d := range denyList {
		if _, ok := a.SyscallNames[d.name]; !ok {
			continue
		}
		want := retEPERM
		if d.errno == enosys {
			want = retNOSYS
		}
		tests = append(tests, struct {
			name string
			data seccompData
			want uint32
		}{name: "deny " + d.name, data: call(d.name), want: want})
	}
	for _, tc := range tests {
		got, err := emulate(prog, tc.data)
		require.NoError(t, err, tc.name)
		require.Equal(t, fmt.Sprintf("%#x", tc.want), fmt.Sprintf("%#x", got), tc.name)
	}

	// Every syscall that is neither denied nor argument-filtered is allowed.
	denied := map[string]bool{"clone": true}
	for _, f := range argFilters {
		denied[f.syscall] = true
	}
	for _, d := range denyList {
		denied[d.name] = true
	}
	allowed := 0
	for name, n := range a.SyscallNames {
		if denied[name] {
			continue
		}
		got, err := emulate(prog, seccompData{nr: int32(n), arch: uint32(a.ID)})
		require.NoError(t, err, name)
		require.Equal(t, uint32(retAllow), got, "%s must be allowed", name)
		allowed++
	}
	t.Logf("%d syscalls allowed", allowed)
}

func BenchmarkBuild(b *testing.B) {
	var info Info
	for b.Loop() {
		var err error
		if _, info, err = Build(Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(info.Instructions), "insns")
	b.ReportMetric(float64(info.Syscalls), "syscalls")
}
