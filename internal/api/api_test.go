package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Size
		wantErr string
	}{
		{name: "bytes", in: "4096", want: 4096},
		{name: "MiB", in: "512MiB", want: 512 << 20},
		{name: "lower mib", in: "512mib", want: 512 << 20},
		{name: "k is binary", in: "64k", want: 64 << 10},
		{name: "GB is decimal", in: "1GB", want: 1e9},
		{name: "fraction", in: "1.5GiB", want: 3 << 29},
		{name: "space", in: " 2 MiB ", want: 2 << 20},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "negative", in: "-1MiB", wantErr: "negative"},
		{name: "garbage", in: "lots", wantErr: "invalid size"},
		{name: "unknown unit", in: "5 parsecs", wantErr: "invalid size"},
		{name: "nan", in: "NaN", wantErr: "invalid size"},
		{name: "inf", in: "Inf", wantErr: "invalid size"},
		{name: "huge", in: "1e30", wantErr: "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string
	}{
		{name: "go", in: "30s", want: 30 * time.Second},
		{name: "compound", in: "1m30s", want: 90 * time.Second},
		{name: "seconds", in: "2", want: 2 * time.Second},
		{name: "fraction", in: "0.5", want: 500 * time.Millisecond},
		{name: "negative", in: "-1s", wantErr: "negative"},
		{name: "negative number", in: "-3", wantErr: "negative"},
		{name: "garbage", in: "soon", wantErr: "invalid duration"},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "too long number", in: "1e300", wantErr: "invalid duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got.D())
		})
	}
}

