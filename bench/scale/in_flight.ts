/**
 * Throughput and latency as the number of requests in flight grows from 1
 * to 10,000 over 8 connections: one Client, one reference node, ECHO
 * requests with a 16-byte payload on loopback.
 *
 *   node_modules/.bin/deno run -A --v8-flags=--expose-gc bench/scale/in_flight.ts
 *   node_modules/.bin/bun bench/scale/in_flight.ts
 *   node --expose-gc --import tsx bench/scale/in_flight.ts
 *
 * Each level keeps exactly N requests in flight (N loops, each sending
 * its next request when the last one answers) and measures, after the
 * first N completions, the completions per second and each request's
 * latency. Levels alternate round by round so drift on a busy machine hits
 * all of them alike; the median round is reported, with p50/p99 over all
 * rounds. Target: throughput at 10,000 in flight within 20% of 256.
 *
 * The node runs in a child process of the same runtime, so the client has
 * its thread to itself; BENCH_INPROC=1 runs it in this process instead.
 * BENCH_QUICK=1 makes it a smoke run of a few seconds. Results go to
 * bench/results/scale-<runtime>.json (section "inFlight").
 *
 * @module
 */

import process from "node:process";
import { Client } from "../../src/client/client.ts";
import { startTestNode } from "../../testing/node.ts";
import { ops } from "../../testing/ops.ts";
import {
  env,
  fixed,
  int,
  median,
  now,
  printTable,
  quantile,
  QUICK,
  runtimeLabel,
} from "../harness.ts";
import { startNodeProcesses } from "./child.ts";
import { saveSection } from "./results.ts";

const CONNECTIONS = 8;
// BENCH_LEVELS=256,10000 narrows a run, e.g. to profile one level.
const LEVELS = env("BENCH_LEVELS")?.split(",").map(Number) ??
  (QUICK ? [1, 16, 256, 2_048] : [1, 4, 16, 64, 256, 1_024, 4_096, 10_000]);
const ROUNDS = QUICK ? 1 : 5;
/** Measured completions per round, after the warm-up of N completions. */
const perRound = (inFlight: number) =>
  QUICK ? 2 * inFlight + 2_000 : inFlight === 1 ? 15_000 : 100_000;
/** A round stops early after this long, whatever its count. */
const ROUND_LIMIT_MS = QUICK ? 1_000 : 4_000;
const PAYLOAD = ops.echo(new Uint8Array(16));
const INPROC = env("BENCH_INPROC") === "1";

/** One level's result. */
export interface InFlightLevel {
  inFlight: number;
  /** Median round, requests per second. */
  throughput: number;
  /** Every round, requests per second. */
  rounds: number[];
  p50Ms: number;
  p99Ms: number;
  /** Median round, CPU time of this process per request, in µs. */
  cpuUsPerRequest: number;
}

interface Round {
  throughput: number;
  cpuUs: number;
  latencies: Float64Array;
}

/** CPU time used by this process so far, in µs (user + system). */
function cpuNow(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

async function round(client: Client, inFlight: number): Promise<Round> {
  const count = perRound(inFlight);
  const latencies = new Float64Array(count);
  let measured = 0;
  let completed = 0;
  let startedAt = 0;
  let endedAt = 0;
  let cpuStart = 0;
  let cpuEnd = 0;
  let stop = false;
  const limit = now() + ROUND_LIMIT_MS + 5_000;
  const lane = async () => {
    while (!stop) {
      const start = now();
      await client.request(PAYLOAD);
      const end = now();
      if (++completed === inFlight) {
        startedAt = end;
        cpuStart = cpuNow();
      } else if (completed > inFlight && !stop) {
        latencies[measured++] = end - start;
        if (measured === count || end - startedAt > ROUND_LIMIT_MS) {
          stop = true;
          endedAt = end;
          cpuEnd = cpuNow();
        }
      }
      if (end > limit) throw new Error("round ran past its time limit");
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return {
    throughput: measured / ((endedAt - startedAt) / 1000),
    cpuUs: (cpuEnd - cpuStart) / measured,
    latencies: latencies.subarray(0, measured),
  };
}

async function main() {
  const external = INPROC ? undefined : await startNodeProcesses(1);
  const local = INPROC ? await startTestNode() : undefined;
  const address = external?.addresses[0] ?? local!.address;
  const client = await Client.connect({
    hosts: [address],
    requestTimeoutMs: 60_000,
    poolConfig: { minConnections: CONNECTIONS, maxConnections: CONNECTIONS },
    healthConfig: { intervalMs: 0 },
  });
  try {
    const pool = client.manager.nodes[0].pool;
    for (let i = 0; i < 500 && pool.stats().open < CONNECTIONS; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (pool.stats().open !== CONNECTIONS) {
      throw new Error(`expected ${CONNECTIONS} connections open`);
    }
    console.log(
      `${runtimeLabel()}: ${CONNECTIONS} connections to one node (${
        INPROC ? "in this process" : "child process"
      }), ${ROUNDS} round(s) per level${QUICK ? " (quick)" : ""}`,
    );
    // Warm-up: let the JIT settle on the hot path.
    await round(client, 64);
    const byLevel = new Map<number, Round[]>(LEVELS.map((l) => [l, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? LEVELS : [...LEVELS].reverse();
      for (const level of order) {
        byLevel.get(level)!.push(await round(client, level));
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
    const levels: InFlightLevel[] = LEVELS.map((inFlight) => {
      const rounds = byLevel.get(inFlight)!;
      const all = new Float64Array(
        rounds.reduce((n, r) => n + r.latencies.length, 0),
      );
      let offset = 0;
      for (const r of rounds) {
        all.set(r.latencies, offset);
        offset += r.latencies.length;
      }
      all.sort();
      return {
        inFlight,
        throughput: median(rounds.map((r) => r.throughput)),
        rounds: rounds.map((r) => Math.round(r.throughput)),
        p50Ms: quantile(all, 0.5),
        p99Ms: quantile(all, 0.99),
        cpuUsPerRequest: median(rounds.map((r) => r.cpuUs)),
      };
    });
    const at256 = levels.find((l) => l.inFlight === 256)?.throughput;
    printTable(
      ["in flight", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "vs 256"],
      levels.map((l) => [
        int(l.inFlight),
        int(l.throughput),
        fixed(l.p50Ms, 3),
        fixed(l.p99Ms, 3),
        fixed(l.cpuUsPerRequest, 2),
        at256 ? `${fixed((100 * l.throughput) / at256, 0)}%` : "-",
      ]),
    );
    // The target compares the top level with 256 round by round: the two
    // ran back to back, so drift on a shared machine hits both alike.
    const top = levels[levels.length - 1];
    const paired = byLevel.has(256)
      ? median(
        byLevel.get(top.inFlight)!.map((r, i) =>
          r.throughput / byLevel.get(256)![i].throughput
        ),
      )
      : NaN;
    console.log(
      `target: ${int(top.inFlight)} in flight within 20% of 256 ` +
        `(median of per-round ratios): ${fixed(100 * paired, 0)}% -> ${
          paired >= 0.8 ? "met" : "MISSED"
        }`,
    );
    const file = saveSection("inFlight", {
      connections: CONNECTIONS,
      node: INPROC ? "in process" : "child process",
      quick: QUICK,
      rounds: ROUNDS,
      topVs256: paired,
      levels,
    });
    console.log(`written to ${file}`);
    console.log(JSON.stringify({ bench: "inFlight", levels }));
  } finally {
    await client.disconnect();
    await local?.close();
    await external?.stop();
  }
}

await main();
