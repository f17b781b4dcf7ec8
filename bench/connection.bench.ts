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
 * runs elsewhere instead (e.g. `npm run node -- --port 7000`), which takes
 * the node's own cost off the client's thread. BENCH_QUICK=1 makes it a
 * smoke run of a few seconds. The last line is one JSON object.
 *
 * @module
 */

import { Connection } from "../src/connection/connection.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import {
  countFigures,
  env,
  envList,
  fixed,
  int,
  newSeries,
  now,
  printTable,
  QUICK,
  quickNote,
  RATE_HEADERS,
  rateCells,
  rateFigures,
  type Round,
  roundFigures,
  roundRatios,
  runRound,
  runRounds,
  runtimeLabel,
  runtimeName,
  type Series,
  splitHostPort,
} from "./harness.ts";
import { connectRaw } from "./raw_client.ts";

type ClientName = "raw" | "connection";
// BENCH_IN_FLIGHT=64 and BENCH_CLIENTS=connection narrow a run, e.g. to
// profile one configuration on its own.
const IN_FLIGHT = envList("BENCH_IN_FLIGHT", "1,64").map(Number);
const CLIENTS = envList("BENCH_CLIENTS", "raw,connection") as ClientName[];
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

/**
 * With many in flight, only every 8th request is timed: a clock read costs
 * ~100 ns on Deno, and paying it twice per request for both clients would
 * add the same constant to each and flatter the ratio.
 */
function sampleEvery(inFlight: number): number {
  return inFlight === 1 ? 1 : 8;
}

interface ClientSeries extends Series {
  client: ClientName;
  bad: number;
}

let node: TestNode | undefined;
let hostname = "127.0.0.1";
let port: number;
const external = env("BENCH_NODE");
if (external) {
  ({ hostname, port } = splitHostPort(external));
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

/** One round of `send`, counting replies of an unexpected size. */
async function measure(
  s: ClientSeries,
  _label: string,
  latencies: Float64Array,
  offset: number,
): Promise<Round & { bad: number }> {
  const send = clients[s.client];
  let bad = 0;
  const round = await runRound(async () => {
    const reply = await send(PAYLOAD);
    if (reply.byteLength !== expectBytes) bad++;
    return true;
  }, {
    inFlight: s.inFlight,
    count: requestsPerRound(s.inFlight),
    limitMs: ROUND_LIMIT_MS,
    sampleEvery: sampleEvery(s.inFlight),
    latencies,
    offset,
  });
  return { ...round, bad };
}

const series: ClientSeries[] = [];
const totalStarted = now();
for (const inFlight of IN_FLIGHT) {
  const count = requestsPerRound(inFlight);
  const pair: ClientSeries[] = CLIENTS.map((client) => ({
    client,
    ...newSeries(
      inFlight,
      Math.ceil(count / sampleEvery(inFlight)) * ROUNDS,
    ),
    bad: 0,
  }));
  // Alternate who goes first, so neither always follows the other.
  await runRounds(
    pair,
    {
      rounds: ROUNDS,
      warmupRounds: WARMUP_ROUNDS,
      scratch: new Float64Array(count),
    },
    measure,
    (s, round) => {
      s.bad += round.bad;
    },
  );
  series.push(...pair);
}
const totalSeconds = (now() - totalStarted) / 1000;

await connection.close();
await raw.close();
await node?.close();

const figures = series.map((s) => ({
  client: s.client,
  ...countFigures(s),
  latencySamples: s.filled,
  ...rateFigures(s),
  badReplies: s.bad,
}));

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
    quickNote(),
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
    ...RATE_HEADERS,
    "vs raw",
  ],
  figures.map((f) => [
    f.client,
    String(f.inFlight),
    int(requestsPerRound(f.inFlight)),
    ...rateCells(f),
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
  results: figures.map(roundFigures),
  ratios: roundRatios(ratios),
}));
