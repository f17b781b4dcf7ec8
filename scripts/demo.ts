/**
 * The main job: an embedded cluster of three reference nodes on loopback, a
 * client spreading a steady load over them, one node stopped and started
 * again, and a summary. About 20 seconds; exit code 0 when everything held.
 *
 *   npm run demo        (or: deno run -A scripts/demo.ts)
 *
 * @module
 */
import { Client } from "../src/client/client.ts";
import {
  formatCount,
  formatMs,
  quantile,
  renderTable,
} from "../src/cli/format.ts";
import { type LoadSnapshot, runLoad } from "../src/cli/load.ts";
import { ProgressLine } from "../src/cli/progress.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { exitProcess, readEnv } from "../src/runtime/process.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";

// NODEWIRE_DEMO_FAST=1 shortens every phase, for the test suite's smoke run.
const FAST = readEnv("NODEWIRE_DEMO_FAST") === "1";
const PHASE_MS = FAST
  ? { steady: 800, down: 1500, recovered: 800 }
  : { steady: 5000, down: 6000, recovered: 5000 };
const progress = new ProgressLine();
const t0 = performance.now();
const stamp = () =>
  `[${((performance.now() - t0) / 1000).toFixed(1).padStart(4)} s]`;

const adapter = await getAdapter();
const nodes = await Promise.all(
  ["n1", "n2", "n3"].map((nodeId) =>
    startTestNode({ nodeId, runtime: adapter })
  ),
);
const idOf = new Map(nodes.map((n) => [n.address, n.nodeId]));
progress.event(
  `${stamp()} runtime ${adapter.name}; cluster: ${
    nodes.map((n) => `${n.nodeId}=${n.address}`).join("  ")
  }`,
);

const client = await Client.connect({
  hosts: nodes.map((n) => n.address),
  healthConfig: {
    intervalMs: 500,
    timeoutMs: 300,
    unhealthyThreshold: 2,
    healthyThreshold: 2,
  },
  poolConfig: { minConnections: 2, maxConnections: 4 },
  retryConfig: { initialBackoffMs: 20, maxBackoffMs: 500 },
  // The failing requests eject n2; short ejections (the default is 30 s)
  // let the demo see it come back within its phases.
  outlierEjection: { baseEjectionTimeMs: FAST ? 500 : 2000 },
});
progress.event(
  `${stamp()} connected; ${client.manager.healthyCount} of 3 nodes healthy`,
);

const healthLog: string[] = [];
client.addEventListener("nodeHealthChanged", (e) => {
  const d = e.detail;
  const line = `${stamp()} ${idOf.get(d.address)} marked ${
    d.healthy ? "HEALTHY" : "UNHEALTHY"
  } (${d.reason})`;
  healthLog.push(line);
  progress.event(line);
});

let previous = new Map<string, number>();
const onTick = (s: LoadSnapshot) => {
  const delta = new Map<string, number>();
  let total = 0;
  for (const [id, n] of s.perNode) {
    const d = n - (previous.get(id) ?? 0);
    delta.set(id, d);
    total += d;
  }
  previous = new Map(s.perNode);
  const health = new Map(
    client.stats().nodes.map((n) => [idOf.get(n.address), n.healthy]),
  );
  const shares = ["n1", "n2", "n3"].map((id) => {
    const share = total > 0
      ? Math.round(((delta.get(id) ?? 0) * 100) / total)
      : 0;
    return `${id} ${String(share).padStart(3)}% ${
      health.get(id) ? "up" : "DOWN"
    }`;
  });
  progress.update(
    `${stamp()} ${formatCount(s.recentRate).padStart(7)} req/s  p50 ${
      formatMs(quantile(s.recent, 0.5)).padStart(8)
    }  p99 ${formatMs(quantile(s.recent, 0.99)).padStart(8)}  | ${
      shares.join(" | ")
    }  errors ${s.errors}`,
  );
};

const load = runLoad(client, {
  concurrency: 32,
  durationMs: PHASE_MS.steady + PHASE_MS.down + PHASE_MS.recovered +
    (FAST ? 1000 : 2000),
  payload: ops.echo("demo"),
  idempotent: true,
  onTick,
  tickMs: 250,
});

const n2 = nodes[1];
const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));
await sleepMs(PHASE_MS.steady);
progress.event(
  `${stamp()} stopping n2 (like a crash: its connections drop, its port refuses)`,
);
await n2.stop();
await sleepMs(PHASE_MS.down);
progress.event(`${stamp()} starting n2 again on the same port`);
await n2.start();
const recoveredBy = performance.now() + PHASE_MS.recovered + 2000;
while (!client.stats().nodes[1].healthy && performance.now() < recoveredBy) {
  await sleepMs(100);
}
const result = await load;
progress.done();

const stats = client.stats();
const total = [...result.perNode.values()].reduce((a, b) => a + b, 0);
console.log("\nrequests per node");
console.log(renderTable(
  ["node", "address", "requests", "share", "healthy now", "ping avg"],
  stats.nodes.map((n) => {
    const id = idOf.get(n.address)!;
    const count = result.perNode.get(id) ?? 0;
    return [
      id,
      n.address,
      count,
      `${((count * 100) / Math.max(1, total)).toFixed(1)}%`,
      n.healthy ? "yes" : "no",
      formatMs(n.latencyMs),
    ];
  }),
));
const seconds = result.elapsedMs / 1000;
console.log("\nsummary");
console.log(renderTable(["measure", "value"], [
  ["requests answered", formatCount(result.ok)],
  [
    "throughput",
    `${formatCount(result.ok / seconds)} req/s over ${seconds.toFixed(1)} s`,
  ],
  ["retries", formatCount(stats.retries)],
  [
    "errors",
    `${result.errors}${
      result.errorKinds.size
        ? ` (${
          [...result.errorKinds].map(([k, v]) => `${k}: ${v}`).join(", ")
        })`
        : ""
    }`,
  ],
  ["latency p50", formatMs(quantile(result.latencies, 0.5))],
  ["latency p90", formatMs(quantile(result.latencies, 0.9))],
  ["latency p99", formatMs(quantile(result.latencies, 0.99))],
  ["latency max", formatMs(result.latencies[result.latencies.length - 1])],
]));

await client.disconnect();
await Promise.all(nodes.map((n) => n.close()));

// The demo holds up only if the failure was seen and healed and nothing
// was lost: n2 went down and came back, and every request got an answer.
const sawDown = healthLog.some((l) => l.includes("n2 marked UNHEALTHY"));
const sawUp = healthLog.some((l) => l.includes("n2 marked HEALTHY"));
const ok = sawDown && sawUp && result.errors === 0 &&
  stats.nodes.every((n) => n.healthy);
console.log(
  `\n${ok ? "ok" : "NOT OK"}: n2 ${
    sawDown ? "was marked unhealthy" : "was never marked unhealthy"
  }, ${
    sawUp ? "recovered" : "did not recover"
  }; ${result.errors} failed requests; shut down cleanly in ${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s`,
);
exitProcess(ok ? 0 : 1);
