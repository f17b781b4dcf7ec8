/**
 * One slow node among three: what each balancing policy makes of it.
 * Three reference nodes on loopback, 32 callers each sending its next
 * ECHO (16 B) as soon as the last is answered; the third node is reached
 * directly, or through the fault proxy (testing/proxy.ts):
 *
 * - healthy: all three nodes direct. The baseline.
 * - proxied: the third node behind the proxy with no fault: what the
 *   extra hop costs by itself.
 * - gc pauses: the proxy holds 2.5% of the chunks it forwards, either
 *   way, for 50 ms, order kept (so what follows on that connection waits
 *   too): about as many 50 ms stalls as holding 5% of the reply chunks,
 *   a node with GC pauses that still answers every health check.
 * - 20 ms late: the proxy delays every chunk 10 ms each way, so every
 *   request to the third node is answered 20 ms late.
 *
 * Nodes and proxies run in two child processes of the same runtime
 * (bench/slow_node_cluster.ts): the first two nodes in one, the third
 * with its proxies in the other. In the client's process the proxy's
 * forwarding would take a third of the client's CPU, and beside the other
 * two nodes it would slow them, and the figures would measure that.
 *
 * Each scenario runs with the default configuration, with
 * `loadBalancing: "round-robin"` and with `"least-in-flight"` (12
 * clients, one per scenario and policy, with the default pool and health
 * loop). A round runs for a fixed time (and at most a fixed count);
 * throughput counts the replies within it, so requests still held by the
 * slow node when it ends do not stretch it. Every request is timed. Rounds
 * rotate who goes first, and a policy's four scenarios run next to each
 * other, so drift on a busy machine hits all alike. Reported per series,
 * each the median over the rounds: req/s, p50/p99/p99.9, the third node's
 * share of the replies, how many requests it held on average (callers
 * stuck waiting on it), and the ratios of throughput and latency to the
 * same policy's healthy round next to it. Target for the default in both
 * degraded scenarios: throughput ≥ 90% and p99 ≤ 2× of the healthy run.
 *
 *   node_modules/.bin/deno run -A bench/slow_node.ts
 *   node_modules/.bin/bun bench/slow_node.ts
 *   node --import tsx bench/slow_node.ts
 *
 * Writes bench/results/slow_node-<runtime>.json and rebuilds
 * bench/results/slow_node.md from every runtime's file (BENCH_QUICK=1: a
 * smoke run of seconds, written under bench/results/quick/). The last line
 * printed is one JSON object.
 *
 * @module
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { Client } from "../src/client/client.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { ops } from "../testing/ops.ts";
import { startChild, stopChild } from "./slow_node_launch.ts";
import {
  fixed,
  int,
  median,
  newSeries,
  now,
  printTable,
  quantile,
  QUICK,
  quickNote,
  type Round,
  runRounds,
  runtimeLabel,
  runtimeName,
  type Series,
} from "./harness.ts";

const CALLERS = 32;
const ROUNDS = QUICK ? 2 : 11;
const WARMUP_ROUNDS = 1;
/** How long a round sends. */
const ROUND_MS = QUICK ? 200 : 500;
/** And at most this many requests. */
const MAX_REQUESTS_PER_ROUND = 200_000;
const PAYLOAD = ops.echo(new Uint8Array(16));
/** The last byte of the third node's id ("slow-bench-2"). */
const THIRD_ID_END = "2".charCodeAt(0);

type ScenarioName = "healthy" | "proxied" | "gc" | "slow";
type PolicyName = "default" | "round-robin" | "least-in-flight";

const SCENARIOS: { name: ScenarioName; label: string }[] = [
  { name: "healthy", label: "all healthy" },
  { name: "proxied", label: "node 3 proxied, no fault" },
  { name: "gc", label: "node 3: 50 ms stalls (gc pauses)" },
  { name: "slow", label: "node 3: every reply 20 ms late" },
];
const DEGRADED: ScenarioName[] = ["gc", "slow"];

