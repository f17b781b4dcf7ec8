/**
 * 1 to 100 real reference nodes on loopback, served by child processes:
 * how connect time, a full health sweep and the client's memory grow with
 * the number of nodes.
 *
 *   node_modules/.bin/deno run -A --v8-flags=--expose-gc bench/scale/real_nodes.ts
 *   node_modules/.bin/bun bench/scale/real_nodes.ts
 *   node --expose-gc --import tsx bench/scale/real_nodes.ts
 *
 * The nodes run in BENCH_PROCESSES child processes of the same runtime
 * (default 2). For each cluster size a fresh Client with the default pool
 * settings (5 connections per node once filled) is measured:
 * - connect: Client.connect until it resolves (a first connection to
 *   every node, all at once);
 * - ready: until every pool holds its minimum of 5 connections;
 * - sweep: healthCheckAllNodes(), 16 checks at a time (the default), median
 *   of several;
 * - memory: growth of the JS heap and of buffers (outside the JS heap on
 *   V8) from before connect to after the sweeps, after forced collections.
 * Medians over BENCH_REPEAT runs (default 3). BENCH_QUICK=1 shrinks it.
 * Results go to bench/results/scale-<runtime>.json (section "realNodes").
 *
 * @module
 */

import { Client } from "../../src/client/client.ts";
import { DEFAULT_POOL_CONFIG } from "../../src/config/defaults.ts";
import {
  env,
  fixed,
  int,
  median,
  now,
  printTable,
  QUICK,
  runtimeLabel,
} from "../harness.ts";
import { startNodeProcesses } from "./child.ts";
import { canCollect, settledHeap } from "./heap.ts";
import { saveSection } from "./results.ts";

const SIZES = QUICK ? [1, 10] : [1, 10, 25, 50, 100];
const PROCESSES = Number(env("BENCH_PROCESSES") ?? 2);
const REPEAT = Number(env("BENCH_REPEAT") ?? (QUICK ? 1 : 3));
const SWEEPS = QUICK ? 2 : 5;
const MIN = DEFAULT_POOL_CONFIG.minConnections;

interface Run {
  connectMs: number;
  readyMs: number;
  sweepMs: number;
  jsBytes: number;
  externalBytes: number;
  connections: number;
}

async function measure(addresses: string[]): Promise<Run> {
  // What the last run closed is released asynchronously by some runtimes
  // (a pending read holds its buffer until the runtime reports the close):
  // give it time, or it shows up in `before` and shrinks this run's figure.
  await new Promise((r) => setTimeout(r, 500));
  const before = await settledHeap();
  const start = now();
  const client = await Client.connect({
    hosts: addresses,
    healthConfig: { intervalMs: 0 },
  });
  try {
    const connectMs = now() - start;
    const pools = client.manager.nodes.map((n) => n.pool);
    const limit = now() + 60_000;
    while (pools.some((p) => p.stats().open < MIN)) {
      if (now() > limit) throw new Error("pools did not fill in 60 s");
      await new Promise((r) => setTimeout(r, 1));
    }
    const readyMs = now() - start;
    const sweeps: number[] = [];
    for (let i = 0; i <= SWEEPS; i++) {
      const t = now();
      const results = await client.healthCheckAllNodes();
      if (i > 0) sweeps.push(now() - t);
      const failed = results.filter((r) => !r.ok);
      if (failed.length > 0) {
        throw new Error(`${failed.length} checks failed: ${failed[0].error}`);
      }
    }
    const after = await settledHeap();
    return {
      connectMs,
      readyMs,
      sweepMs: median(sweeps),
      jsBytes: after.js - before.js,
      externalBytes: after.external - before.external,
      connections: pools.reduce((n, p) => n + p.stats().open, 0),
    };
  } finally {
    await client.disconnect();
  }
}

async function main() {
  const total = SIZES[SIZES.length - 1];
  const cluster = await startNodeProcesses(total, PROCESSES);
  // Interleave so each process serves a share of every cluster size.
  const addresses = Array.from(
    { length: total },
    (_, i) =>
      cluster.addresses[
        (i % PROCESSES) * Math.ceil(total / PROCESSES) +
        Math.floor(i / PROCESSES)
      ],
  ).filter((a) => a !== undefined);
  try {
    console.log(
      `${runtimeLabel()}: ${total} reference nodes in ${PROCESSES} process(es)` +
        `, ${REPEAT} run(s) per size${QUICK ? " (quick)" : ""}${
          canCollect() ? "" : " — no forced GC: memory figures are noisy"
        }`,
    );
    await measure(addresses.slice(0, 2)); // warm-up
    const sizes = [];
    for (const n of SIZES) {
      const runs: Run[] = [];
      for (let r = 0; r < REPEAT; r++) {
        runs.push(await measure(addresses.slice(0, n)));
      }
      const pick = (f: (r: Run) => number) => median(runs.map(f));
      sizes.push({
        nodes: n,
        connections: pick((r) => r.connections),
        connectMs: pick((r) => r.connectMs),
        readyMs: pick((r) => r.readyMs),
        sweepMs: pick((r) => r.sweepMs),
        jsBytes: pick((r) => r.jsBytes),
        externalBytes: pick((r) => r.externalBytes),
      });
    }
    printTable(
      [
        "nodes",
        "conns",
        "connect ms",
        "ready ms",
        "sweep ms",
        "JS heap KiB",
        "buffers KiB",
        "JS KiB/node",
      ],
      sizes.map((s) => [
        int(s.nodes),
        int(s.connections),
        fixed(s.connectMs, 1),
        fixed(s.readyMs, 1),
        fixed(s.sweepMs, 2),
        int(s.jsBytes / 1024),
        int(s.externalBytes / 1024),
        fixed(s.jsBytes / 1024 / s.nodes, 1),
      ]),
    );
    const file = saveSection("realNodes", {
      quick: QUICK,
      processes: PROCESSES,
      forcedGc: canCollect(),
      sizes,
    });
    console.log(`written to ${file}`);
    console.log(JSON.stringify({ bench: "realNodes", sizes }));
  } finally {
    await cluster.stop();
  }
}

await main();
