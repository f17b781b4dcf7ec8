/**
 * End-to-end throughput and latency of `Client.request` over a cluster of
 * three reference nodes on loopback, beside the raw-socket baseline of
 * raw_client.ts in the same run: ECHO requests with a 16-byte payload, 64
 * and 256 in flight.
 *
 *   deno run -A bench/client.bench.ts
 *   bun bench/client.bench.ts
 *   node --import tsx bench/client.bench.ts
 *
 * Contenders, each over the same three nodes:
 * - raw: one raw connection per node, requests spread round-robin over
 *   them (what the client's default round-robin balancer does), nothing
 *   else: no pool, no health, no retry, no timeouts.
 * - client: `Client.connect({ hosts, healthConfig: { intervalMs: 0 } })`
 *   with the default pool (min 5, max 20 connections per node).
 * - client 1/node: the same with min = max = 1 per node, i.e. as many
 *   sockets as raw.
 * - client-ewma (only when BENCH_CLIENTS names it): the default client
 *   with `loadBalancing: "peak-ewma"`.
 * - batch: the default client's `requestMany`. To keep N requests in
 *   flight as the others do, BENCH_BATCH_CALLERS (default 4) callers each
 *   loop over `requestMany` of N / callers payloads: a caller's next batch
 *   goes out when its last one has settled, so between N(1 - 1/callers)
 *   and N are outstanding (one caller would leave the pipe empty between
 *   batches). Its latency columns are a whole batch's round trip.
 *
 * The health loop is off so that no background ping lands in one
 * contender's round and not another's. The order of the contenders rotates
 * every round, so drift on a busy machine hits all alike; each round is a
 * fixed count of requests, cut short by a time limit. Reported: the median
 * round's req/s, the ratio client/raw (target with 64 or more in flight:
 * ≥ 70%), and p50/p99 latency over all measured rounds (every 8th request
 * timed; a clock read on every request would add the same constant to
 * each contender and flatter the ratio).
 *
 * By default the nodes are native C nodes (bench/native/), each in its own
 * process, so the client's thread does only the client's work; without a
 * C compiler the bench says so and falls back to in-process nodes.
 * BENCH_IN_PROCESS=1 runs the TypeScript reference nodes in this process
 * (client and nodes share one thread, as in the test suite), and
 * BENCH_NODES=host:port,host:port,... targets nodes that run elsewhere
 * (e.g. `npm run node -- --port 7000`). BENCH_IN_FLIGHT
 * (e.g. `64`) and BENCH_CLIENTS (e.g. `client`) narrow a run, to profile
 * one case alone. BENCH_QUICK=1 makes it a smoke run of a few seconds. The
 * last line is one JSON object.
 *
 * @module
 */

import { Client } from "../src/client/client.ts";
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
import { connectRaw, type RawClient } from "./raw_client.ts";
import { type BenchNode, startNativeNode } from "./native/native_node.ts";

type ContenderName = "raw" | "client" | "client-1" | "client-ewma" | "batch";

const NODE_COUNT = 3;
const IN_FLIGHT = envList("BENCH_IN_FLIGHT", "64,256").map(Number);
const CONTENDERS = envList(
  "BENCH_CLIENTS",
  "raw,client,client-1,batch",
) as ContenderName[];
/** Concurrent `requestMany` callers of the batch contender. */
const BATCH_CALLERS = Number(env("BENCH_BATCH_CALLERS") ?? 4);
const ROUNDS = QUICK ? 2 : 7;
const WARMUP_ROUNDS = QUICK ? 1 : 2;
/** Requests per round: roughly 0.5-1.5 s each at full size. */
const REQUESTS_PER_ROUND = QUICK ? 4_000 : 100_000;
/** A round stops early after this long, whatever its count. */
const ROUND_LIMIT_MS = QUICK ? 1_000 : 4_000;
/** Every 8th request is timed. */
const SAMPLE_EVERY = 8;
const PAYLOAD = ops.echo(new Uint8Array(16));

const LABELS: Record<ContenderName, string> = {
  raw: "raw, 1 conn/node",
  client: "client, pool 5-20/node",
  "client-1": "client, pool 1/node",
  "client-ewma": "client, peak-ewma",
  batch: "requestMany, pool 5-20/node",
};

type Send = (payload: Uint8Array) => Promise<Uint8Array>;

// --- the cluster

