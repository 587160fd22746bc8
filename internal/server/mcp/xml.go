package mcp

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"

	"github.com/pybox-dev/pybox"
)

// outputLines collects stdout and stderr as mcp-run-python reports them: one
// entry per line, in the order the lines were completed, without their
// newlines. A partial last line of each stream is added when the run ends.
type outputLines struct {
	mu      sync.Mutex
	lines   []string
	partial [2][]byte
	bytes   [2]int
}

func (o *outputLines) add(stream int, b []byte, emit func(stream int, line string)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bytes[stream] += len(b)
	buf := append(o.partial[stream], b...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		line := string(buf[:i])
		o.lines = append(o.lines, line)
		if emit != nil {
			emit(stream, line)
		}
		buf = buf[i+1:]
	}
	o.partial[stream] = append([]byte(nil), buf...)
}

func (o *outputLines) finish(emit func(stream int, line string)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for s := range o.partial {
		if len(o.partial[s]) > 0 {
			line := string(o.partial[s])
			o.lines = append(o.lines, line)
			if emit != nil {
				emit(s, line)
			}
			o.partial[s] = nil
		}
	}
}

// splitLines splits one stream's text into lines the same way.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// linesFor returns the output lines of res. The live, interleaved lines are
// used when they account for all of the result's output; otherwise (no live
// callbacks, or truncation) stdout's lines then stderr's.
func linesFor(res *pybox.Result, live *outputLines) []string {
	if live != nil {
		live.mu.Lock()
		defer live.mu.Unlock()
	}
	if live != nil && live.bytes[0] == len(res.Stdout) && live.bytes[1] == len(res.Stderr) {
		return live.lines
	}
	return append(splitLines(res.Stdout), splitLines(res.Stderr)...)
}

var escapers = map[string]*regexp.Regexp{}

func init() {
	for _, tag := range []string{"output", "return_value", "error"} {
		escapers[tag] = regexp.MustCompile(`(?i)</?\s*` + tag + `(?:.*?>)?`)
	}
}

// escapeClosing neutralises anything that looks like tag's opening or
// closing tag, as mcp-run-python's escapeClosing does.
func escapeClosing(tag, s string) string {
	return escapers[tag].ReplaceAllStringFunc(s, func(m string) string {
		return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(m)
	})
}

// returnValueText renders a JSON return value as mcp-run-python does: a
// string as its raw text, anything else as JSON indented by two spaces, and
// nothing for None (null) or an empty string.
func returnValueText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Indent(&buf, v, "", "  ") != nil {
		return string(v)
	}
	return buf.String()
}

// statusMessage explains a non-success status that mcp-run-python has no
// name for; it is the text of the <error> element.
func statusMessage(res *pybox.Result) string {
	var what string
	switch res.Status {
	case pybox.StatusTimeout:
		what = "TimeoutError: the code ran past its time limit and was stopped"
	case pybox.StatusMemoryLimit:
		what = "MemoryError: the code went over its memory limit and was stopped"
	case pybox.StatusOutputLimit:
		what = "OutputLimitError: the code printed more than the output limit and was stopped"
	case pybox.StatusKilled:
		what = "KilledError: the run was killed"
	case pybox.StatusInputError:
		what = "InputError: the request was invalid"
	case pybox.StatusSandboxError:
		what = "SandboxError: the sandbox could not be set up"
	default:
		what = "Error: the run ended with status " + res.Status
	}
	if res.Error != "" && !strings.Contains(what, res.Error) {
		what += " (" + res.Error + ")"
	}
	return what
}

// RenderXML formats res in mcp-run-python's XML result format:
//
//	<status>success</status>
//	<output>
//	...one line per printed line...
//	</output>
//	<return_value>
//	...JSON indented by 2...
//	</return_value>
//
// and for a failure <status>run-error</status>, the output, then
// <error>...</error> with the traceback. Every pybox status other than
// success is reported as run-error; for the statuses mcp-run-python has no
// name for (timeout, memory-limit, output-limit, killed, input-error,
// sandbox-error) the error says what happened. lines are the output lines;
// nil means take them from res.
func RenderXML(res *pybox.Result, lines []string) string {
	if lines == nil {
		lines = linesFor(res, nil)
	}
	status := "run-error"
	if res.Status == pybox.StatusSuccess {
		status = "success"
	}
	xml := []string{"<status>" + status + "</status>"}
	if len(lines) > 0 {
		xml = append(xml, "<output>")
		for _, l := range lines {
			xml = append(xml, escapeClosing("output", l))
		}
		xml = append(xml, "</output>")
	}
	if status == "success" {
		if rv := returnValueText(res.ReturnValue); rv != "" {
			xml = append(xml, "<return_value>", escapeClosing("return_value", rv), "</return_value>")
		}
	} else {
		msg := res.Error
		if res.Status != pybox.StatusRunError {
			msg = statusMessage(res)
		}
		xml = append(xml, "<error>", escapeClosing("error", msg), "</error>")
	}
	return strings.Join(xml, "\n")
}
