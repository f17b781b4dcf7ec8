/**
 * The TypeScript reference node behind the command line of the native
 * node (`--port P [--cert F --key F] [--no-udp]`, the same "listening"
 * line, exit at EOF on stdin or on SIGTERM/SIGINT), so benches can fall
 * back to it on a machine without a C compiler. `cli.ts node` serves TCP
 * or TLS only and runs until a signal; this serves TLS, TCP and UDP like
 * the native node and dies with its parent.
 *
 *   deno run -A --unstable-net bench/native/script_node.ts --port 0
 *   bun bench/native/script_node.ts --port 0
 *   node --import tsx bench/native/script_node.ts --port 0
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import type { ProtocolType } from "../../src/protocol_type.ts";
import { startTestNode } from "../../testing/node.ts";

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const cert = option("--cert");
const key = option("--key");
const protocols: ProtocolType[] = [
  ...(cert ? ["tls" as const] : []),
  "tcp",
  ...(args.includes("--no-udp") ? [] : ["udp" as const]),
];
// The same id length as the native node's "native-1": equal reply sizes.
const node = await startTestNode({
  port: Number(option("--port") ?? 0),
  nodeId: "script-1",
  protocols,
  ...(cert && key
    ? {
      tls: { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") },
    }
    : {}),
});
console.log(
  `listening tcp=${node.port} udp=${node.udpPort ?? 0} tls=${cert ? 1 : 0}`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await node.close();
  process.stdin.destroy();
  process.exit(0);
};
process.stdin.on("data", () => {});
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