const POLICIES: { name: PolicyName; config: Partial<ConnectionConfig> }[] = [
  { name: "default", config: {} },
  { name: "round-robin", config: { loadBalancing: "round-robin" } },
  { name: "least-in-flight", config: { loadBalancing: "least-in-flight" } },
];

// --- the cluster, in two child processes

const [pair, third] = await Promise.all([
  startChild("pair"),
  startChild("third"),
]);
const firstTwo = pair.cluster.nodes;
const thirdAddress: Record<ScenarioName, string> = {
  healthy: third.cluster.nodes[0],
  proxied: third.cluster.proxied!,
  gc: third.cluster.gc!,
  slow: third.cluster.slow!,
};

// --- the clients

/** What one measured round of a series gave. */
interface RoundFigures {
  reqPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** Share of the replies that came from the third node. */
  thirdShare: number;
  /** Requests in flight on the third node, on average over the round. */
  heldByThird: number;
}

interface SlowSeries extends Series {
  scenario: ScenarioName;
  policy: PolicyName;
  client: Client;
  perRound: RoundFigures[];
}

// Policy by policy, so that a policy's scenarios run next to each other
// in every round and their round-by-round ratios compare like with like.
const group: SlowSeries[] = [];
for (const policy of POLICIES) {
  for (const scenario of SCENARIOS) {
    const client = await Client.connect({
      hosts: [...firstTwo, thirdAddress[scenario.name]],
      ...policy.config,
    });
    group.push({
      scenario: scenario.name,
      policy: policy.name,
      client,
      perRound: [],
      ...newSeries(CALLERS, 0),
    });
  }
}

// --- the rounds

/** Latencies of the round being run (every request is timed). */
const latencies = new Float64Array(MAX_REQUESTS_PER_ROUND + CALLERS);

/**
 * One round of `s`: CALLERS callers for ROUND_MS. Replies within the time
 * count towards throughput; a caller stops once a reply comes after it.
 */
async function measure(
  s: SlowSeries,
  label: string,
): Promise<Round & { figures: RoundFigures }> {
  const client = s.client;
  const third = client.manager.nodes[2];
  let issued = 0;
  let completed = 0;
  let replies = 0;
  let onThird = 0;
  let held = 0;
  let looks = 0;
  const watch = setInterval(() => {
    held += third.inFlight;
    looks++;
  }, 5);
  const started = now();
  const end = started + ROUND_MS;
  const caller = async () => {
    while (issued++ < MAX_REQUESTS_PER_ROUND) {
      const t0 = now();
      const reply = await client.request(PAYLOAD);
      const t1 = now();
      latencies[replies++] = t1 - t0;
      if (reply[reply[0]] === THIRD_ID_END) onThird++;
      if (t1 > end) return;
      completed++;
    }
  };
  try {
    const callers: Promise<void>[] = [];
    for (let i = 0; i < CALLERS; i++) callers.push(caller());
    await Promise.all(callers);
  } catch (error) {
    throw new Error(
      `${s.scenario}/${s.policy} failed in ${label}: ${
        error instanceof Error ? error.message : String(error)
      }`,
      { cause: error },
    );
  } finally {
    clearInterval(watch);
  }
  const seconds = Math.min(now() - started, ROUND_MS) / 1000;
  const sorted = latencies.subarray(0, replies).sort();
  return {
    completed,
    sampled: 0,
    seconds,
    figures: {
      reqPerSecond: completed / seconds,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      p999Ms: quantile(sorted, 0.999),
      thirdShare: onThird / replies,
      heldByThird: looks > 0 ? held / looks : NaN,
    },
  };
}

const started = now();
await runRounds(
  group,
  {
    rounds: ROUNDS,
    warmupRounds: WARMUP_ROUNDS,
    scratch: new Float64Array(0),
  },
  measure,
  (s, round) => s.perRound.push(round.figures),
);
const seconds = (now() - started) / 1000;

