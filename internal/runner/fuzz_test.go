package runner

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzReadMessages: a stream of frames from the sandbox, as the backends
// read it: every message is read or refused, never panics, and what is
// accepted is a result or display whose return value is valid JSON.
func FuzzReadMessages(f *testing.F) {
	var good bytes.Buffer
	_ = WriteFrame(&good, map[string]any{"type": "display", "mime": "image/png", "data": "iVBORw0KGgo="})
	_ = WriteFrame(&good, map[string]any{"type": "result", "ok": false, "error": "x", "exit_code": 3})
	f.Add(good.Bytes(), uint16(512))
	f.Add([]byte{0, 0, 0, 2, '{', '}'}, uint16(8))
	f.Add([]byte{0, 0, 0, 40}, uint16(8))
	f.Fuzz(func(t *testing.T, in []byte, max16 uint16) {
		r := bytes.NewReader(in)
		for i := 0; i < 64 && r.Len() > 0; i++ {
			m, err := ReadMessage(r, int(max16))
			if err != nil {
				continue // a bad frame is skipped; a short one ends the stream
			}
			if m.Type != TypeResult && m.Type != TypeDisplay {
				t.Fatalf("accepted type %q", m.Type)
			}
			if m.ReturnValue != nil && !json.Valid(m.ReturnValue) {
				t.Fatalf("accepted invalid return_value %q", m.ReturnValue)
			}
		}
	})
}
