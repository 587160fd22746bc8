package runner

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

func frame(payload string) []byte {
	b := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	copy(b[4:], payload)
	return b
}

func TestArgs(t *testing.T) {
	got := Args("/usr/bin/python3", "3", "4")
	if len(got) != 8 || got[0] != "/usr/bin/python3" || got[1] != "-I" || got[2] != "-S" || got[3] != "-B" || got[4] != "-c" || got[5] != Source || got[6] != "3" || got[7] != "4" {
		t.Errorf("Args = %q", got[:4])
	}
	if strings.ContainsRune(Source, 0) || len(Source) > 128<<10 {
		t.Errorf("Source cannot be one argv string (NUL or over MAX_ARG_STRLEN): %d bytes", len(Source))
	}
}

func TestWriteReadFrame(t *testing.T) {
	var buf bytes.Buffer
	e := NewExec("print('hé')", json.RawMessage(`{"a":1}`))
	if err := WriteFrame(&buf, e); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, NewExec("2", nil)); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFrame(&buf, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"exec","code":"print('hé')","globals":{"a":1}}`; string(b) != want {
		t.Errorf("frame 1 = %s, want %s", b, want)
	}
	b, err = ReadFrame(&buf, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"exec","code":"2"}`; string(b) != want {
		t.Errorf("frame 2 = %s, want %s", b, want)
	}
	if _, err := ReadFrame(&buf, 1<<10); err != io.EOF {
		t.Errorf("at end: err = %v, want io.EOF", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    string
		wantErr error
	}{
		{name: "empty input", in: nil, max: 10, wantErr: io.EOF},
		{name: "partial header", in: []byte{0, 0}, max: 10, wantErr: io.ErrUnexpectedEOF},
		{name: "partial body", in: frame("hello")[:6], max: 10, wantErr: io.ErrUnexpectedEOF},
		{name: "too large", in: frame("hello"), max: 4, wantErr: ErrFrameTooLarge},
		{name: "huge prefix", in: []byte{0xff, 0xff, 0xff, 0xff}, max: 1 << 20, wantErr: ErrFrameTooLarge},
		{name: "negative max", in: frame(""), max: -1, wantErr: ErrFrameTooLarge},
		{name: "exactly max", in: frame("hello"), max: 5, want: "hello"},
		{name: "zero length", in: frame(""), max: 0, want: ""},
		{name: "large", in: frame(strings.Repeat("x", 300<<10)), max: 1 << 20, want: strings.Repeat("x", 300<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tt.in), tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %d bytes, %v", len(got), err)
			}
		})
	}
}

// allocated returns the bytes allocated while running f.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestReadFrameLyingPrefix(t *testing.T) {
	// A prefix that claims the whole cap but is followed by 10 bytes must not
	// make ReadFrame allocate the cap.
	const max = 64 << 20
	in := append([]byte{0x03, 0xff, 0xff, 0xff}, "0123456789"...)
	n := allocated(func() {
		if _, err := ReadFrame(bytes.NewReader(in), max); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("err = %v", err)
		}
	})
	if n > 1<<20 {
		t.Errorf("allocated %d bytes for a 10-byte frame", n)
	}
	// Over the cap: nothing is allocated for the payload.
	n = allocated(func() {
		if _, err := ReadFrame(bytes.NewReader([]byte{0x7f, 0xff, 0xff, 0xff}), 1<<20); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("err = %v", err)
		}
	})
	if n > 64<<10 {
		t.Errorf("allocated %d bytes for a refused frame", n)
	}
}

