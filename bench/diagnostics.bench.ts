/**
 * What the diagnostics channels cost `Client.request`: the same client with
 * a subscriber on every channel and with none, beside the client as it was
 * before the channels existed, in one run over three reference nodes on
 * loopback (ECHO of 16 bytes, 64 and 256 in flight).
 *
 *   git archive <commit before the channels> src | (mkdir -p .tmp/before && tar -x -C .tmp/before)
 *   BENCH_BEFORE=.tmp/before deno run -A bench/diagnostics.bench.ts
 *   BENCH_BEFORE=.tmp/before bun bench/diagnostics.bench.ts
 *   BENCH_BEFORE=.tmp/before node --import tsx bench/diagnostics.bench.ts
 *
 * Contenders:
 * - before: `Client` from BENCH_BEFORE's `src/` (a copy of the sources
 *   before the channels), with the default pool; left out when
 *   BENCH_BEFORE is unset.
 * - none: today's `Client`, nobody subscribed to any channel.
 * - subscribed: the same client object, with a counting subscriber on
 *   each of the seven channels for the length of its rounds (subscribed
 *   before the round, unsubscribed after), so every request builds and
 *   publishes its messages.
 *
 * The harness rotates the order every round, so drift on a busy machine
 * hits all alike. Reported per concurrency: the median round's req/s of
 * each, the ratio of the medians, and the median of the ratios of the
 * rounds taken side by side (more robust when the machine is noisy). The
 * target: none within 3% of before. BENCH_ROUNDS (default 9) sets the
 * measured rounds; BENCH_QUICK=1 makes it a smoke run. The last line is
 * one JSON object.
 *
 * @module
 */

import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Client } from "../src/client/client.ts";
import { DIAGNOSTICS_CHANNELS } from "../src/diagnostics/channels.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import {
  countFigures,
  env,
  envList,
  fixed,
  median,
  newSeries,
  now,
  printTable,
  QUICK,
  quickNote,
  RATE_HEADERS,
  rateCells,
  rateFigures,
  roundFigures,
  runRound,
  runRounds,
  runtimeLabel,
  runtimeName,
  type Series,
} from "./harness.ts";

type ContenderName = "before" | "none" | "subscribed";

/** The part of a `Client` (of any version) the bench drives. */
interface AnyClient {
  request(payload: Uint8Array): Promise<Uint8Array>;
  disconnect(): Promise<void>;
}

const NODE_COUNT = 3;
const IN_FLIGHT = envList("BENCH_IN_FLIGHT", "64,256").map(Number);
const ROUNDS = QUICK ? 2 : Number(env("BENCH_ROUNDS") ?? 9);
const WARMUP_ROUNDS = QUICK ? 1 : 2;
const REQUESTS_PER_ROUND = QUICK ? 4_000 : 100_000;
const ROUND_LIMIT_MS = QUICK ? 1_000 : 4_000;
const SAMPLE_EVERY = 8;
const PAYLOAD = ops.echo(new Uint8Array(16));
const BEFORE = env("BENCH_BEFORE");

const LABELS: Record<ContenderName, string> = {
  before: "before the channels",
  none: "no subscriber",
  subscribed: "a subscriber on every channel",
};

// --- the cluster and the clients

const nodes: TestNode[] = [];
for (let i = 0; i < NODE_COUNT; i++) {
  nodes.push(await startTestNode({ nodeId: `bench-node-${i}` }));
}
const config = {
  hosts: nodes.map((n) => n.address),
  healthConfig: { intervalMs: 0 },
};

const clients = {} as Record<ContenderName, AnyClient>;
if (BEFORE) {
  const dir = BEFORE.startsWith("/")
    ? BEFORE
    : new URL(`../${BEFORE}`, import.meta.url).pathname;
  const old = await import(
    new URL(`file://${dir.replace(/\/$/, "")}/src/client/client.ts`).href
  ) as { Client: { connect(c: typeof config): Promise<AnyClient> } };
  clients.before = await old.Client.connect(config);
}
const current = await Client.connect(config);
clients.none = current;
clients.subscribed = current;
const CONTENDERS = (Object.keys(LABELS) as ContenderName[]).filter((name) =>
  clients[name] !== undefined
);

// --- the subscribers

let heard = 0;
const listener = (): void => {
  heard++;
};
const CHANNEL_NAMES = Object.values(DIAGNOSTICS_CHANNELS);

function subscribeAll(): void {
  for (const name of CHANNEL_NAMES) subscribe(name, listener);
}

function unsubscribeAll(): void {
  for (const name of CHANNEL_NAMES) unsubscribe(name, listener);
}

const expectBytes = (await current.request(PAYLOAD)).byteLength;

// --- the rounds

interface ContenderSeries extends Series {
  name: ContenderName;
}