const nodes: TestNode[] = [];
const natives: BenchNode[] = [];
let hosts: string[];
let where: string;
const external = env("BENCH_NODES");
if (external) {
  hosts = external.split(",");
  where = external;
} else {
  if (env("BENCH_IN_PROCESS") !== "1") {
    for (let i = 0; i < NODE_COUNT; i++) {
      const node = await startNativeNode({ udp: false });
      if ("unavailable" in node) {
        console.error(
          `WARNING: native node ${node.unavailable}; the nodes run in this process`,
        );
        break;
      }
      natives.push(node);
    }
  }
  if (natives.length === NODE_COUNT) {
    hosts = natives.map((n) => n.address);
    where = `${NODE_COUNT} native, out of process`;
  } else {
    for (const node of natives.splice(0)) await node.close();
    // Ids of equal length, so every node's reply has the same size.
    for (let i = 0; i < NODE_COUNT; i++) {
      nodes.push(await startTestNode({ nodeId: `bench-node-${i}` }));
    }
    hosts = nodes.map((n) => n.address);
    where = `${NODE_COUNT} in-process`;
  }
}

// --- the contenders

const raws: RawClient[] = [];
const clients: Client[] = [];
const senders = {} as Record<ContenderName, Send>;
let batchClient: Client | undefined;
for (const name of CONTENDERS) {
  if (name === "raw") {
    for (const host of hosts) {
      const { hostname, port } = splitHostPort(host);
      raws.push(await connectRaw(hostname, port));
    }
    let next = 0;
    senders.raw = (payload) => raws[next++ % raws.length].request(payload);
  } else {
    const client = await Client.connect({
      hosts,
      healthConfig: { intervalMs: 0 },
      ...(name === "client-1"
        ? { poolConfig: { minConnections: 1, maxConnections: 1 } }
        : {}),
      // Opt-in contender (BENCH_CLIENTS=raw,client,client-ewma): what the
      // latency-aware balancer's clock reads cost per request.
      ...(name === "client-ewma"
        ? { loadBalancing: "peak-ewma" as const }
        : {}),
    });
    clients.push(client);
    senders[name] = (payload) => client.request(payload);
    if (name === "batch") batchClient = client;
  }
}

// Reply = node id length (u8) + node id + echoed data: the same size from
// every node and every contender, or something is wrong.
const probe = await senders[CONTENDERS[0]](PAYLOAD);
const expectBytes = probe.byteLength;
for (const name of CONTENDERS) {
  for (let i = 0; i < NODE_COUNT; i++) {
    const reply = await senders[name](PAYLOAD);
    if (reply.byteLength !== expectBytes) {
      throw new Error(
        `${name} reply is ${reply.byteLength} B, expected ${expectBytes} B`,
      );
    }
  }
}

// --- the rounds

interface ContenderSeries extends Series {
  name: ContenderName;
  bad: number;
}

/** One round of `s`; a failure names the contender, the round and the nodes' counters. */
/**
 * One round of the batch contender: BATCH_CALLERS loops of `requestMany`,
 * each batch N / callers payloads, until the round's count or time limit.
 */
async function batchRound(
  client: Client,
  inFlight: number,
  latencies: Float64Array,
  offset: number,
): Promise<Round & { bad: number }> {
  const size = Math.max(1, Math.floor(inFlight / BATCH_CALLERS));
  const batch = new Array<Uint8Array>(size).fill(PAYLOAD);
  let issued = 0;
  let completed = 0;
  let sampled = 0;
  let bad = 0;
  let stop = false;
  const started = now();
  const deadline = started + ROUND_LIMIT_MS;
  const caller = async () => {
    while (!stop && issued < REQUESTS_PER_ROUND) {
      issued += size;
      const t0 = now();
      const results = await client.requestMany(batch);
      const t1 = now();
      for (const r of results) {
        if (r.ok && r.value.byteLength === expectBytes) completed++;
        else bad++;
      }
      if (offset + sampled < latencies.length) {
        latencies[offset + sampled++] = t1 - t0;
      }
      if (t1 > deadline) stop = true;
    }
  };
  const callers: Promise<void>[] = [];
  for (let i = 0; i < BATCH_CALLERS; i++) callers.push(caller());
  await Promise.all(callers);
  return { completed, sampled, seconds: (now() - started) / 1000, bad };
}