func TestDecodeMessage(t *testing.T) {
	zero, one := 0, 1
	tests := []struct {
		name    string
		in      string
		want    Message
		wantErr bool
	}{
		{name: "result ok", in: `{"type":"result","ok":true}`, want: Message{Type: TypeResult, OK: true}},
		{name: "result value", in: `{"type":"result","ok":true,"return_value":[1, {"a" : null}]}`, want: Message{Type: TypeResult, OK: true, ReturnValue: json.RawMessage(`[1,{"a":null}]`)}},
		{name: "result null value", in: `{"type":"result","ok":true,"return_value":null}`, want: Message{Type: TypeResult, OK: true, ReturnValue: json.RawMessage(`null`)}},
		{name: "result error", in: `{"type":"result","ok":false,"error":"Traceback\n","exit_code":1}`, want: Message{Type: TypeResult, Error: "Traceback\n", ExitCode: &one}},
		{name: "display", in: `{"type":"display","mime":"image/svg+xml","data":"<svg/>"}`, want: Message{Type: TypeDisplay, MIME: "image/svg+xml", Data: "<svg/>"}},
		{name: "unknown type", in: `{"type":"stream","data":"x"}`, wantErr: true},
		{name: "no type", in: `{"ok":true}`, wantErr: true},
		{name: "unknown field", in: `{"type":"result","ok":true,"extra":1}`, wantErr: true},
		{name: "trailing data", in: `{"type":"result","ok":true} {}`, wantErr: true},
		{name: "trailing garbage", in: `{"type":"result","ok":true}x`, wantErr: true},
		{name: "not an object", in: `[1]`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
		{name: "invalid json", in: `{"type":"result",`, wantErr: true},
		{name: "bad return value", in: `{"type":"result","ok":true,"return_value":NaN}`, wantErr: true},
		{name: "invalid utf8", in: "{\"type\":\"result\",\"error\":\"\xff\"}", wantErr: true},
		{name: "exit code too big", in: `{"type":"result","exit_code":256}`, wantErr: true},
		{name: "exit code negative", in: `{"type":"result","exit_code":-1}`, wantErr: true},
		{name: "exit code float", in: `{"type":"result","exit_code":1.5}`, wantErr: true},
		{name: "ok not bool", in: `{"type":"result","ok":"yes"}`, wantErr: true},
		{name: "result with mime", in: `{"type":"result","ok":true,"mime":"text/plain"}`, wantErr: true},
		{name: "display with ok", in: `{"type":"display","ok":true,"mime":"text/plain","data":""}`, wantErr: true},
		{name: "display no mime", in: `{"type":"display","data":"x"}`, wantErr: true},
		{name: "display bad mime", in: `{"type":"display","mime":"text/plain; charset=utf-8","data":"x"}`, wantErr: true},
		{name: "display mime control", in: `{"type":"display","mime":"text/pl\nain","data":"x"}`, wantErr: true},
		{name: "display with exit code", in: `{"type":"display","mime":"text/plain","exit_code":0}`, wantErr: true},
		{name: "exit", in: `{"type":"exit","exit_code":0}`, want: Message{Type: TypeExit, ExitCode: &zero}},
		{name: "exit code", in: `{"type":"exit","exit_code":1}`, want: Message{Type: TypeExit, ExitCode: &one}},
		{name: "exit without code", in: `{"type":"exit"}`, wantErr: true},
		{name: "exit null code", in: `{"type":"exit","exit_code":null}`, wantErr: true},
		{name: "exit code too big", in: `{"type":"exit","exit_code":256}`, wantErr: true},
		{name: "exit code negative", in: `{"type":"exit","exit_code":-1}`, wantErr: true},
		{name: "exit with ok", in: `{"type":"exit","ok":true,"exit_code":0}`, wantErr: true},
		{name: "exit with error", in: `{"type":"exit","error":"x","exit_code":1}`, wantErr: true},
		{name: "exit with return value", in: `{"type":"exit","return_value":1,"exit_code":0}`, wantErr: true},
		{name: "exit with mime", in: `{"type":"exit","mime":"text/plain","exit_code":0}`, wantErr: true},
		{name: "exit unknown field", in: `{"type":"exit","exit_code":0,"signal":9}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMessage([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if !sameMessage(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func sameMessage(a, b Message) bool {
	return a.Type == b.Type && a.OK == b.OK && string(a.ReturnValue) == string(b.ReturnValue) && a.Error == b.Error &&
		derefInt(a.ExitCode) == derefInt(b.ExitCode) && a.MIME == b.MIME && a.Data == b.Data
}

func derefInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"result","ok":true}`,
		`{"type":"result","ok":false,"error":"x","exit_code":3}`,
		`{"type":"result","ok":true,"return_value":{"a":[1,2.5,"x",null]}}`,
		`{"type":"display","mime":"image/png","data":"iVBORw0KGgo="}`,
		`{"type":"display","mime":"text/html","data":"<b>"}`,
		`{"type":"exit","exit_code":120}`,
		`{"type":"nope"}`, `[]`, `null`, ``, `{"type":"result","return_value":1e999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		if m.Type != TypeResult && m.Type != TypeDisplay && m.Type != TypeExit {
			t.Fatalf("accepted type %q", m.Type)
		}
		if m.ReturnValue != nil && !json.Valid(m.ReturnValue) {
			t.Fatalf("accepted invalid return_value %q", m.ReturnValue)
		}
		if m.ExitCode != nil && (*m.ExitCode < 0 || *m.ExitCode > 255) {
			t.Fatalf("accepted exit_code %d", *m.ExitCode)
		}
		// What was accepted survives a round trip.
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !sameMessage(m, m2) {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(frame(`{"type":"result","ok":true}`), uint16(100))
	f.Add(frame("abc")[:5], uint16(3))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, uint16(0xffff))
	f.Add([]byte{0, 1, 0, 0}, uint16(0xffff))
	f.Fuzz(func(t *testing.T, in []byte, max16 uint16) {
		max := int(max16)
		r := bytes.NewReader(in)
		for {
			b, err := ReadFrame(r, max)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(b) > max || cap(b) > max {
				t.Fatalf("returned %d bytes (cap %d) over max %d", len(b), cap(b), max)
			}
		}
	})
}

func ExampleWriteFrame() {
	var buf bytes.Buffer
	_ = WriteFrame(&buf, NewExec("1 + 1", nil))
	fmt.Printf("% x\n", buf.Bytes()[:4])
	b, _ := ReadFrame(&buf, 1<<10)
	fmt.Println(string(b))
	// Output:
	// 00 00 00 1e
	// {"type":"exec","code":"1 + 1"}
}