for (const s of group) await s.client.disconnect();
await Promise.all([stopChild(pair.child), stopChild(third.child)]);

// --- the figures

interface Figures extends RoundFigures {
  scenario: ScenarioName;
  policy: PolicyName;
  rounds: number;
  requests: number;
  /**
   * Against the same policy's healthy run in the same round, median over
   * the rounds; 1 for the healthy run itself.
   */
  throughputRatio: number;
  p50Ratio: number;
  p99Ratio: number;
  p999Ratio: number;
}

/** Median over the rounds of `pick(round)`. */
function over(s: SlowSeries, pick: (r: RoundFigures, i: number) => number) {
  return median(s.perRound.map(pick));
}

const figures: Figures[] = group.map((s) => {
  const healthy = group.find((h) =>
    h.scenario === "healthy" && h.policy === s.policy
  )!.perRound;
  // Round r of a policy's scenarios ran within seconds of each other:
  // comparing round by round cancels most of the machine's drift.
  return {
    scenario: s.scenario,
    policy: s.policy,
    rounds: s.perRound.length,
    requests: s.requests,
    reqPerSecond: over(s, (r) => r.reqPerSecond),
    p50Ms: over(s, (r) => r.p50Ms),
    p99Ms: over(s, (r) => r.p99Ms),
    p999Ms: over(s, (r) => r.p999Ms),
    thirdShare: over(s, (r) => r.thirdShare),
    heldByThird: over(s, (r) => r.heldByThird),
    throughputRatio: over(
      s,
      (r, i) => r.reqPerSecond / healthy[i].reqPerSecond,
    ),
    p50Ratio: over(s, (r, i) => r.p50Ms / healthy[i].p50Ms),
    p99Ratio: over(s, (r, i) => r.p99Ms / healthy[i].p99Ms),
    p999Ratio: over(s, (r, i) => r.p999Ms / healthy[i].p999Ms),
  };
});

/** Whether the default meets the target in a degraded scenario. */
function targetMet(f: Figures): boolean {
  return f.throughputRatio >= 0.9 && f.p99Ratio <= 2;
}

const label = (name: ScenarioName) =>
  SCENARIOS.find((s) => s.name === name)!.label;
const ms = (value: number) => fixed(value, value < 10 ? 2 : 1);
const ratio = (value: number) => `${fixed(value, value < 10 ? 2 : 0)}x`;
const percent = (value: number) => `${fixed(value * 100, 1)}%`;

const HEADERS = [
  "scenario",
  "policy",
  "req/s",
  "p50 ms",
  "p99 ms",
  "p99.9 ms",
  "node 3's share",
  "held by node 3",
  "req/s vs healthy",
  "p99 vs healthy",
  "p99.9 vs healthy",
];

function cells(f: Figures): string[] {
  return [
    label(f.scenario),
    f.policy,
    int(f.reqPerSecond),
    ms(f.p50Ms),
    ms(f.p99Ms),
    ms(f.p999Ms),
    percent(f.thirdShare),
    fixed(f.heldByThird, 1),
    percent(f.throughputRatio),
    ratio(f.p99Ratio),
    ratio(f.p999Ratio),
  ];
}

function verdicts(results: readonly Figures[]): string[] {
  return results
    .filter((f) => f.policy === "default" && DEGRADED.includes(f.scenario))
    .map((f) =>
      `target, default, ${label(f.scenario)}: throughput ${
        percent(f.throughputRatio)
      } (>= 90%), p99 ${ratio(f.p99Ratio)} (<= 2x): ${
        targetMet(f) ? "met" : "NOT met"
      }`
    );
}

console.log(
  `One slow node of three, ${CALLERS} callers, ECHO of ${
    PAYLOAD.byteLength - 1
  } B, on ${runtimeLabel()}${quickNote()}`,
);
console.log(
  `${ROUNDS} rotating rounds per series after ${WARMUP_ROUNDS} warm-up, ` +
    `${ROUND_MS / 1000} s each (at most ${
      int(MAX_REQUESTS_PER_ROUND)
    } requests), medians over the rounds; ${fixed(seconds, 1)} s in all`,
);
printTable(HEADERS, figures.map(cells));
for (const line of verdicts(figures)) console.log(line);

