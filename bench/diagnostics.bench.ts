/**
 * What the diagnostics channels cost `Client.request`: a client with a
 * subscriber on every channel and with none, beside the client as it was
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
 *   before the channels); left out when BENCH_BEFORE is unset.
 * - none: today's `Client`, nobody subscribed to any channel.
 * - subscribed: the same client, a counting subscriber on each of the
 *   seven channels, so every request builds and publishes its messages.
 *
 * Two phases, each rotating its contenders' rounds so drift on a busy
 * machine hits them alike: first before and none, while nobody has ever
 * subscribed; then before and subscribed, with the subscribers in place
 * for the whole phase. Subscribing and unsubscribing around every round
 * would measure something no application does: Node switches a channel's
 * prototype on its first subscriber and back on its last, and each switch
 * throws away the optimised code that read it. `before` runs in both
 * phases and anchors subscribed/none across them.
 *
 * Reported per concurrency, as ratios: of the median req/s, of the rounds
 * run side by side (median), of the median requests per second of the
 * process's CPU time (steadier than wall time when other processes share
 * the cores), and of the p50 latency. The target: none within 3% of
 * before. BENCH_ROUNDS (default 9) and BENCH_REQUESTS (per round, default
 * 50,000) set the size; BENCH_QUICK=1 makes it a smoke run. The last line
 * is one JSON object.
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
const REQUESTS_PER_ROUND = QUICK
  ? 4_000
  : Number(env("BENCH_REQUESTS") ?? 50_000);
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
  phase: 1 | 2;
  /** Requests per second of the process's CPU time, per measured round. */
  cpuRates: number[];
}

