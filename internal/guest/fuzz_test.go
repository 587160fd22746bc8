package guest

import (
	"bytes"
	"testing"

	"github.com/pybox-dev/pybox/internal/runner"
)

// FuzzFrames: the runner's channel is written by untrusted code. Any content
// is read without panicking, display outputs stay within the output limit,
// and an accepted result is a well-formed result message.
func FuzzFrames(f *testing.F) {
	var good bytes.Buffer
	_ = runner.WriteFrame(&good, map[string]any{"type": "display", "mime": "text/plain", "data": "hi"})
	_ = runner.WriteFrame(&good, map[string]any{"type": "result", "ok": true, "return_value": 2})
	f.Add(good.Bytes(), uint16(1024), uint16(100))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(0xffff), uint16(10))
	f.Add([]byte("-"), uint16(10), uint16(10))
	f.Add(append(good.Bytes(), 0, 0, 0, 9, '{'), uint16(64), uint16(1))
	f.Fuzz(func(t *testing.T, in []byte, max16, limit16 uint16) {
		var fr Frames
		fr.Read(bytes.NewReader(in), int(max16), int64(limit16))
		if fr.outputBytes > int64(limit16) {
			t.Fatalf("display outputs hold %d bytes, over the %d limit", fr.outputBytes, limit16)
		}
		var n int64
		for _, o := range fr.Outputs {
			n += int64(len(o.MIME) + len(o.Data))
		}
		if n != fr.outputBytes {
			t.Fatalf("outputs hold %d bytes, counted %d", n, fr.outputBytes)
		}
		if fr.Result != nil && fr.Result.Type != runner.TypeResult {
			t.Fatalf("result of type %q", fr.Result.Type)
		}
		if fr.Result == nil && fr.Err == nil {
			t.Fatalf("no result and no error")
		}
	})
}

// TestOutputLimit: a stream is cut at the limit, over is called once, and
// the hook sees exactly what is kept.
func TestOutputLimit(t *testing.T) {
	var o Output
	var seen []byte
	overs := 0
	hook := func(b []byte) { seen = append(seen, b...) }
	o.Read(bytes.NewReader(bytes.Repeat([]byte("x"), 100)), 10, hook, func() { overs++ })
	o.Add([]byte("more"), 10, hook, func() { overs++ })
	if o.String() != "xxxxxxxxxx" || string(seen) != o.String() || !o.Truncated() || overs != 1 {
		t.Fatalf("got %q (hook %q), truncated %v, over called %d times", o.String(), seen, o.Truncated(), overs)
	}
}