// --- the files

interface RunResults {
  runtime: string;
  version: string;
  machine: string;
  at: string;
  quick: boolean;
  callers: number;
  rounds: number;
  roundMs: number;
  seconds: number;
  results: Figures[];
}

const dir = fileURLToPath(
  new URL(QUICK ? "./results/quick/" : "./results/", import.meta.url),
);
mkdirSync(dir, { recursive: true });
const cpuList = cpus();
const round = (value: number, digits: number) => Number(value.toFixed(digits));
const run: RunResults = {
  runtime: runtimeName(),
  version: runtimeLabel(),
  machine: `${cpuList.length} x ${cpuList[0]?.model ?? "unknown CPU"}`,
  at: new Date().toISOString(),
  quick: QUICK,
  callers: CALLERS,
  rounds: ROUNDS,
  roundMs: ROUND_MS,
  seconds: round(seconds, 1),
  results: figures.map((f) => ({
    ...f,
    reqPerSecond: Math.round(f.reqPerSecond),
    p50Ms: round(f.p50Ms, 3),
    p99Ms: round(f.p99Ms, 3),
    p999Ms: round(f.p999Ms, 3),
    thirdShare: round(f.thirdShare, 4),
    heldByThird: round(f.heldByThird, 2),
    throughputRatio: round(f.throughputRatio, 3),
    p50Ratio: round(f.p50Ratio, 2),
    p99Ratio: round(f.p99Ratio, 2),
    p999Ratio: round(f.p999Ratio, 2),
  })),
};
writeFileSync(
  `${dir}slow_node-${run.runtime}.json`,
  JSON.stringify(run, null, 2) + "\n",
);
writeFileSync(`${dir}slow_node.md`, report(dir));

/** The markdown report over every runtime's latest results in `dir`. */
function report(dir: string): string {
  const runs = ["deno", "bun", "node"]
    .map((runtime) => `${dir}slow_node-${runtime}.json`)
    .filter((file) => existsSync(file))
    .map((file) => JSON.parse(readFileSync(file, "utf8")) as RunResults);
  const lines = [
    "# One slow node of three",
    "",
    "Written by `bench/slow_node.ts`; its header describes the method. " +
    `${CALLERS} callers, each sending its next request when the last is ` +
    "answered, over three reference nodes on loopback (in two child " +
    "processes: the first two nodes, the third with its proxies). Figures are medians over the " +
    "rounds; ratios compare each round with the same policy's all-healthy " +
    "round run next to it. *node 3's share*: of the replies; *held by node " +
    "3*: requests in flight on it, on average (callers waiting on it). " +
    "Target for the default in both degraded scenarios: throughput ≥ 90% " +
    "and p99 ≤ 2× of the all-healthy run.",
    "",
    "The default is least-in-flight: its rows and the least-in-flight rows " +
    "run the same balancer in different clients, so the differences " +
    "between them show how noisy the machine was.",
    "",
  ];
  for (const r of runs) {
    lines.push(
      `## ${r.version}${r.quick ? " (BENCH_QUICK smoke run)" : ""}`,
      "",
      `${r.machine}, shared; ${r.at.slice(0, 10)}; ${r.rounds} rounds of ` +
        `${r.roundMs / 1000} s per series, ${r.seconds} s in all.`,
      "",
      `| ${HEADERS.join(" | ")} |`,
      `| --- | --- | ${HEADERS.slice(2).map(() => "---:").join(" | ")} |`,
      ...r.results.map((f) => `| ${cells(f).join(" | ")} |`),
      "",
      ...verdicts(r.results).map((line) => `- ${line}`),
      "",
    );
  }
  return lines.join("\n");
}

console.log(JSON.stringify({ bench: "slow_node", ...run }));