/** CPU time the process used so far (every thread), in seconds. */
function cpuSeconds(): number {
  const usage = (globalThis as unknown as {
    process: { cpuUsage(): { user: number; system: number } };
  }).process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

async function measure(
  s: ContenderSeries,
  label: string,
  latencies: Float64Array,
  offset: number,
) {
  const client = clients[s.name];
  const cpuBefore = cpuSeconds();
  const round = await runRound(async () => {
    const reply = await client.request(PAYLOAD);
    if (reply.byteLength !== expectBytes) {
      throw new Error(`${LABELS[s.name]}, ${label}: a reply of the wrong size`);
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
  return { ...round, cpuSeconds: cpuSeconds() - cpuBefore };
}

const series: ContenderSeries[] = [];
const scratch = new Float64Array(Math.ceil(REQUESTS_PER_ROUND / SAMPLE_EVERY));

async function phase(phase: 1 | 2, names: ContenderName[]): Promise<void> {
  for (const inFlight of IN_FLIGHT) {
    const group: ContenderSeries[] = names
      .filter((name) => clients[name] !== undefined)
      .map((name) => ({
        name,
        phase,
        ...newSeries(inFlight, scratch.length * ROUNDS),
        cpuRates: [],
      }));
    await runRounds(
      group,
      {
        rounds: ROUNDS,
        warmupRounds: WARMUP_ROUNDS,
        scratch,
      },
      measure,
      (s, round) => {
        s.cpuRates.push(round.completed / round.cpuSeconds);
      },
    );
    series.push(...group);
  }
}

const started = now();
await phase(1, ["before", "none"]);
subscribeAll();
await phase(2, ["before", "subscribed"]);
unsubscribeAll();
const seconds = (now() - started) / 1000;
if (heard === 0) throw new Error("the subscribers heard nothing");

for (const client of new Set(Object.values(clients))) await client.disconnect();
for (const node of nodes) await node.close();

// --- the report

const figures = series.map((s) => ({
  contender: s.name,
  phase: s.phase,
  ...countFigures(s),
  ...rateFigures(s),
  reqPerCpuSecond: Math.round(median(s.cpuRates)),
}));

/** How one series compares with another, as ratios a/b. */
interface Comparison {
  /** Of the median req/s. */
  rate: number;
  /** Median of the rounds' req/s ratios, each pair run side by side. */
  rounds: number;
  /** Of the median requests per CPU second. */
  cpu: number;
  /** Of the p50 latencies (below 1: a is faster). */
  p50: number;
}

function find(name: ContenderName, phase: 1 | 2, inFlight: number) {
  return series.find((s) =>
    s.name === name && s.phase === phase && s.inFlight === inFlight
  );
}

function compare(
  a: ContenderSeries | undefined,
  b: ContenderSeries | undefined,
): Comparison | undefined {
  if (!a || !b) return undefined;
  return {
    rate: median(a.rates) / median(b.rates),
    rounds: median(a.rates.map((r, i) => r / b.rates[i])),
    cpu: median(a.cpuRates) / median(b.cpuRates),
    p50: rateFigures(a).p50Us / rateFigures(b).p50Us,
  };
}

/** x/z from x/y and z/y: two phases compared through their common anchor. */
function through(xy: Comparison, zy: Comparison): Comparison {
  return {
    rate: xy.rate / zy.rate,
    rounds: xy.rounds / zy.rounds,
    cpu: xy.cpu / zy.cpu,
    p50: xy.p50 / zy.p50,
  };
}

const comparisons: Record<string, Comparison> = {};
for (const inFlight of IN_FLIGHT) {
  const none = compare(find("none", 1, inFlight), find("before", 1, inFlight));
  const subscribed = compare(
    find("subscribed", 2, inFlight),
    find("before", 2, inFlight),
  );
  if (none) comparisons[`none/before@${inFlight}`] = none;
  if (subscribed) comparisons[`subscribed/before@${inFlight}`] = subscribed;
  const direct = none && subscribed
    ? through(subscribed, none)
    : compare(find("subscribed", 2, inFlight), find("none", 1, inFlight));
  if (direct) comparisons[`subscribed/none@${inFlight}`] = direct;
}

const pct = (x: number) => `${x >= 1 ? "+" : ""}${fixed((x - 1) * 100, 1)}%`;
console.log(
  `Client.request with and without diagnostics subscribers on ${runtimeLabel()}: ` +
    `${NODE_COUNT} nodes in-process, ECHO of ${PAYLOAD.byteLength - 1} B` +
    quickNote(),
);
console.log(
  `two phases of ${ROUNDS} rotating rounds per contender after ${WARMUP_ROUNDS} warm-up, ` +
    `${REQUESTS_PER_ROUND.toLocaleString("en-US")} requests per round; ` +
    `${fixed(seconds, 1)} s; ${heard.toLocaleString("en-US")} messages heard` +
    (BEFORE ? "" : "; BENCH_BEFORE unset: no 'before' contender"),
);
printTable(
  ["contender", "phase", "in flight", ...RATE_HEADERS, "req/CPU-s"],
  figures.map((f) => [
    LABELS[f.contender],
    String(f.phase),
    String(f.inFlight),
    ...rateCells(f),
    f.reqPerCpuSecond.toLocaleString("en-US"),
  ]),
);
console.log("");
printTable(
  ["a/b", "req/s", "rounds side by side", "req/CPU-s", "p50 latency"],
  Object.entries(comparisons).map(([key, c]) => [
    key,
    pct(c.rate),
    pct(c.rounds),
    pct(c.cpu),
    pct(c.p50),
  ]),
);
for (const [key, c] of Object.entries(comparisons)) {
  if (!key.startsWith("none/before")) continue;
  const met = Math.abs(c.rate - 1) <= 0.03;
  console.log(
    `${key}: median req/s ${pct(c.rate)} (target within 3%: ${
      met ? "met" : "NOT met"
    })`,
  );
}
const round4 = (x: number) => Number(x.toFixed(4));
console.log(JSON.stringify({
  bench: "diagnostics",
  runtime: runtimeName(),
  version: runtimeLabel(),
  quick: QUICK,
  rounds: ROUNDS,
  requestsPerRound: REQUESTS_PER_ROUND,
  results: figures.map(roundFigures),
  comparisons: Object.fromEntries(
    Object.entries(comparisons).map(([k, c]) => [k, {
      rate: round4(c.rate),
      rounds: round4(c.rounds),
      cpu: round4(c.cpu),
      p50: round4(c.p50),
    }]),
  ),
}));
