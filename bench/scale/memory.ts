/**
 * Memory per idle connection and per request in flight, measured as the
 * growth of the JavaScript heap (after forced collections) with many of
 * each, on loopback.
 *
 *   node_modules/.bin/deno run -A --v8-flags=--expose-gc bench/scale/memory.ts
 *   node_modules/.bin/bun bench/scale/memory.ts
 *   node --expose-gc --import tsx bench/scale/memory.ts
 *
 * Idle connections: a Client with 1 and then with N pooled connections to
 * a reference node in a child process; the slope between the two is the
 * cost of one more connection. In flight: N requests held by a node that
 * never answers (black_hole.ts, in this process but keeping nothing per
 * request) over 8 connections, through Client.request and through
 * Connection.sendRequest directly. The bench attaches one `.then` to each
 * request so it can settle them later; what that costs on its own is
 * measured too and reported, not subtracted.
 *
 * ArrayBuffer memory (socket and frame buffers) lives outside the JS heap
 * on V8 and is reported apart. Targets: at most 16 KiB of JS heap per idle
 * connection and 512 B per request in flight. Without a forced GC
 * (`--expose-gc` missing on Deno or Node) the figures are noisy and say so.
 * BENCH_QUICK=1 shrinks the counts. Results go to
 * bench/results/scale-<runtime>.json (section "memory").
 *
 * @module
 */

import { Client } from "../../src/client/client.ts";
import { Connection } from "../../src/connection/connection.ts";
import { getAdapter } from "../../src/runtime/detect.ts";
import { ops } from "../../testing/ops.ts";
import { fixed, int, printTable, QUICK, runtimeLabel } from "../harness.ts";
import { startBlackHole } from "./black_hole.ts";
import { startNodeProcesses } from "./child.ts";
import { canCollect, type HeapReading, settledHeap } from "./heap.ts";
import { saveSection } from "./results.ts";

const IDLE_CONNECTIONS = QUICK ? 100 : 1_000;
const IN_FLIGHT = QUICK ? 10_000 : 100_000;
const CONNECTIONS = 8;
const PAYLOAD = ops.echo(new Uint8Array(16));
const noop = () => {};

/** Bytes per unit between two readings. */
function per(before: HeapReading, after: HeapReading, units: number) {
  return {
    js: (after.js - before.js) / units,
    external: (after.external - before.external) / units,
  };
}

