package httpapi

import (
	"net/http"
	"path/filepath"
	"strings"
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

// FuzzParseExec: the session-run decoder never panics, rejects with a 400
// and a message, and accepts only what the library accepts.
func FuzzParseExec(f *testing.F) {
	for _, s := range []string{
		`{"code": "print(1)"}`, `{"code": "x", "globals": {"a": 1}, "timeout": "1s"}`,
		`{"code": "", "timeout": -1}`, `{"code": "", "memory": 1}`, `{"globals": [1]}`,
		`{"code": 1}`, `[]`, `null`, `{`, `{"code": ""} 1`, "\x00", `{"timeout": "1e400s"}`,
	} {
		f.Add([]byte(s))
	}
	s := New(pybox.New(pybox.Options{}), Config{MaxCodeBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		ex, e := s.parseExec(body)
		if e != nil {
			if e.status != http.StatusBadRequest || e.msg == "" {
				t.Fatalf("bad rejection %d %q for %q", e.status, e.msg, body)
			}
			return
		}
		probe := pybox.Request{Code: ex.Code, Globals: ex.Globals, Timeout: ex.Timeout}.WithDefaults()
		if err := probe.Validate(); err != nil {
			t.Fatalf("accepted an invalid exec %q: %v", body, err)
		}
	})
}

// FuzzParseSessionRequest: as FuzzParseRunRequest, for POST /v1/sessions.
func FuzzParseSessionRequest(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"code": "x = 1", "idle_timeout": "1m", "max_lifetime": 60}`,
		`{"idle_timeout": -1}`, `{"max_lifetime": "100h"}`, `{"collect_files": true}`,
		`{"mounts": [{"host": "/", "guest": "/x"}]}`, `{"code": 1}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	s := New(pybox.New(pybox.Options{}), Config{MaxCodeBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := s.parseSessionRequest(body)
		if e != nil {
			if e.status != http.StatusBadRequest || e.msg == "" {
				t.Fatalf("bad rejection %d %q for %q", e.status, e.msg, body)
			}
			return
		}
		d := req.WithDefaults()
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid request %q: %v", body, err)
		}
		if d.MaxLifetime.D() > DefaultMaxLifetime || d.IdleTimeout.D() > DefaultMaxLifetime {
			t.Fatalf("accepted a lifetime over the cap: %q", body)
		}
		if len(req.Mounts) > 0 || req.Python != "" || req.CollectFiles {
			t.Fatalf("accepted %q", body)
		}
	})
}

// FuzzCheckFilePath: a file path from the URL is either refused with a
// 400 or is a clean relative path inside the work directory.
func FuzzCheckFilePath(f *testing.F) {
	for _, s := range []string{"a.txt", "in/data.csv", "../x", "/etc/passwd", "a/../../b", "a\x00b", "", "a/", ".", "..", "a//b", "./a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, e := checkFilePath(p)
		if e != nil {
			if e.status != http.StatusBadRequest || e.msg == "" || e.field != "path" {
				t.Fatalf("bad rejection %d %q %q for %q", e.status, e.field, e.msg, p)
			}
			return
		}
		if !filepath.IsLocal(name) || strings.ContainsRune(name, 0) {
			t.Fatalf("accepted %q as %q", p, name)
		}
	})
}
