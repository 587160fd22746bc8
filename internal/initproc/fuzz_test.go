package initproc

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame: the parent reads the init's frames (status, files), and
// the init lives in the sandbox, so its frames are untrusted: any bytes
// decode or fail, never panic, never allocate past max.
func FuzzReadFrame(f *testing.F) {
	var good bytes.Buffer
	_ = WriteFrame(&good, Message{Type: "ready", LandlockABI: 4, Landlock: []string{"fs"}})
	_ = WriteFrame(&good, Message{Type: "exit", ExitCode: 3})
	f.Add(good.Bytes(), uint16(1024))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(0xffff))
	f.Add([]byte{0, 0, 0, 4, 'n', 'u', 'l', 'l'}, uint16(16))
	f.Add([]byte{0, 0, 0, 9, '{', '"', 'f', 'i', 'l', 'e', '"', ':', '1'}, uint16(64))
	f.Fuzz(func(t *testing.T, in []byte, max16 uint16) {
		r := bytes.NewReader(in)
		for i := 0; i < 64; i++ {
			var m Message
			err := ReadFrame(r, int(max16), &m)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrFrameTooLarge) {
				return
			}
			// A frame that is not a Message (bad JSON) is an error the
			// caller handles; reading goes on at the next frame.
		}
		var req Request
		_ = ReadFrame(bytes.NewReader(in), int(max16), &req)
	})
}
