package gvisor

import (
	"bytes"
	"testing"

	"github.com/pybox-dev/pybox/internal/runner"
)

// FuzzFrames: the runner's result file is written by untrusted code. Any
// content is read without panicking, display outputs stay within the
// output limit, and an accepted result is a well-formed result message.
func FuzzFrames(f *testing.F) {
	var good bytes.Buffer
	_ = runner.WriteFrame(&good, map[string]any{"type": "display", "mime": "text/plain", "data": "hi"})
	_ = runner.WriteFrame(&good, map[string]any{"type": "result", "ok": true, "return_value": 2})
	f.Add(good.Bytes(), uint16(1024), uint16(100))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(0xffff), uint16(10))
	f.Add([]byte("-"), uint16(10), uint16(10))
	f.Add(append(good.Bytes(), 0, 0, 0, 9, '{'), uint16(64), uint16(1))
	f.Fuzz(func(t *testing.T, in []byte, max16, limit16 uint16) {
		var fr frames
		fr.read(bytes.NewReader(in), int(max16), int64(limit16))
		if fr.outputBytes > int64(limit16) {
			t.Fatalf("display outputs hold %d bytes, over the %d limit", fr.outputBytes, limit16)
		}
		var n int64
		for _, o := range fr.outputs {
			n += int64(len(o.MIME) + len(o.Data))
		}
		if n != fr.outputBytes {
			t.Fatalf("outputs hold %d bytes, counted %d", n, fr.outputBytes)
		}
		if fr.result != nil && fr.result.Type != runner.TypeResult {
			t.Fatalf("result of type %q", fr.result.Type)
		}
		if fr.result == nil && fr.err == nil {
			t.Fatalf("no result and no error")
		}
	})
}
