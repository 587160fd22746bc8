package gvisor

import (
	"errors"
	"io"
	"strings"

	"github.com/pybox-dev/pybox/internal/api"
	"github.com/pybox-dev/pybox/internal/runner"
)

// capture collects one output stream up to a limit, forwarding chunks live.
type capture struct {
	buf       []byte
	truncated bool
}

// read copies rd into c until EOF. Past limit bytes it keeps nothing more,
// calls over once and goes on draining so the writer never blocks.
func (c *capture) read(rd io.Reader, limit int64, hook func([]byte), over func()) {
	chunk := make([]byte, 32<<10)
	for {
		n, err := rd.Read(chunk)
		if n > 0 {
			data := chunk[:n]
			room := limit - int64(len(c.buf))
			if int64(n) > room {
				data = data[:max(room, 0)]
				if !c.truncated {
					c.truncated = true
					over()
				}
			}
			if len(data) > 0 {
				c.buf = append(c.buf, data...)
				if hook != nil {
					hook(data)
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *capture) String() string { return strings.ToValidUTF8(string(c.buf), "\uFFFD") }

// frames is what the runner sent for one execution: display outputs
// (capped in total by the output limit, as in the native backend) and the
// last result.
type frames struct {
	outputs          []api.Output
	outputsTruncated bool
	outputBytes      int64
	result           *runner.Message
	err              error
}

// read reads frames (each at most max bytes) until EOF. Frames that do not
// decode are skipped: the channel is written by untrusted code, and a
// forged frame may at most lie about its own run's output.
func (f *frames) read(rd io.Reader, max int, limit int64) {
	for {
		b, err := runner.ReadFrame(rd, max)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if f.result == nil && err == nil {
				err = errors.New("no result frame")
			}
			f.err = err
			return
		}
		m, err := runner.DecodeMessage(b)
		if err != nil {
			continue
		}
		switch m.Type {
		case runner.TypeDisplay:
			n := int64(len(m.Data) + len(m.MIME))
			if f.outputBytes+n > limit {
				f.outputsTruncated = true
				continue
			}
			f.outputBytes += n
			f.outputs = append(f.outputs, api.Output{MIME: m.MIME, Data: m.Data})
		case runner.TypeResult:
			mm := m
			f.result = &mm
		}
	}
}
