/**
 * Throughput and latency of one SDK `Connection` against the raw-socket
 * baseline (raw_client.ts), in one run, against the same reference node on
 * loopback: ECHO requests with a 16-byte payload, 1 and 64 in flight.
 *
 *   deno run -A bench/connection.bench.ts
 *   bun bench/connection.bench.ts
 *   node --import tsx bench/connection.bench.ts
 *
 * The two clients alternate round by round (raw, conn, then conn, raw, …)
 * so drift in a noisy machine hits both alike; each round is a fixed count
 * of requests, cut short by a time limit. Reported: the median round's
 * req/s per client, the ratio Connection/raw (target at 64 in flight:
 * ≥ 70%), and p50/p99 latency over all measured rounds (every request
 * timed at 1 in flight, every 8th at 64).
 *
 * By default the node runs in this process (client and node share one
 * thread, as in the test suite). BENCH_NODE=host:port targets a node that
 * runs elsewhere instead (e.g. `deno task node --port 7000`), which takes
 * the node's own cost off the client's thread. BENCH_QUICK=1 makes it a
 * smoke run of a few seconds. The last line is one JSON object.
 *
 * @module
 */

import { Connection } from "../src/connection.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
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
  runtimeName,
  yieldToEventLoop,
} from "./harness.ts";
import { connectRaw } from "./raw_client.ts";

type ClientName = "raw" | "connection";
// BENCH_IN_FLIGHT=64 and BENCH_CLIENTS=connection narrow a run, e.g. to
// profile one configuration on its own.
const IN_FLIGHT = (env("BENCH_IN_FLIGHT") ?? "1,64").split(",").map(Number);
const CLIENTS = (env("BENCH_CLIENTS") ?? "raw,connection").split(
  ",",
) as ClientName[];
const ROUNDS = QUICK ? 2 : 9;
const WARMUP_ROUNDS = QUICK ? 1 : 2;
/** Requests per round, by concurrency: roughly 0.3-1 s each at full size. */
function requestsPerRound(inFlight: number): number {
  if (inFlight === 1) return QUICK ? 500 : 10_000;
  return QUICK ? 4_000 : 100_000;
}
/** A round stops early after this long, whatever its count. */
const ROUND_LIMIT_MS = QUICK ? 1_000 : 3_000;
const PAYLOAD = ops.echo(new Uint8Array(16));

type Send = (payload: Uint8Array) => Promise<Uint8Array>;

interface Round {
  completed: number;
  sampled: number;
  seconds: number;
  bad: number;
}

/**
 * With many in flight, only every 8th request is timed: a clock read costs
 * ~100 ns on Deno, and paying it twice per request for both clients would
 * add the same constant to each and flatter the ratio.
 */
function sampleEvery(inFlight: number): number {
  return inFlight === 1 ? 1 : 8;
}

/**
 * Runs `count` requests with `inFlight` workers, each awaiting its reply
 * before the next. Sampled latencies go into `latencies` from `offset` on.
 */
async function runRound(
  send: Send,
  inFlight: number,
  count: number,
  expectBytes: number,
  latencies: Float64Array,
  offset: number,
): Promise<Round> {
  const every = sampleEvery(inFlight);
  let issued = 0;
  let completed = 0;
  let sampled = 0;
  let bad = 0;
  let stop = false;
  const started = now();
  const deadline = started + ROUND_LIMIT_MS;
  const worker = async () => {
    while (!stop && issued < count) {
      if (issued++ % every !== 0) {
        const reply = await send(PAYLOAD);
        completed++;
        if (reply.byteLength !== expectBytes) bad++;
        continue;
      }
      const t0 = now();
      const reply = await send(PAYLOAD);
      const t1 = now();
      completed++;
      latencies[offset + sampled++] = t1 - t0;
      if (reply.byteLength !== expectBytes) bad++;
      if (t1 > deadline) stop = true;
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < inFlight; i++) workers.push(worker());
  await Promise.all(workers);
  return { completed, sampled, seconds: (now() - started) / 1000, bad };
}

interface Series {
  client: ClientName;
  inFlight: number;
  rates: number[];
  latencies: Float64Array;
  /** Latency samples recorded. */
  filled: number;
  requests: number;
  bad: number;
}

let node: TestNode | undefined;
let hostname = "127.0.0.1";
let port: number;
const external = env("BENCH_NODE");
if (external) {
  const at = external.lastIndexOf(":");
  hostname = external.slice(0, at);
  port = Number(external.slice(at + 1));
} else {
  node = await startTestNode({ nodeId: "bench-node" });
  port = node.port;
}

const adapter = await getAdapter();
const connection = await Connection.connect({
  adapter,
  hostname,
  port,
  clientName: "bench",
});
const raw = await connectRaw(hostname, port);
const clients: Record<ClientName, Send> = {
  raw: raw.request,
  connection: (payload) => connection.sendRequest(payload),
};

// Reply = node id length (u8) + node id + echoed data.
const probe = await raw.request(PAYLOAD);
const expectBytes = probe.byteLength;
const check = await connection.sendRequest(PAYLOAD);
if (check.byteLength !== expectBytes) {
  throw new Error(
    `Connection reply is ${check.byteLength} B, raw reply ${expectBytes} B`,
  );
}

const series: Series[] = [];
const totalStarted = now();
for (const inFlight of IN_FLIGHT) {
  const count = requestsPerRound(inFlight);
  const pair: Series[] = CLIENTS.map((client) => ({
    client,
    inFlight,
    rates: [],
    latencies: new Float64Array(
      Math.ceil(count / sampleEvery(inFlight)) * ROUNDS,
    ),
    filled: 0,
    requests: 0,
    bad: 0,
  }));
  const scratch = new Float64Array(count);
  for (let w = 0; w < WARMUP_ROUNDS; w++) {
    for (const s of pair) {
      await runRound(
        clients[s.client],
        inFlight,
        count,
        expectBytes,
        scratch,
        0,
      );
    }
  }
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate who goes first, so neither always follows the other.
    const order = r % 2 === 0 ? pair : [...pair].reverse();
    for (const s of order) {
      await yieldToEventLoop();
      const round = await runRound(
        clients[s.client],
        inFlight,
        count,
        expectBytes,
        s.latencies,
        s.filled,
      );
      s.filled += round.sampled;
      s.requests += round.completed;
      s.bad += round.bad;
      s.rates.push(round.completed / round.seconds);
    }
  }
  series.push(...pair);
}
const totalSeconds = (now() - totalStarted) / 1000;