async function measure(
  s: ContenderSeries,
  label: string,
  latencies: Float64Array,
  offset: number,
): Promise<Round & { bad: number }> {
  const send = senders[s.name];
  let bad = 0;
  try {
    if (s.name === "batch") {
      return await batchRound(batchClient!, s.inFlight, latencies, offset);
    }
    const round = await runRound(async () => {
      const reply = await send(PAYLOAD);
      if (reply.byteLength !== expectBytes) bad++;
      return true;
    }, {
      inFlight: s.inFlight,
      count: REQUESTS_PER_ROUND,
      limitMs: ROUND_LIMIT_MS,
      sampleEvery: SAMPLE_EVERY,
      latencies,
      offset,
    });
    return { ...round, bad };
  } catch (error) {
    const counters = nodes.map((n) => JSON.stringify(n.stats)).join(" ");
    throw new Error(
      `${LABELS[s.name]} failed at ${s.inFlight} in flight, ${label}: ` +
        `${error instanceof Error ? error.message : String(error)}` +
        (counters ? `; node counters ${counters}` : ""),
      { cause: error },
    );
  }
}

const series: ContenderSeries[] = [];
const totalStarted = now();
const scratch = new Float64Array(Math.ceil(REQUESTS_PER_ROUND / SAMPLE_EVERY));
for (const inFlight of IN_FLIGHT) {
  const group: ContenderSeries[] = CONTENDERS.map((name) => ({
    name,
    ...newSeries(inFlight, scratch.length * ROUNDS),
    bad: 0,
  }));
  // Rotate who goes first, so nobody always follows the same contender.
  await runRounds(
    group,
    {
      rounds: ROUNDS,
      warmupRounds: WARMUP_ROUNDS,
      scratch,
    },
    measure,
    (s, round) => {
      s.bad += round.bad;
    },
  );
  series.push(...group);
}
const totalSeconds = (now() - totalStarted) / 1000;

/** Connections each client holds at the end, per node (pools may grow). */
const openPerNode = clients.map((c) =>
  c.stats().nodes.map((n) => n.pool.open).join("/")
);
for (const client of clients) await client.disconnect();
for (const raw of raws) await raw.close();
for (const node of nodes) await node.close();
for (const node of natives) await node.close();

// --- the report

const figures = series.map((s) => ({
  client: s.name,
  ...countFigures(s),
  latencySamples: s.filled,
  ...rateFigures(s),
  badReplies: s.bad,
}));

/** client/raw per client configuration and concurrency, e.g. "client@64". */
const ratios: Record<string, number> = {};
for (const f of figures) {
  if (f.client === "raw") continue;
  const raw = figures.find((r) =>
    r.client === "raw" && r.inFlight === f.inFlight
  );
  if (raw !== undefined) {
    ratios[`${f.client}@${f.inFlight}`] = f.reqPerSecond / raw.reqPerSecond;
  }
}

console.log(
  `Client.request vs raw sockets on ${runtimeLabel()}: nodes ` +
    `${external ? `external at ${external}` : `(${where})`}, ECHO of ${
      PAYLOAD.byteLength - 1
    } B` +
    quickNote(),
);
console.log(
  `${ROUNDS} rotating rounds per contender after ${WARMUP_ROUNDS} warm-up, ` +
    `${int(REQUESTS_PER_ROUND)} requests per round; ` +
    `${fixed(totalSeconds, 1)} s measured`,
);
printTable(
  [
    "contender",
    "in flight",
    ...RATE_HEADERS,
    "vs raw",
  ],
  figures.map((f) => {
    const ratio = ratios[`${f.client}@${f.inFlight}`];
    return [
      LABELS[f.client],
      String(f.inFlight),
      ...rateCells(f),
      ratio === undefined ? "-" : `${fixed(ratio * 100, 1)}%`,
    ];
  }),
);
if (clients.length > 0) {
  console.log(
    `connections open per node at the end: ` +
      CONTENDERS.filter((n) => n !== "raw").map((n, i) =>
        `${LABELS[n]} ${openPerNode[i]}`
      ).join("; "),
  );
}
for (const [key, ratio] of Object.entries(ratios)) {
  const [name, inFlight] = key.split("@") as [ContenderName, string];
  if (Number(inFlight) < 64) continue;
  console.log(
    `target client/raw at ${inFlight} in flight >= 70%, ${LABELS[name]}: ` +
      `${fixed(ratio * 100, 1)}% ${ratio >= 0.7 ? "(met)" : "(NOT met)"}`,
  );
}
const bad = figures.reduce((sum, f) => sum + f.badReplies, 0);
if (bad > 0) console.log(`WARNING: ${bad} replies had an unexpected size`);
console.log(JSON.stringify({
  bench: "client",
  runtime: runtimeName(),
  version: runtimeLabel(),
  quick: QUICK,
  nodes: where,
  payloadBytes: PAYLOAD.byteLength,
  results: figures.map(roundFigures),
  ratios: roundRatios(ratios),
}));
