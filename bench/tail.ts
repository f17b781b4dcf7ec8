/**
 * Tail latency with one degraded node of three (issue #14, point 6): what
 * each balancing policy, hedging and the retry budget make of it.
 * Three reference nodes on loopback in two child processes (the first two
 * in one, the third with its fault proxies in the other, as in
 * bench/slow_node.ts, whose bench/slow_node_cluster.ts this reuses), and
 * 32 callers each sending its next idempotent ECHO (16 B) as soon as the
 * last settles. The third node is reached directly, or through a proxy:
 *
 * - healthy: all three nodes direct. The baseline.
 * - stalls: the proxy holds 2.5% of the chunks it forwards, either way,
 *   for 50 ms (about as many stalls as 5% of the replies 50 ms late).
 * - 10× slower: every chunk 1 ms late each way (2 ms a request, about
 *   ten times the others' reply time under this load).
 * - failing: every ECHO rewritten into a FAIL, so the node answers each
 *   request with a retryable error (it still passes its health checks).
 *
 * Policies: round-robin, least-in-flight (the default), peak-EWMA, and
 * peak-EWMA with hedging (`{ percentile: 95 }`); in the failing case also
 * the default without the retry budget (`retryBudget: false`). One client
 * per scenario and policy, kept over the rounds. A round runs for a fixed
 * time and at most a fixed count; every request is timed, whatever its
 * outcome. Reported per series, medians over the rounds: replies/s, p50,
 * p99, p99.9, attempts per offered request (first attempts + retries +
 * hedges, over requests), failed requests and the third node's share of
 * the replies. Ratios compare each round with the same policy's healthy
 * round next to it.
 *
 *   node_modules/.bin/deno run -A bench/tail.ts
 *   node_modules/.bin/bun bench/tail.ts
 *   node --import tsx bench/tail.ts
 *
 * Writes bench/results/tail-<runtime>.json, bench/results/tail.md and
 * bench/results/tail.svg (BENCH_QUICK=1: a smoke run of seconds, written
 * under bench/results/quick/). BENCH_ROUNDS and BENCH_ROUND_MS override
 * the counts. The machine these figures come from has 2 shared cores and
 * other jobs running: figures move by a third between runs.
 *
 * @module
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Client } from "../src/client/client.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { ops } from "../testing/ops.ts";
import { startChild, stopChild } from "./slow_node_launch.ts";
import {
  env,
  fixed,
  int,
  median,
  newSeries,
  now,
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
const ROUNDS = Number(env("BENCH_ROUNDS") ?? (QUICK ? 2 : 7));
const WARMUP_ROUNDS = 1;
const ROUND_MS = Number(env("BENCH_ROUND_MS") ?? (QUICK ? 200 : 500));
const MAX_REQUESTS_PER_ROUND = 200_000;
const PAYLOAD = ops.echo(new Uint8Array(16));
const THIRD_ID_END = "2".charCodeAt(0);
const REQUEST = { idempotent: true } as const;

type ScenarioName = "healthy" | "stalls" | "tenx" | "failing";
type PolicyName =
  | "round-robin"
  | "least-in-flight (default)"
  | "peak-ewma"
  | "peak-ewma + hedging"
  | "default, no retry budget";

const SCENARIOS: { name: ScenarioName; label: string }[] = [
  { name: "healthy", label: "all healthy" },
  { name: "stalls", label: "node 3: 50 ms stalls (5%)" },
  { name: "tenx", label: "node 3: 10× slower" },
  { name: "failing", label: "node 3: fails every request (retryable)" },
];

const POLICIES: {
  name: PolicyName;
  config: Partial<ConnectionConfig>;
  only?: ScenarioName[];
}[] = [
  { name: "round-robin", config: { loadBalancing: "round-robin" } },
  { name: "least-in-flight (default)", config: {} },
  { name: "peak-ewma", config: { loadBalancing: "peak-ewma" } },
  {
    name: "peak-ewma + hedging",
    config: { loadBalancing: "peak-ewma", hedging: { percentile: 95 } },
  },
  {
    name: "default, no retry budget",
    config: { retryBudget: false },
    only: ["healthy", "failing"],
  },
];

// --- the cluster, in two child processes (as bench/slow_node.ts)

const [pair, third] = await Promise.all([
  startChild("pair"),
  startChild("third"),
]);
const thirdAddress: Record<ScenarioName, string> = {
  healthy: third.cluster.nodes[0],
  stalls: third.cluster.gc!,
  tenx: third.cluster.tenx!,
  failing: third.cluster.failing!,
};

// --- the clients

interface RoundFigures {
  reqPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** Attempts (first tries, retries, hedges) per request offered. */
  attemptsPerRequest: number;
  /** Share of the requests that failed for good. */
  failedShare: number;
  /** Share of the replies that came from the third node. */
  thirdShare: number;
}