async function measure(
  s: ContenderSeries,
  label: string,
  latencies: Float64Array,
  offset: number,
) {
  const client = clients[s.name];
  const subscribed = s.name === "subscribed";
  if (subscribed) subscribeAll();
  try {
    return await runRound(async () => {
      const reply = await client.request(PAYLOAD);
      if (reply.byteLength !== expectBytes) {
        throw new Error(
          `${LABELS[s.name]}, ${label}: a reply of the wrong size`,
        );
      }
      return true;
    }, {
      inFlight: s.inFlight,
      count: REQUESTS_PER_ROUND,
      limitMs: ROUND_LIMIT_MS,
      sampleEvery: SAMPLE_EVERY,
      latencies,
      offset,
    });
  } finally {
    if (subscribed) unsubscribeAll();
  }
}

const series: ContenderSeries[] = [];
const started = now();
const scratch = new Float64Array(Math.ceil(REQUESTS_PER_ROUND / SAMPLE_EVERY));
for (const inFlight of IN_FLIGHT) {
  const group: ContenderSeries[] = CONTENDERS.map((name) => ({
    name,
    ...newSeries(inFlight, scratch.length * ROUNDS),
  }));
  await runRounds(group, {
    rounds: ROUNDS,
    warmupRounds: WARMUP_ROUNDS,
    scratch,
  }, measure);
  series.push(...group);
}
const seconds = (now() - started) / 1000;
if (heard === 0) throw new Error("the subscribers heard nothing");

for (const client of new Set(Object.values(clients))) await client.disconnect();
for (const node of nodes) await node.close();

// --- the report

const figures = series.map((s) => ({
  contender: s.name,
  ...countFigures(s),
  ...rateFigures(s),
}));

/** `a` against `b` at one concurrency: ratio of medians, median of round ratios. */
function compare(a: ContenderName, b: ContenderName, inFlight: number) {
  const sa = series.find((s) => s.name === a && s.inFlight === inFlight);
  const sb = series.find((s) => s.name === b && s.inFlight === inFlight);
  if (!sa || !sb) return undefined;
  return {
    ofMedians: median(sa.rates) / median(sb.rates),
    medianOfRounds: median(sa.rates.map((r, i) => r / sb.rates[i])),
  };
}

const comparisons: Record<
  string,
  { ofMedians: number; medianOfRounds: number }
> = {};
for (const inFlight of IN_FLIGHT) {
  for (
    const [a, b] of [
      ["none", "before"],
      ["subscribed", "before"],
      ["subscribed", "none"],
    ] as const
  ) {
    const c = compare(a, b, inFlight);
    if (c) comparisons[`${a}/${b}@${inFlight}`] = c;
  }
}

console.log(
  `Client.request with and without diagnostics subscribers on ${runtimeLabel()}: ` +
    `${NODE_COUNT} nodes in-process, ECHO of ${PAYLOAD.byteLength - 1} B` +
    quickNote(),
);
console.log(
  `${ROUNDS} rotating rounds per contender after ${WARMUP_ROUNDS} warm-up, ` +
    `${REQUESTS_PER_ROUND.toLocaleString("en-US")} requests per round; ` +
    `${fixed(seconds, 1)} s; ${heard.toLocaleString("en-US")} messages heard` +
    (BEFORE ? "" : "; BENCH_BEFORE unset: no 'before' contender"),
);
printTable(
  ["contender", "in flight", ...RATE_HEADERS, "vs before"],
  figures.map((f) => {
    const c = comparisons[`${f.contender}/before@${f.inFlight}`];
    return [
      LABELS[f.contender],
      String(f.inFlight),
      ...rateCells(f),
      c ? `${fixed((c.ofMedians - 1) * 100, 1)}%` : "-",
    ];
  }),
);
const pct = (x: number) => `${x >= 1 ? "+" : ""}${fixed((x - 1) * 100, 1)}%`;
for (const [key, c] of Object.entries(comparisons)) {
  const line = `${key}: medians ${pct(c.ofMedians)}, rounds side by side ${
    pct(c.medianOfRounds)
  }`;
  if (key.startsWith("none/before")) {
    const met = Math.abs(c.ofMedians - 1) <= 0.03;
    console.log(`${line} (target within 3%: ${met ? "met" : "NOT met"})`);
  } else console.log(line);
}
console.log(JSON.stringify({
  bench: "diagnostics",
  runtime: runtimeName(),
  version: runtimeLabel(),
  quick: QUICK,
  rounds: ROUNDS,
  results: figures.map(roundFigures),
  comparisons: Object.fromEntries(
    Object.entries(comparisons).map(([k, c]) => [k, {
      ofMedians: Number(c.ofMedians.toFixed(4)),
      medianOfRounds: Number(c.medianOfRounds.toFixed(4)),
    }]),
  ),
}));
