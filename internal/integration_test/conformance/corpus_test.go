package conformance

import (
	"testing"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func TestLoadCorpus(t *testing.T) {
	cases, err := Load(casesDir)
	require.NoError(t, err)
	require.True(t, len(cases) >= 40, "want at least 40 cases, have %d", len(cases))
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr string
	}{
		{name: "minimal", src: "# status: success\nprint(1)\n"},
		{name: "free text", src: "# A comment without a key.\n# status: success\n1\n"},
		{name: "no status", src: "# stdout: x\nprint('x')\n", wantErr: "missing"},
		{name: "unknown directive", src: "# status: success\n# stdot: x\n", wantErr: "line 2: stdot: unknown directive"},
		{name: "bad status", src: "# status: fine\n", wantErr: "unknown status"},
		{name: "bad return", src: "# status: success\n# return: {x\n", wantErr: "not JSON"},
		{name: "bad globals", src: "# status: success\n# globals: [1]\n", wantErr: "JSON object"},
		{name: "bad file", src: "# status: success\n# file: a.txt raw\n", wantErr: "JSON string"},
		{name: "stdout twice", src: "# status: success\n# stdout: a\n# stdout-json: \"a\"\n", wantErr: "exclusive"},
		{name: "header ends at code", src: "# status: success\nx = 1\n# bogus: directive after code\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.name, tc.src)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestCheck(t *testing.T) {
	c, err := Parse("c", "# status: success\n# stdout: a\n# stdout: b\n# return: {\"n\": [1, 2.0]}\n"+
		"# error-first-frame: main.py\n")
	require.NoError(t, err)
	ok := &pybox.Result{Status: "success", Stdout: "a\nb\n", ReturnValue: []byte(`{"n":[1.0,2]}`),
		Error: "Traceback (most recent call last):\n  File \"main.py\", line 1, in <module>\n  File \"/usr/lib/x.py\"\n"}
	require.Equal(t, 0, len(c.Check(ok)), "%v", c.Check(ok))

	bad := &pybox.Result{Status: "run-error", Stdout: "a\n", ReturnValue: []byte(`{"n":[1,3]}`),
		Error: "Traceback (most recent call last):\n  File \"/usr/lib/x.py\"\n"}
	require.Equal(t, 4, len(c.Check(bad)), "%v", c.Check(bad))
}

func TestJSONEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1", "1.0", true},
		{"1267650600228229401496703205376", "1267650600228229401496703205376", true},
		{"1267650600228229401496703205376", "1267650600228229401496703205377", false},
		{`{"a":[1,"x",null]}`, `{"a": [1, "x", null]}`, true},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`[true]`, `[1]`, false},
	}
	for _, tc := range tests {
		got, err := JSONEqual([]byte(tc.a), []byte(tc.b))
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%s vs %s", tc.a, tc.b)
	}
}