interface TailSeries extends Series {
  scenario: ScenarioName;
  policy: PolicyName;
  client: Client;
  perRound: RoundFigures[];
}

const group: TailSeries[] = [];
for (const policy of POLICIES) {
  for (const scenario of SCENARIOS) {
    if (policy.only !== undefined && !policy.only.includes(scenario.name)) {
      continue;
    }
    const client = await Client.connect({
      hosts: [...pair.cluster.nodes, thirdAddress[scenario.name]],
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

const latencies = new Float64Array(MAX_REQUESTS_PER_ROUND + CALLERS);

async function measure(
  s: TailSeries,
): Promise<Round & { figures: RoundFigures }> {
  const client = s.client;
  const before = client.stats();
  let issued = 0;
  let offered = 0;
  let completed = 0;
  let settled = 0;
  let failed = 0;
  let onThird = 0;
  let replies = 0;
  const started = now();
  const end = started + ROUND_MS;
  const caller = async () => {
    while (issued++ < MAX_REQUESTS_PER_ROUND) {
      const t0 = now();
      offered++;
      let reply: Uint8Array | undefined;
      try {
        reply = await client.request(PAYLOAD, REQUEST);
      } catch {
        failed++;
      }
      const t1 = now();
      latencies[settled++] = t1 - t0;
      if (reply !== undefined) {
        replies++;
        if (reply[reply[0]] === THIRD_ID_END) onThird++;
      }
      if (t1 > end) return;
      if (reply !== undefined) completed++;
    }
  };
  const callers: Promise<void>[] = [];
  for (let i = 0; i < CALLERS; i++) callers.push(caller());
  await Promise.all(callers);
  const after = client.stats();
  const attempts = offered + (after.retries - before.retries) +
    (after.hedges - before.hedges);
  const seconds = Math.min(now() - started, ROUND_MS) / 1000;
  const sorted = latencies.subarray(0, settled).sort();
  return {
    completed,
    sampled: 0,
    seconds,
    figures: {
      reqPerSecond: completed / seconds,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      p999Ms: quantile(sorted, 0.999),
      attemptsPerRequest: attempts / offered,
      failedShare: failed / offered,
      thirdShare: replies > 0 ? onThird / replies : 0,
    },
  };
}

const started = now();
await runRounds(
  group,
  { rounds: ROUNDS, warmupRounds: WARMUP_ROUNDS, scratch: new Float64Array(0) },
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
  throughputRatio: number;
  p99Ratio: number;
  p999Ratio: number;
}

const over = (s: TailSeries, pick: (r: RoundFigures, i: number) => number) =>
  median(s.perRound.map(pick));

const figures: Figures[] = group.map((s) => {
  const healthy = group.find((h) =>
    h.scenario === "healthy" && h.policy === s.policy
  )!.perRound;
  return {
    scenario: s.scenario,
    policy: s.policy,
    reqPerSecond: over(s, (r) => r.reqPerSecond),
    p50Ms: over(s, (r) => r.p50Ms),
    p99Ms: over(s, (r) => r.p99Ms),
    p999Ms: over(s, (r) => r.p999Ms),
    attemptsPerRequest: over(s, (r) => r.attemptsPerRequest),
    failedShare: over(s, (r) => r.failedShare),
    thirdShare: over(s, (r) => r.thirdShare),
    throughputRatio: over(
      s,
      (r, i) => r.reqPerSecond / healthy[i].reqPerSecond,
    ),
    p99Ratio: over(s, (r, i) => r.p99Ms / healthy[i].p99Ms),
    p999Ratio: over(s, (r, i) => r.p999Ms / healthy[i].p999Ms),
  };
});

const label = (name: ScenarioName) =>
  SCENARIOS.find((s) => s.name === name)!.label;
const ms = (value: number) => fixed(value, value < 10 ? 2 : 1);
const ratio = (value: number) => `${fixed(value, value < 10 ? 2 : 0)}x`;
const percent = (value: number) => `${fixed(value * 100, 1)}%`;

const HEADERS = [
  "scenario",
  "policy",
  "replies/s",
  "p50 ms",
  "p99 ms",
  "p99.9 ms",
  "attempts / request",
  "failed",
  "node 3's share",
  "replies/s vs healthy",
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
    fixed(f.attemptsPerRequest, 3),
    percent(f.failedShare),
    percent(f.thirdShare),
    percent(f.throughputRatio),
    ratio(f.p99Ratio),
    ratio(f.p999Ratio),
  ];
}

const find = (scenario: ScenarioName, policy: PolicyName) =>
  figures.find((f) => f.scenario === scenario && f.policy === policy);

function verdicts(): string[] {
  const out: string[] = [];
  const met = (ok: boolean) => (ok ? "met" : "NOT met");
  for (const scenario of ["stalls", "tenx"] as const) {
    const f = find(scenario, "least-in-flight (default)")!;
    out.push(
      `target, default, ${label(scenario)}: throughput ${
        percent(f.throughputRatio)
      } (>= 90%), p99 ${ratio(f.p99Ratio)} (<= 2x): ${
        met(f.throughputRatio >= 0.9 && f.p99Ratio <= 2)
      }`,
    );
  }
  for (const scenario of ["stalls", "tenx"] as const) {
    const f = find(scenario, "peak-ewma + hedging")!;
    const healthy = find("healthy", "least-in-flight (default)")!;
    const vsHealthy = f.p999Ms / healthy.p999Ms;
    const extra = f.attemptsPerRequest - 1;
    out.push(
      `target, hedging, ${label(scenario)}: p99.9 ${
        ratio(vsHealthy)
      } of the default's healthy p99.9 (<= 3x), ${
        percent(extra)
      } extra requests (<= 10%): ${met(vsHealthy <= 3 && extra <= 0.1)}`,
    );
  }
  const tenx = find("tenx", "peak-ewma")!;
  out.push(
    `target, peak-ewma, ${label("tenx")}: node 3's share ${
      percent(tenx.thirdShare)
    } (<= 10%): ${met(tenx.thirdShare <= 0.1)}`,
  );
  for (
    const policy of [
      "least-in-flight (default)",
      "default, no retry budget",
    ] as const
  ) {
    const f = find("failing", policy)!;
    out.push(
      `${policy}, ${label("failing")}: ${
        fixed(f.attemptsPerRequest, 3)
      } attempts per request`,
    );
  }
  return out;
}

function table(rows: readonly Figures[]): string {
  return [
    `| ${HEADERS.join(" | ")} |`,
    `| ${HEADERS.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((f) => `| ${cells(f).join(" | ")} |`),
  ].join("\n");
}

// --- the chart: p99 and p99.9 per policy and scenario, log scale

function svg(rows: readonly Figures[]): string {
  const scenarios = SCENARIOS.map((s) => s.name);
  const policies = POLICIES.filter((p) => p.only === undefined).map((p) =>
    p.name
  );
  const colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
  const width = 900;
  const top = 40;
  const plotHeight = 300;
  const left = 60;
  const groupWidth = (width - left - 20) / scenarios.length;
  const barWidth = (groupWidth - 20) / (policies.length * 2);
  const lo = Math.log10(0.1);
  const hi = Math.log10(200);
  const y = (v: number) =>
    top + plotHeight -
    ((Math.log10(Math.max(v, 0.1)) - lo) / (hi - lo)) * plotHeight;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${
      top + plotHeight + 110
    }" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14">p99 (solid) and p99.9 (light) latency, ms, log scale; one degraded node of three, ${CALLERS} callers, ${runtimeLabel()}</text>`,
  );
  for (const tick of [0.1, 1, 10, 100]) {
    parts.push(
      `<line x1="${left}" x2="${width - 20}" y1="${y(tick)}" y2="${
        y(tick)
      }" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${
        y(tick) + 4
      }" text-anchor="end">${tick}</text>`,
    );
  }
  scenarios.forEach((scenario, g) => {
    const x0 = left + g * groupWidth + 10;
    policies.forEach((policy, p) => {
      const f = rows.find((r) =>
        r.scenario === scenario && r.policy === policy
      );
      if (f === undefined) return;
      const x = x0 + p * 2 * barWidth;
      for (const [k, value] of [f.p99Ms, f.p999Ms].entries()) {
        parts.push(
          `<rect x="${x + k * barWidth}" y="${y(value)}" width="${
            barWidth - 1
          }" height="${top + plotHeight - y(value)}" fill="${
            colors[p]
          }" fill-opacity="${k === 0 ? 1 : 0.45}"><title>${policy}, ${
            label(scenario)
          }: ${k === 0 ? "p99" : "p99.9"} ${ms(value)} ms</title></rect>`,
        );
      }
    });
    parts.push(
      `<text x="${x0 + groupWidth / 2 - 10}" y="${
        top + plotHeight + 16
      }" text-anchor="middle">${label(scenario)}</text>`,
    );
  });
  policies.forEach((policy, p) => {
    const ly = top + plotHeight + 40 + p * 16;
    parts.push(
      `<rect x="${left}" y="${ly - 10}" width="12" height="12" fill="${
        colors[p]
      }"/>`,
      `<text x="${left + 18}" y="${ly}">${policy}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

const header =
  `One degraded node of three, ${CALLERS} callers, idempotent ECHO of ${
    PAYLOAD.byteLength - 1
  } B, on ${runtimeLabel()}${quickNote()}; ${ROUNDS} rounds of ${
    ROUND_MS / 1000
  } s per series after ${WARMUP_ROUNDS} warm-up, ${fixed(seconds, 1)} s in all`;
console.log(header);
console.log(table(figures));
for (const line of verdicts()) console.log(`- ${line}`);

const dir = fileURLToPath(
  new URL(QUICK ? "./results/quick/" : "./results/", import.meta.url),
);
if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
const json = `${dir}tail-${runtimeName()}.json`;
writeFileSync(
  json,
  JSON.stringify({ header, date: new Date().toISOString(), figures }, null, 2),
);
writeFileSync(`${dir}tail.svg`, svg(figures));
const sections: string[] = [];
for (const runtime of ["deno", "bun", "node"]) {
  const file = `${dir}tail-${runtime}.json`;
  if (!existsSync(file)) continue;
  const saved = JSON.parse(readFileSync(file, "utf8")) as {
    header: string;
    date: string;
    figures: Figures[];
  };
  sections.push(
    `## ${runtime}\n\n${saved.header}; ${saved.date.slice(0, 10)}.\n\n${
      table(saved.figures)
    }\n`,
  );
}
writeFileSync(
  `${dir}tail.md`,
  `# Tail latency: one degraded node of three

Written by \`bench/tail.ts\`; its header describes the method. Figures are
medians over the rounds; ratios compare each round with the same policy's
all-healthy round next to it. *attempts / request*: first attempts, retries
and hedges over requests offered (1.000: no extra requests). The machine has
2 shared cores and other jobs ran beside the bench: figures move by a third
between runs. The chart (\`tail.svg\`) is drawn from the last runtime run.

Latest verdicts (${runtimeLabel()}):

${verdicts().map((l) => `- ${l}`).join("\n")}

${sections.join("\n")}`,
);
console.log(JSON.stringify({ seconds, figures: figures.length }));
