/**
 * Child-process entry of bench/slow_node.ts, so that neither the nodes
 * nor the proxies' forwarding take CPU from the client being measured.
 * `pair`: the first two reference nodes. `third`: the third node and the
 * fault proxies in front of it (no fault; 50 ms stalls; every reply 20 ms
 * late; every reply 2 ms late; and, for bench/tail.ts, a proxy that turns
 * every ECHO into a FAIL with a retryable error), in a process apart so
 * that the proxies' work does not slow the other two nodes. Prints the addresses as one JSON line and runs until
 * its stdin closes (the parent went away) or 15 minutes pass.
 *
 *   node_modules/.bin/deno run -A bench/slow_node_cluster.ts pair
 *   node_modules/.bin/deno run -A bench/slow_node_cluster.ts third
 *
 * @module
 */

import { createConnection, createServer, type Socket } from "node:net";
import process from "node:process";
import { startTestNode } from "../testing/node.ts";
import { Op } from "../testing/ops.ts";
import { startFaultProxy } from "../testing/proxy.ts";

/** What a child prints: where the client finds the nodes it runs. */
export interface SlowNodeCluster {
  /** The nodes, direct. */
  nodes: string[];
  /** The third node behind a proxy with no fault (`third` only). */
  proxied?: string;
  /** The third node behind a proxy that holds 2.5% of chunks for 50 ms. */
  gc?: string;
  /** The third node behind a proxy that delays every chunk 10 ms. */
  slow?: string;
  /** Behind a proxy that delays every chunk 1 ms: about 10× the others. */
  tenx?: string;
  /** Behind a proxy that makes every ECHO fail (retryable error 100). */
  failing?: string;
}

/** REQUEST frames' message type and header size (docs/PROTOCOL.md). */
const REQUEST = 0x20;
const HEADER = 16;

/**
 * A proxy that rewrites each REQUEST carrying an ECHO of 3 bytes or more,
 * in place, into a FAIL with code 100, retryable: the node then answers
 * every request with a retryable error, and everything else (handshake,
 * pings) passes untouched, so health checks still pass.
 */
function startFailingProxy(target: string): Promise<string> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(":")),
    Number(target.slice(target.lastIndexOf(":") + 1)),
  ];
  const server = createServer((client: Socket) => {
    client.setNoDelay(true);
    const upstream = createConnection({ port, host });
    upstream.setNoDelay(true);
    let pending: Uint8Array = new Uint8Array(0);
    client.on("data", (chunk: Uint8Array) => {
      const buf: Uint8Array = pending.byteLength === 0
        ? new Uint8Array(chunk)
        : concat(pending, chunk);
      let at = 0;
      while (buf.byteLength - at >= HEADER) {
        const length = ((buf[at + 12] << 24) | (buf[at + 13] << 16) |
          (buf[at + 14] << 8) | buf[at + 15]) >>> 0;
        if (buf.byteLength - at < HEADER + length) break;
        const p = at + HEADER;
        if (buf[at + 1] === REQUEST && length >= 4 && buf[p] === Op.Echo) {
          buf[p] = Op.Fail;
          buf[p + 1] = 0;
          buf[p + 2] = 100;
          buf[p + 3] = 1;
          buf.fill(0x78, p + 4, p + length); // "xxx…", the message
        }
        at = p + length;
      }
      if (at > 0) upstream.write(buf.subarray(0, at));
      pending = buf.subarray(at);
    });
    upstream.on("data", (chunk: Uint8Array) => client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as { port: number };
      resolve(`127.0.0.1:${address.port}`);
    });
  });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

/** mulberry32: the same stalls on every run and runtime. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  process.argv.slice(2);
const role = args[0];
if (role !== "pair" && role !== "third") {
  throw new RangeError(`expected "pair" or "third", got ${args[0]}`);
}

// Ids of equal length, so that the client can tell the third node's
// replies by one byte (the id's last character) at the same offset.
const ids = role === "pair" ? [0, 1] : [2];
const nodes = [];
for (const i of ids) {
  nodes.push(await startTestNode({ nodeId: `slow-bench-${i}` }));
}
const cluster: SlowNodeCluster = { nodes: nodes.map((n) => n.address) };
if (role === "third") {
  const third = nodes[0];
  const clean = await startFaultProxy({ target: third });
  // The proxy draws one number per chunk it forwards, either way, and
  // waits that number × jitterMs: 1 chunk in 40 waits 50 ms, the rest not
  // at all. Order is kept, so what follows a held chunk on its connection
  // waits too. As many stalls as holding 5% of the reply chunks alone.
  const coin = seeded(12);
  const gc = await startFaultProxy({
    target: third,
    faults: { jitterMs: 50 },
    random: () => (coin() < 0.025 ? 0.999999 : 0),
  });
  // 10 ms each way: every request to the third node answered 20 ms late.
  const slow = await startFaultProxy({
    target: third,
    faults: { latencyMs: 10 },
  });
  // 1 ms each way: about 10× the healthy nodes' reply time under load.
  const tenx = await startFaultProxy({
    target: third,
    faults: { latencyMs: 1 },
  });
  cluster.tenx = tenx.address;
  cluster.failing = await startFailingProxy(third.address);
  cluster.proxied = clean.address;
  cluster.gc = gc.address;
  cluster.slow = slow.address;
}
console.log(JSON.stringify(cluster));

const exit = () => process.exit(0);
process.stdin.on("end", exit);
process.stdin.on("close", exit);
process.stdin.resume();
// A bound on the child's life even if the parent's pipe is never closed.
setTimeout(exit, 15 * 60_000);
