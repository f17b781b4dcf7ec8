/**
 * A cluster where every node fails every request with a retryable error:
 * how many attempts reach the nodes per request offered, with the default
 * retry budget and with none (issue #14: at most 1.2 with the budget,
 * against up to 1 + maxRetries without). Three reference nodes in this
 * process, 32 callers each sending its next request when the last settles,
 * for a fixed time per series (bounded in time and count).
 *
 *   deno run -A bench/retry_storm.ts
 *   bun bench/retry_storm.ts
 *   node --import tsx bench/retry_storm.ts
 *
 * @module
 */

import { Client } from "../src/client/client.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";

const CALLERS = 32;
/** Each series runs this long: several budget windows' worth would take
 * minutes, so the budget's window is shortened to match (same ratio). */
const SERIES_MS = 4000;
const MAX_REQUESTS = 200_000;

const runtime = typeof (globalThis as { Deno?: unknown }).Deno === "object"
  ? "deno"
  : typeof (globalThis as { Bun?: unknown }).Bun === "object"
  ? "bun"
  : "node";

async function series(
  nodes: TestNode[],
  budget: false | { windowMs: number },
): Promise<{ offered: number; attempts: number; seconds: number }> {
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    healthConfig: { intervalMs: 0 },
    // Every node fails: without ejection's last-node rule and with the
    // default retries (3) and a short backoff so retries are what limits.
    retryConfig: { initialBackoffMs: 1, maxBackoffMs: 4 },
    retryBudget: budget === false ? false : { windowMs: budget.windowMs },
  });
  const before = nodes.reduce((sum, n) => sum + n.stats.requests, 0);
  const start = performance.now();
  let offered = 0;
  const failing = ops.fail(100, true);
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (
        performance.now() - start < SERIES_MS && offered < MAX_REQUESTS
      ) {
        offered++;
        await client.request(failing, { idempotent: true }).catch(() => {});
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  await client.disconnect();
  const attempts = nodes.reduce((sum, n) => sum + n.stats.requests, 0) -
    before;
  return { offered, attempts, seconds };
}

const nodes = await Promise.all(
  [0, 1, 2].map((i) => startTestNode({ nodeId: `n${i}` })),
);
try {
  // The default window is 10 s; a 4 s series sees a 2 s window, so the
  // budget is measured over two windows and a half, as it would be in
  // steady state.
  const withBudget = await series(nodes, { windowMs: 2000 });
  const without = await series(nodes, false);
  const rows = [
    ["default budget (20%, at least 10/s)", withBudget],
    ["no budget (retryBudget: false)", without],
  ] as const;
  console.log(
    `Every node of three fails every request (retryable), ${CALLERS} callers, ${
      SERIES_MS / 1000
    } s per series, on ${runtime}`,
  );
  console.log(
    "| retry budget | requests offered | attempts | attempts / request |",
  );
  console.log("| --- | ---: | ---: | ---: |");
  for (const [name, r] of rows) {
    console.log(
      `| ${name} | ${r.offered} | ${r.attempts} | ${
        (r.attempts / r.offered).toFixed(3)
      } |`,
    );
  }
  const ratio = withBudget.attempts / withBudget.offered;
  console.log(
    `- target: attempts per offered request with the default budget ${
      ratio.toFixed(3)
    } (<= 1.2): ${ratio <= 1.2 ? "met" : "NOT met"}`,
  );
} finally {
  await Promise.all(nodes.map((n) => n.close()));
}
