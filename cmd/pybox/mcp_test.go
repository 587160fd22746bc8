package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMCPStdio drives the built binary as an MCP server over stdio with the
// official Go SDK client, the way an MCP host would.
func TestMCPStdio(t *testing.T) {
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &sdk.CommandTransport{Command: exec.Command(bin, "mcp", "--timeout", "10s")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, " "); got != "close_session create_session read_file run_in_session run_python_code write_file" {
		t.Fatalf("tools: %s", got)
	}
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{
		Name:      "run_python_code",
		Arguments: map[string]any{"python_code": "print('hi')\nn * 2", "global_variables": map[string]any{"n": 21}},
	})
	if err != nil {
		t.Fatal(err)
	}
	text := res.Content[0].(*sdk.TextContent).Text
	if strings.Contains(text, "SandboxError") {
		t.Logf("no working backend here: %s", text)
		return
	}
	want := "<status>success</status>\n<output>\nhi\n</output>\n<return_value>\n42\n</return_value>"
	if text != want || res.IsError {
		t.Errorf("got %q (isError %v), want %q", text, res.IsError, want)
	}
}
