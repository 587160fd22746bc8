package httpapi

import (
	"net/http"
	"testing"

	"github.com/pybox-dev/pybox"
)

// FuzzParseRunRequest: the decoder never panics, and every input it
// rejects gets a 4xx with a message.
func FuzzParseRunRequest(f *testing.F) {
	for _, s := range []string{
		`{"code": "print(1)"}`,
		`{"code": "x", "globals": {"a": [1, {"b": null}]}, "timeout": "1s", "memory": "64MiB"}`,
		`{"code": "", "files": [{"name": "a/b.txt", "data": "aGk=", "mode": 420}], "collect_files": true}`,
		`{"code": "", "timeout": -1, "memory": 1e300, "pids": 99999999999}`,
		`{"code": "", "mounts": [{"host": "/", "guest": "/x"}]}`,
		`{"code": "", "env": {"A": "b"}, "cpus": 0.5, "net": "none", "backend": "wasm"}`,
		`{"code": 1}`, `{"cpus": NaN}`, `[]`, `null`, `{`, `{"code": ""} 1`, "\x00", `{"timeout": "1e400s"}`,
	} {
		f.Add([]byte(s))
	}
	s := New(pybox.New(pybox.Options{}), Config{AllowMounts: false, MaxCodeBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := s.parseRunRequest(body)
		if e != nil {
			if e.status < 400 || e.status >= 500 || e.msg == "" {
				t.Fatalf("bad rejection %d %q for %q", e.status, e.msg, body)
			}
			if e.status != http.StatusBadRequest {
				t.Fatalf("status %d for %q", e.status, body)
			}
			return
		}
		// Accepted requests are valid for the library too.
		d := req.WithDefaults()
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid request %q: %v", body, err)
		}
		if len(req.Mounts) > 0 || req.Python != "" {
			t.Fatalf("accepted host paths: %q", body)
		}
	})
}
