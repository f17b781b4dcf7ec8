/**
 * Child-process entry: starts `count` reference nodes on loopback (first
 * argument, default 1), prints their addresses as one JSON line, and runs
 * until its stdin closes (the parent went away) or 15 minutes pass.
 *
 *   deno run -A bench/scale/serve_nodes.ts 50
 *
 * @module
 */

import process from "node:process";
import { startTestNode } from "../../testing/node.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  process.argv.slice(2);
const count = Number(args[0] ?? 1);
if (!Number.isInteger(count) || count < 1 || count > 1000) {
  throw new RangeError(`expected a node count in 1-1000, got ${args[0]}`);
}
const nodes = [];
for (let i = 0; i < count; i++) {
  nodes.push(await startTestNode({ nodeId: `bench-${i}` }));
}
console.log(JSON.stringify({ addresses: nodes.map((n) => n.address) }));

const exit = () => process.exit(0);
process.stdin.on("end", exit);
process.stdin.on("close", exit);
process.stdin.resume();
// A bound on the child's life even if the parent's pipe is never closed.
setTimeout(exit, 15 * 60_000);