await connection.close();
await raw.close();
await node?.close();

interface Figures {
  client: string;
  inFlight: number;
  rounds: number;
  requests: number;
  latencySamples: number;
  reqPerSecond: number;
  minReqPerSecond: number;
  maxReqPerSecond: number;
  p50Us: number;
  p99Us: number;
  badReplies: number;
}

const figures: Figures[] = series.map((s) => {
  const sorted = s.latencies.subarray(0, s.filled).sort();
  return {
    client: s.client,
    inFlight: s.inFlight,
    rounds: s.rates.length,
    requests: s.requests,
    latencySamples: s.filled,
    reqPerSecond: median(s.rates),
    minReqPerSecond: Math.min(...s.rates),
    maxReqPerSecond: Math.max(...s.rates),
    p50Us: quantile(sorted, 0.5) * 1000,
    p99Us: quantile(sorted, 0.99) * 1000,
    badReplies: s.bad,
  };
});

const ratios: Record<string, number> = {};
for (const inFlight of IN_FLIGHT) {
  const rate = (client: ClientName) =>
    figures.find((f) => f.client === client && f.inFlight === inFlight)
      ?.reqPerSecond;
  const rawRate = rate("raw");
  const connRate = rate("connection");
  if (rawRate !== undefined && connRate !== undefined) {
    ratios[inFlight] = connRate / rawRate;
  }
}

console.log(
  `Connection vs raw socket on ${runtimeLabel()}, ECHO of ${
    PAYLOAD.byteLength - 1
  } B, node ${external ? `external at ${external}` : "in-process"}` +
    `${QUICK ? " (BENCH_QUICK: smoke run, figures not meaningful)" : ""}`,
);
console.log(
  `${ROUNDS} alternating rounds per client after ${WARMUP_ROUNDS} warm-up; ` +
    `${fixed(totalSeconds, 1)} s measured`,
);
printTable(
  [
    "client",
    "in flight",
    "req/round",
    "median req/s",
    "min",
    "max",
    "p50 us",
    "p99 us",
    "vs raw",
  ],
  figures.map((f) => [
    f.client,
    String(f.inFlight),
    int(requestsPerRound(f.inFlight)),
    int(f.reqPerSecond),
    int(f.minReqPerSecond),
    int(f.maxReqPerSecond),
    fixed(f.p50Us, 0),
    fixed(f.p99Us, 0),
    f.client === "raw" || ratios[f.inFlight] === undefined
      ? "-"
      : `${fixed(ratios[f.inFlight] * 100, 1)}%`,
  ]),
);
const target = ratios[64];
if (target !== undefined) {
  console.log(
    `target Connection/raw at 64 in flight >= 70%: ${fixed(target * 100, 1)}% ${
      target >= 0.7 ? "(met)" : "(NOT met)"
    }`,
  );
}
const bad = figures.reduce((sum, f) => sum + f.badReplies, 0);
if (bad > 0) console.log(`WARNING: ${bad} replies had an unexpected size`);
console.log(JSON.stringify({
  bench: "connection",
  runtime: runtimeName(),
  version: runtimeLabel(),
  quick: QUICK,
  node: external ?? "in-process",
  payloadBytes: PAYLOAD.byteLength,
  results: figures.map((f) => ({
    ...f,
    reqPerSecond: Math.round(f.reqPerSecond),
    minReqPerSecond: Math.round(f.minReqPerSecond),
    maxReqPerSecond: Math.round(f.maxReqPerSecond),
    p50Us: Number(f.p50Us.toFixed(1)),
    p99Us: Number(f.p99Us.toFixed(1)),
  })),
  ratios: Object.fromEntries(
    Object.entries(ratios).map(([k, v]) => [k, Number(v.toFixed(3))]),
  ),
}));