func TestJSONUnits(t *testing.T) {
	var r Request
	require.NoError(t, json.Unmarshal([]byte(`{"code":"1","timeout":"1m","memory":"64MiB","output_limit":1024}`), &r))
	require.Equal(t, time.Minute, r.Timeout.D())
	require.Equal(t, Size(64<<20), r.Memory)
	require.Equal(t, Size(1024), r.OutputLimit)
	require.NoError(t, json.Unmarshal([]byte(`{"timeout":2.5}`), &r))
	require.Equal(t, 2500*time.Millisecond, r.Timeout.D())
	for _, bad := range []string{`{"timeout":-1}`, `{"timeout":"x"}`, `{"memory":-5}`, `{"memory":1.5}`, `{"memory":"lots"}`, `{"timeout":true}`} {
		require.Error(t, json.Unmarshal([]byte(bad), &r), bad)
	}
	b, err := json.Marshal(Request{Timeout: Duration(1500 * time.Millisecond), Memory: 1 << 20})
	require.NoError(t, err)
	require.Contains(t, string(b), `"timeout":1.5`)
	require.Contains(t, string(b), `"memory":1048576`)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Request)
		wantErr string
	}{
		{name: "defaults ok", mod: func(*Request) {}},
		{name: "backend", mod: func(r *Request) { r.Backend = "vm" }, wantErr: "backend"},
		{name: "timeout", mod: func(r *Request) { r.Timeout = -1 }, wantErr: "timeout"},
		{name: "timeout max", mod: func(r *Request) { r.Timeout = Duration(48 * time.Hour) }, wantErr: "timeout"},
		{name: "memory small", mod: func(r *Request) { r.Memory = 1 << 20 }, wantErr: "memory"},
		{name: "pids", mod: func(r *Request) { r.Pids = -1 }, wantErr: "pids"},
		{name: "cpus", mod: func(r *Request) { r.CPUs = -1 }, wantErr: "cpus"},
		{name: "output", mod: func(r *Request) { r.OutputLimit = -1 }, wantErr: "output_limit"},
		{name: "net", mod: func(r *Request) { r.Net = "host" }, wantErr: "net"},
		{name: "file dotdot", mod: func(r *Request) { r.Files = []File{{Name: "../etc/passwd"}} }, wantErr: "climbs out"},
		{name: "file abs", mod: func(r *Request) { r.Files = []File{{Name: "/etc/passwd"}} }, wantErr: "relative"},
		{name: "file twice", mod: func(r *Request) { r.Files = []File{{Name: "a"}, {Name: "./a"}} }, wantErr: "twice"},
		{name: "file dot", mod: func(r *Request) { r.Files = []File{{Name: "."}} }, wantErr: "work directory itself"},
		{name: "file mode", mod: func(r *Request) { r.Files = []File{{Name: "a", Mode: 0o4755}} }, wantErr: "mode"},
		{name: "mount relative", mod: func(r *Request) { r.Mounts = []Mount{{Host: "data", Guest: "/data"}} }, wantErr: "absolute"},
		{name: "mount over usr", mod: func(r *Request) { r.Mounts = []Mount{{Host: "/tmp", Guest: "/usr"}} }, wantErr: "cover"},
		{name: "mount over root", mod: func(r *Request) { r.Mounts = []Mount{{Host: "/tmp", Guest: "/"}} }, wantErr: "cover"},
		{name: "mount in proc", mod: func(r *Request) { r.Mounts = []Mount{{Host: "/tmp", Guest: "/proc/x"}} }, wantErr: "inside /proc"},
		{name: "mount ok", mod: func(r *Request) { r.Mounts = []Mount{{Host: "/tmp", Guest: "/data"}} }},
		{name: "env name", mod: func(r *Request) { r.Env = map[string]string{"A=B": "x"} }, wantErr: "env"},
		{name: "globals array", mod: func(r *Request) { r.Globals = json.RawMessage(`[1]`) }, wantErr: "object"},
		{name: "globals key", mod: func(r *Request) { r.Globals = json.RawMessage(`{"not ok":1}`) }, wantErr: "identifier"},
		{name: "globals ok", mod: func(r *Request) { r.Globals = json.RawMessage(`{"x":1,"_y2":[1]}`) }},
		{name: "code nul", mod: func(r *Request) { r.Code = "a\x00b" }, wantErr: "NUL"},
		{name: "code utf8", mod: func(r *Request) { r.Code = "\xff" }, wantErr: "UTF-8"},
		{name: "python relative", mod: func(r *Request) { r.Python = "python3" }, wantErr: "absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Request{Code: "print(1)"}.WithDefaults()
			tc.mod(&r)
			err := r.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrInvalid), "not ErrInvalid: %v", err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// FuzzRequestJSON: decoding and validating any body never panics, and a
// request that validates has sane limits.
func FuzzRequestJSON(f *testing.F) {
	for _, s := range []string{
		`{"code":"print(1)"}`, `{"code":"1","timeout":"1s","memory":"64MiB"}`,
		`{"files":[{"name":"../x","data":"AA=="}]}`, `{"globals":{"a":1}}`,
		`{"mounts":[{"host":"/tmp","guest":"/d"}]}`, `{"timeout":1e308}`, `{"memory":"1e400"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if json.Unmarshal(b, &r) != nil {
			return
		}
		r = r.WithDefaults()
		if r.Validate() != nil {
			return
		}
		if r.Timeout <= 0 || r.Memory <= 0 || r.Pids <= 0 || r.OutputLimit <= 0 {
			t.Fatalf("validated request with bad limits: %+v", r)
		}
		for _, fl := range r.Files {
			if strings.HasPrefix(fl.Name, "/") || strings.Contains("/"+fl.Name+"/", "/../") {
				t.Fatalf("validated escaping file name %q", fl.Name)
			}
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "512MiB", "1.5g", "-1", "1e20", "kib"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err == nil && v < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, v)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1s", "1m30s", "2.5", "-1", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseDuration(s)
		if err == nil && v < 0 {
			t.Fatalf("ParseDuration(%q) = %d", s, v)
		}
	})
}

func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/../../b", "/etc", "./a", "a//b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CleanFileName(s)
		if err != nil {
			return
		}
		if strings.HasPrefix(c, "/") || c == ".." || strings.HasPrefix(c, "../") || c == "." {
			t.Fatalf("CleanFileName(%q) = %q escapes", s, c)
		}
	})
}
