package escape

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func testLoopbackToHost(t *testing.T, b *sb) {
	port4, queued4 := tcpListener(t, "tcp4", "127.0.0.1:0")
	port6, queued6 := tcpListener(t, "tcp6", "[::1]:0")
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer udp.Close()
	abstract := "pybox-escape-" + token()
	queuedUnix := abstractListener(t, abstract)

	res := b.run(t, pybox.Request{Code: `
import socket, errno
def attempt(what, fn):
    try:
        fn()
        print("ESCAPED", what, flush=True)
    except Exception as e:  # WASI: no sockets at all
        n = getattr(e, "errno", None)
        print("DENIED", what, errno.errorcode.get(n, n) if n else type(e).__name__, flush=True)

def tcp(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(addr)
    s.sendall(b"hello from the sandbox")

def unix_abstract():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect("\0" + abstract)

attempt("tcp4", lambda: tcp(socket.AF_INET, ("127.0.0.1", port4)))
attempt("tcp6", lambda: tcp(socket.AF_INET6, ("::1", port6)))
attempt("abstract", unix_abstract)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"x" * 10, ("127.0.0.1", udp_port))
    print("UDP sent (into the sandbox's own loopback)", flush=True)
except Exception as e:
    print("DENIED udp", getattr(e, "errno", None) or type(e).__name__, flush=True)
`, Globals: globals(t, map[string]any{
		"port4": port4, "port6": port6, "abstract": abstract,
		"udp_port": udp.LocalAddr().(*net.UDPAddr).Port,
	})})
	wantStatus(t, res, pybox.StatusSuccess)
	noEscape(t, res)
	denied := map[string]bool{}
	for _, l := range lines(res, "DENIED") {
		what, _, _ := strings.Cut(l, " ")
		denied[what] = true
	}
	for _, what := range []string{"tcp4", "tcp6", "abstract"} {
		require.True(t, denied[what], "the %s connect must fail", what)
	}
	require.Equal(t, 0, queued4(), "ESCAPE: the host's 127.0.0.1 listener got a connection")
	require.Equal(t, 0, queued6(), "ESCAPE: the host's ::1 listener got a connection")
	require.Equal(t, 0, queuedUnix(), "ESCAPE: the host's abstract unix socket got a connection")
	// Nothing reached the host's UDP socket.
	require.NoError(t, udp.(*net.UDPConn).SetReadDeadline(time.Now()))
	buf := make([]byte, 64)
	if n, _, err := udp.ReadFrom(buf); err == nil {
		t.Errorf("ESCAPE: the host's UDP socket received %q from the sandbox", buf[:n])
	}
}
