// The retry budget: retries together stay within a share of recent
// requests plus a floor per second; when spent, a request fails with its
// own error and the client says so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Client } from "../src/client/client.ts";
import type { RetryBudgetEvent } from "../src/client/events.ts";
import { RetryBudget } from "../src/client/retry_budget.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { ConfigError, RemoteError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

const BUDGET = { ratio: 0.2, minPerSecond: 10, windowMs: 10_000 };

test("with no traffic the floor alone allows minPerSecond × window retries", () => {
  const budget = new RetryBudget(BUDGET, 0);
  let allowed = 0;
  while (budget.tryWithdraw(0)) allowed++;
  assert.equal(allowed, 100);
  // A window later the floor is back.
  assert.equal(budget.tryWithdraw(10_000), true);
});

test("steady traffic allows ratio × requests on top of the floor", () => {
  const budget = new RetryBudget({ ...BUDGET, minPerSecond: 0 }, 0);
  // 1000 requests per second for 20 s, one retry asked for every 100 ms.
  let granted = 0;
  for (let t = 0; t < 20_000; t += 100) {
    budget.requests += 100;
    if (budget.tryWithdraw(t)) granted++;
  }
  assert.equal(granted, 200, "one in a thousand is well within 20%");
  let allowed = 0;
  while (budget.tryWithdraw(20_000)) allowed++;
  // The window is kept in ten slots, so it spans 0.9 to 1 × windowMs:
  // 0.2 × 9000 requests, less the ~90 retries already in it.
  assert.ok(allowed >= 1600 && allowed <= 2000, String(allowed));
});

test("property: under steady traffic, retries in any window stay within ratio × requests + floor", () => {
  fc.assert(
    fc.property(
      fc.record({
        ratio: fc.double({ min: 0, max: 2, noNaN: true }),
        minPerSecond: fc.integer({ min: 0, max: 50 }),
        windowMs: fc.integer({ min: 100, max: 20_000 }),
      }),
      fc.integer({ min: 1, max: 2_000 }), // ms between steps
      fc.integer({ min: 0, max: 200 }), // requests per step
      fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 80 }),
      (config, gap, rate, asks) => {
        const budget = new RetryBudget(config, 0);
        const log: { at: number; retries: number }[] = [];
        let now = 0;
        for (const ask of asks) {
          now += gap;
          budget.requests += rate;
          let granted = 0;
          for (let i = 0; i < ask; i++) {
            if (budget.tryWithdraw(now)) granted++;
          }
          log.push({ at: now, retries: granted });
        }
        const slot = config.windowMs / 10;
        const floor = config.minPerSecond * config.windowMs / 1000;
        for (const end of log) {
          // The budget's window is 0.9 to 1 × windowMs long.
          const retries = log
            .filter((e) => e.at > end.at - 0.9 * config.windowMs)
            .filter((e) => e.at <= end.at)
            .reduce((sum, e) => sum + e.retries, 0);
          const requests = log
            .filter((e) => e.at > end.at - config.windowMs - 2 * slot - gap)
            .filter((e) => e.at <= end.at).length * rate;
          assert.ok(
            retries <= config.ratio * requests + floor + 1e-6,
            `${retries} retries > ${config.ratio} × ${requests} + ${floor}`,
          );
        }
      },
    ),
    { numRuns: 300 },
  );
});

test("property: whatever the traffic, retries never exceed ratio × all requests + the floor of each window", () => {
  fc.assert(
    fc.property(
      fc.record({
        ratio: fc.double({ min: 0, max: 2, noNaN: true }),
        minPerSecond: fc.integer({ min: 0, max: 50 }),
        windowMs: fc.integer({ min: 100, max: 20_000 }),
      }),
      fc.array(
        fc.record({
          gap: fc.integer({ min: 0, max: 5_000 }),
          requests: fc.integer({ min: 0, max: 500 }),
          asks: fc.integer({ min: 0, max: 500 }),
        }),
        { maxLength: 60 },
      ),
      (config, steps) => {
        const budget = new RetryBudget(config, 0);
        let now = 0;
        let requests = 0;
        let granted = 0;
        for (const step of steps) {
          now += step.gap;
          budget.requests += step.requests;
          requests += step.requests;
          for (let i = 0; i < step.asks; i++) {
            if (budget.tryWithdraw(now)) granted++;
          }
        }
        // Windows of 0.9 × windowMs, each with its own floor; a request is
        // counted in at most two consecutive windows' budgets.
        const windows = Math.floor(now / (0.9 * config.windowMs)) + 1;
        const floor = config.minPerSecond * config.windowMs / 1000;
        assert.ok(
          granted <= 2 * config.ratio * requests + floor * windows + 1e-6,
          `${granted} > 2 × ${config.ratio} × ${requests} + ${floor} × ${windows}`,
        );
      },
    ),
    { numRuns: 300 },
  );
});

test("a failing cluster receives a bounded multiple of its load, and the client says why it stopped retrying", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    retryConfig: { maxRetries: 3, initialBackoffMs: 1, jitter: false },
    retryBudget: { ratio: 0.2, minPerSecond: 1, windowMs: 10_000 },
  });
  const spent: RetryBudgetEvent[] = [];
  client.addEventListener("retryBudgetExhausted", (e) => spent.push(e));
  try {
    const before = node.stats.requests;
    const calls = Array.from(
      { length: 200 },
      () => client.request(ops.fail(100, true)).catch((e) => e),
    );
    await clock.advance(100);
    const outcomes = await Promise.all(calls);
    const attempts = node.stats.requests - before;
    // Without the budget: 4 attempts each, 800 in all.
    assert.ok(
      attempts <= 200 * 1.2 + 10 + 1,
      `${attempts} attempts for 200 requests`,
    );
    assert.ok(spent.length > 0);
    // Those not retried fail with the node's own error, not an exhaustion.
    assert.ok(outcomes.some((o) => o instanceof RemoteError));
    assert.ok(spent[0].detail.error instanceof RemoteError);
    assert.equal(spent[0].detail.address, node.address);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("retryBudget: false turns it off, true is the default (as hedging: true); bad settings are ConfigErrors naming the field", () => {
  assert.equal(
    resolveConfig({ hosts: ["a"], retryBudget: false }).retryBudget,
    undefined,
  );
  assert.deepEqual(resolveConfig({ hosts: ["a"] }).retryBudget, BUDGET);
  assert.deepEqual(
    resolveConfig({ hosts: ["a"], retryBudget: true }).retryBudget,
    BUDGET,
  );
  for (
    const [field, value] of [
      ["ratio", -1],
      ["ratio", NaN],
      ["minPerSecond", "10"],
      ["windowMs", 0],
      ["windowMs", 3e9],
    ] as const
  ) {
    assert.throws(
      () =>
        resolveConfig({
          hosts: ["a"],
          retryBudget: { [field]: value } as never,
        }),
      (e: unknown) =>
        e instanceof ConfigError && e.field === `retryBudget.${field}`,
      `${field}: ${String(value)}`,
    );
  }
  // A misspelt option is named, with the one it meant: not just any
  // ConfigError (a budget refused whole would have passed).
  assert.throws(
    () => resolveConfig({ hosts: ["a"], retryBudget: { ratoi: 1 } as never }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.field, "retryBudget.ratoi");
      assert.match(e.message, /did you mean "ratio"/);
      return true;
    },
  );
});
