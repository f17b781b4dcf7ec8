/**
 * Runs one reference node in the foreground until interrupted.
 *
 *   deno task node [--port 7000] [--host 127.0.0.1] [--id node-1]
 *
 * @module
 */
import { startTestNode } from "../testing/node.ts";

function option(name: string, fallback: string): string {
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
    (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ??
    [];
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

const port = Number(option("port", "7000"));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(
    `--port must be an integer in 0–65535, got ${option("port", "")}`,
  );
  throw new Error("bad --port");
}
const node = await startTestNode({
  port,
  hostname: option("host", "127.0.0.1"),
  nodeId: option("id", `node-${port}`),
});
console.log(`reference node ${node.nodeId} listening on ${node.address}`);
// Keep the process alive: the listener alone may be unreferenced.
setInterval(() => {}, 1 << 30);
