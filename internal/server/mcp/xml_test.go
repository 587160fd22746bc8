package mcp

import (
	"encoding/json"
	"testing"

	"github.com/pybox-dev/pybox"
	"github.com/pybox-dev/pybox/internal/testing/require"
)

func TestRenderXML(t *testing.T) {
	tb := "Traceback (most recent call last):\n  File \"main.py\", line 1, in <module>\n    print(unknown)\n          ^^^^^^^\nNameError: name 'unknown' is not defined\n"
	tests := []struct {
		name string
		res  pybox.Result
		want string
	}{
		{
			name: "print and return value",
			res:  pybox.Result{Status: "success", Stdout: "x=4\n", ReturnValue: json.RawMessage("4")},
			want: "<status>success</status>\n<output>\nx=4\n</output>\n<return_value>\n4\n</return_value>",
		},
		{
			name: "list return value is indented by two",
			res:  pybox.Result{Status: "success", ReturnValue: json.RawMessage("[1,2,3]")},
			want: "<status>success</status>\n<return_value>\n[\n  1,\n  2,\n  3\n]\n</return_value>",
		},
		{
			name: "object return value",
			res:  pybox.Result{Status: "success", ReturnValue: json.RawMessage(`{"email":"hello@pydantic.dev"}`)},
			want: "<status>success</status>\n<return_value>\n{\n  \"email\": \"hello@pydantic.dev\"\n}\n</return_value>",
		},
		{
			name: "string return value is raw text",
			res:  pybox.Result{Status: "success", ReturnValue: json.RawMessage(`"a\nb"`)},
			want: "<status>success</status>\n<return_value>\na\nb\n</return_value>",
		},
		{
			name: "None and empty string are left out",
			res:  pybox.Result{Status: "success", ReturnValue: json.RawMessage(`null`)},
			want: "<status>success</status>",
		},
		{
			name: "empty string",
			res:  pybox.Result{Status: "success", ReturnValue: json.RawMessage(`""`)},
			want: "<status>success</status>",
		},
		{
			name: "blank printed line is kept",
			res:  pybox.Result{Status: "success", Stdout: "\n"},
			want: "<status>success</status>\n<output>\n\n</output>",
		},
		{
			name: "stdout then stderr without live order",
			res:  pybox.Result{Status: "success", Stdout: "a\nb", Stderr: "w\n"},
			want: "<status>success</status>\n<output>\na\nb\nw\n</output>",
		},
		{
			name: "run error",
			res:  pybox.Result{Status: "run-error", Error: tb},
			want: "<status>run-error</status>\n<error>\n" + tb + "\n</error>",
		},
		{
			name: "run error with output",
			res:  pybox.Result{Status: "run-error", Stdout: "hi\n", Error: "ValueError: x", ReturnValue: json.RawMessage("1")},
			want: "<status>run-error</status>\n<output>\nhi\n</output>\n<error>\nValueError: x\n</error>",
		},
		{
			name: "timeout",
			res:  pybox.Result{Status: "timeout", Stdout: "started\n", Error: "timed out after 1s"},
			want: "<status>run-error</status>\n<output>\nstarted\n</output>\n<error>\nTimeoutError: the code ran past its time limit and was stopped (timed out after 1s)\n</error>",
		},
		{
			name: "memory limit",
			res:  pybox.Result{Status: "memory-limit"},
			want: "<status>run-error</status>\n<error>\nMemoryError: the code went over its memory limit and was stopped\n</error>",
		},
		{
			name: "output limit",
			res:  pybox.Result{Status: "output-limit"},
			want: "<status>run-error</status>\n<error>\nOutputLimitError: the code printed more than the output limit and was stopped\n</error>",
		},
		{
			name: "sandbox error",
			res:  pybox.Result{Status: "sandbox-error", Error: "no cgroup"},
			want: "<status>run-error</status>\n<error>\nSandboxError: the sandbox could not be set up (no cgroup)\n</error>",
		},
		{
			name: "closing tags are escaped",
			res:  pybox.Result{Status: "success", Stdout: "</output>\n<OUTPUT x=1>\n</error>\n", ReturnValue: json.RawMessage(`"</return_value>"`)},
			want: "<status>success</status>\n<output>\n&lt;/output&gt;\n&lt;OUTPUT x=1&gt;\n</error>\n</output>\n<return_value>\n&lt;/return_value&gt;\n</return_value>",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, RenderXML(&tc.res, nil))
		})
	}
}

func TestOutputLines(t *testing.T) {
	var o outputLines
	var emitted []string
	emit := func(s int, l string) { emitted = append(emitted, []string{"out", "err"}[s]+":"+l) }
	o.add(0, []byte("a"), emit)
	o.add(1, []byte("warn\n"), emit)
	o.add(0, []byte("b\nc\n\nd"), emit)
	o.add(1, []byte("tail"), emit)
	o.finish(emit)
	require.Equal(t, []string{"warn", "ab", "c", "", "d", "tail"}, o.lines)
	require.Equal(t, []string{"err:warn", "out:ab", "out:c", "out:", "out:d", "err:tail"}, emitted)
	res := &pybox.Result{Stdout: "ab\nc\n\nd", Stderr: "warn\ntail"}
	require.Equal(t, o.lines, linesFor(res, &o))
	// Truncated output: fall back to the result's streams.
	res.Stdout = "ab\n"
	require.Equal(t, []string{"ab", "warn", "tail"}, linesFor(res, &o))
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name, args  string
		wantCode    string
		wantGlobals string
		wantErr     string
	}{
		{name: "code only", args: `{"python_code": "1"}`, wantCode: "1"},
		{name: "globals", args: `{"python_code": "x", "global_variables": {"x": 1}}`, wantCode: "x", wantGlobals: `{"x": 1}`},
		{name: "null globals", args: `{"python_code": "x", "global_variables": null}`, wantCode: "x"},
		{name: "missing code", args: `{}`, wantErr: "python_code is required"},
		{name: "no arguments", args: ``, wantErr: "python_code is required"},
		{name: "code not a string", args: `{"python_code": 1}`, wantErr: "bad arguments"},
		{name: "globals not an object", args: `{"python_code": "", "global_variables": [1]}`, wantErr: "must be an object"},
		{name: "unknown argument", args: `{"python_code": "", "deps": []}`, wantErr: "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, g, err := parseArgs(json.RawMessage(tc.args))
			if tc.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantCode, code)
			require.Equal(t, tc.wantGlobals, string(g))
		})
	}
}

func TestImages(t *testing.T) {
	res := &pybox.Result{Outputs: []pybox.Output{
		{MIME: "image/png", Data: "iVBORw0KGgo="},
		{MIME: "text/plain", Data: "hi"},
		{MIME: "image/png", Data: "not base64!"},
	}}
	c := images(res)
	require.Len(t, c, 1)
}