async function waitFor(done: () => boolean, what: string, limitMs = 60_000) {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Heap of a client holding `count` idle pooled connections, less before. */
async function idleClient(address: string, count: number) {
  const before = await settledHeap();
  const client = await Client.connect({
    hosts: [address],
    poolConfig: {
      minConnections: count,
      maxConnections: count,
      maxConnecting: 16,
    },
    healthConfig: { intervalMs: 0 },
  });
  const pool = client.manager.nodes[0].pool;
  await waitFor(() => pool.stats().open === count, `${count} connections`);
  // Let every connection's first read and write settle.
  await new Promise((r) => setTimeout(r, 200));
  const after = await settledHeap();
  await client.disconnect();
  return { before, after };
}

async function idleConnections() {
  const cluster = await startNodeProcesses(1);
  try {
    const address = cluster.addresses[0];
    await idleClient(address, 8); // warm-up: code loaded and compiled
    const one = await idleClient(address, 1);
    const many = await idleClient(address, IDLE_CONNECTIONS);
    const grew = (r: { before: HeapReading; after: HeapReading }) => ({
      js: r.after.js - r.before.js,
      external: r.after.external - r.before.external,
    });
    const a = grew(one);
    const b = grew(many);
    return {
      connections: IDLE_CONNECTIONS,
      jsPerConnection: (b.js - a.js) / (IDLE_CONNECTIONS - 1),
      externalPerConnection: (b.external - a.external) / (IDLE_CONNECTIONS - 1),
      clientWithOneConnection: a.js,
    };
  } finally {
    await cluster.stop();
  }
}

/** Cost of a pending promise with one `.then` attached, as the bench does. */
async function thenCost(count: number) {
  const keep: Promise<void>[] = new Array(count);
  const pending = new Promise<void>(noop);
  const before = await settledHeap();
  for (let i = 0; i < count; i++) keep[i] = pending.then(noop, noop);
  const after = await settledHeap();
  const cost = per(before, after, count).js;
  keep.length = 0;
  return cost;
}

type Send = (payload: Uint8Array) => Promise<unknown>;

/**
 * Heap per request with `count` requests held by a black hole: the
 * requests are sent, counted at the node, and the heap read while all of
 * them are still in flight. Then the connections are dropped, which fails
 * them all.
 */
async function heldRequests(
  count: number,
  open: (address: string) => Promise<{ send: Send; drop: () => Promise<void> }>,
) {
  const adapter = await getAdapter();
  const hole = await startBlackHole(adapter);
  const { send, drop } = await open(hole.address);
  let failed = 0;
  const onFail = () => failed++;
  try {
    const before = await settledHeap();
    for (let i = 0; i < count; i++) send(PAYLOAD).then(noop, onFail);
    await waitFor(() => hole.requests === count, `${count} requests sent`);
    const after = await settledHeap();
    return per(before, after, count);
  } finally {
    await drop();
    await waitFor(() => failed === count, "requests failed after the drop");
    await hole.close();
  }
}

async function viaClient(address: string) {
  const client = await Client.connect({
    hosts: [address],
    requestTimeoutMs: 600_000,
    poolConfig: { minConnections: CONNECTIONS, maxConnections: CONNECTIONS },
    healthConfig: { intervalMs: 0 },
  });
  const pool = client.manager.nodes[0].pool;
  await waitFor(() => pool.stats().open === CONNECTIONS, "pool filled");
  return {
    send: (payload: Uint8Array) => client.request(payload, { retry: false }),
    async drop() {
      client.manager.destroyConnections(new Error("bench: dropped"));
      await client.disconnect();
    },
  };
}

async function viaConnections(address: string) {
  const adapter = await getAdapter();
  const [hostname, port] = [
    address.slice(0, address.lastIndexOf(":")),
    Number(address.slice(address.lastIndexOf(":") + 1)),
  ];
  const connections = await Promise.all(
    Array.from({ length: CONNECTIONS }, () =>
      Connection.connect({
        adapter,
        hostname,
        port,
        requestTimeoutMs: 600_000,
      })),
  );
  let next = 0;
  return {
    send: (payload: Uint8Array) =>
      connections[next++ % CONNECTIONS].sendRequest(payload),
    drop() {
      for (const c of connections) c.destroy();
      return Promise.resolve();
    },
  };
}

async function main() {
  const gc = canCollect();
  console.log(
    `${runtimeLabel()}: memory${QUICK ? " (quick)" : ""}${
      gc ? "" : " — no forced GC: run with --expose-gc for clean figures"
    }`,
  );
  const idle = await idleConnections();
  // Warm the request paths before measuring them.
  await heldRequests(1_000, viaClient);
  await heldRequests(1_000, viaConnections);
  const client = await heldRequests(IN_FLIGHT, viaClient);
  const connection = await heldRequests(IN_FLIGHT, viaConnections);
  const then = await thenCost(IN_FLIGHT);

  printTable(
    ["what", "count", "JS heap each", "buffers each", "target"],
    [
      [
        "idle connection (Client pool)",
        int(idle.connections),
        `${int(idle.jsPerConnection)} B`,
        `${int(idle.externalPerConnection)} B`,
        `${idle.jsPerConnection <= 16 * 1024 ? "met" : "MISSED"} (16 KiB)`,
      ],
      [
        "request in flight, Client.request",
        int(IN_FLIGHT),
        `${int(client.js)} B`,
        `${fixed(client.external, 1)} B`,
        `${client.js <= 512 ? "met" : "MISSED"} (512 B)`,
      ],
      [
        "request in flight, Connection.sendRequest",
        int(IN_FLIGHT),
        `${int(connection.js)} B`,
        `${fixed(connection.external, 1)} B`,
        `${connection.js <= 512 ? "met" : "MISSED"} (512 B)`,
      ],
      [
        "of which the bench's own .then",
        int(IN_FLIGHT),
        `${int(then)} B`,
        "-",
        "-",
      ],
    ],
  );
  const result = {
    forcedGc: gc,
    quick: QUICK,
    idle,
    inFlight: {
      requests: IN_FLIGHT,
      connections: CONNECTIONS,
      client,
      connection,
      benchThen: then,
    },
  };
  const file = saveSection("memory", result);
  console.log(`written to ${file}`);
  console.log(JSON.stringify({ bench: "memory", ...result }));
}

await main();
