// Drives a pybox MCP server with the official TypeScript SDK and prints
// one JSON object with what it saw. Usage:
//   node client.mjs stdio COMMAND [ARGS...]
//   node client.mjs http URL            (token in $PYBOX_TOKEN, optional)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, target, ...rest] = process.argv.slice(2);
let transport;
if (mode === "stdio") {
  transport = new StdioClientTransport({ command: target, args: rest, stderr: "inherit" });
} else if (mode === "http") {
  const headers = process.env.PYBOX_TOKEN ? { Authorization: `Bearer ${process.env.PYBOX_TOKEN}` } : {};
  transport = new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
} else {
  console.error("usage: node client.mjs stdio COMMAND [ARGS...] | http URL");
  process.exit(2);
}

const client = new Client({ name: "pybox-ts-test", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
const run = await client.callTool({
  name: "run_python_code",
  arguments: { python_code: "print('hi')\nn * 2", global_variables: { n: 21 } },
});
const created = await client.callTool({ name: "create_session", arguments: {} });
const sid = created.structuredContent?.session_id;
await client.callTool({ name: "run_in_session", arguments: { session_id: sid, python_code: "x = 40" } });
const again = await client.callTool({ name: "run_in_session", arguments: { session_id: sid, python_code: "x + 2" } });
await client.callTool({ name: "close_session", arguments: { session_id: sid } });
console.log(JSON.stringify({
  server: client.getServerVersion()?.name,
  tools: tools.tools.map((t) => t.name).sort(),
  run: { isError: run.isError ?? false, text: run.content[0].text },
  session: { id: sid, text: again.content[0].text },
}));
await client.close();
