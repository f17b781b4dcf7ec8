// A custom clock whose now() throws once the client is up (the config
// check reads it once, at construction): a request then failed with the
// clock's raw Error, thrown from the balancer's pick (peak-ewma) or the
// pool's checkout, and, thrown after the node counted the attempt, left
// that node's in-flight count raised for good, skewing load-aware
// balancing. Now the request fails with a ConfigError naming the clock,
// the clock's error as cause, and the node's count is given back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Client } from "../src/client/client.ts";
import { PeakEwmaBalancer } from "../src/cluster/balancer.ts";
import { HealthyNodeSet } from "../src/cluster/healthy_set.ts";
import { PeakEwma } from "../src/cluster/peak_ewma.ts";
import { ConfigError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import {
  breakableClock,
  clientOnBreakableClock,
} from "./support/breakable_clock.ts";

for (
  const loadBalancing of [
    "round-robin",
    "least-in-flight",
    "peak-ewma",
  ] as const
) {
  test(`a request made while the clock's now() throws fails with a ConfigError naming the clock, and leaves no node's in-flight count raised (${loadBalancing})`, async () => {
    const network = createMemoryNetwork();
    const { virtual, clock, broke, state } = breakableClock();
    const nodes = [
      await startTestNode({ runtime: network, clock: virtual }),
      await startTestNode({ runtime: network, clock: virtual }),
    ];
    const client = await Client.connect({
      hosts: nodes.map((n) => n.address),
      runtime: network,
      clock,
      loadBalancing,
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 1 },
    });
    try {
      await virtual.advance(0);
      state.reads = 0;
      const failed = client.request(ops.echo("x")).then(
        () => undefined,
        (error) => error,
      );
      // Mended within the tick: only this request met the broken clock.
      state.reads = Infinity;
      const error = await failed;
      // Before: the clock's own Error, raw.
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.field, "clock");
      assert.match(error.message, /now\(\)/);
      assert.match(error.message, /clock broke/);
      assert.equal(error.cause, broke);
      const stats = client.stats();
      assert.equal(stats.inFlight, 0);
      assert.deepEqual(stats.nodes.map((n) => n.inFlight), [0, 0]);
      // The client carries on once the clock reads again.
      assert.equal(replyText(await client.request(ops.echo("y"))), "y");
    } finally {
      await client.disconnect({ timeoutMs: 1 });
      for (const node of nodes) await node.close();
    }
  });
}

test("a hand-built PeakEwmaBalancer whose clock's now() throws at a pick throws a ConfigError naming the clock, the clock's error as cause", () => {
  const broke = new Error("clock broke");
  let broken = false;
  const clock = {
    now: () => {
      if (broken) throw broke;
      return 0;
    },
  };
  const balancer = new PeakEwmaBalancer(
    new HealthyNodeSet(["a", "b"], { slotOf: (n) => (n === "a" ? 0 : 1) }),
    { latency: new PeakEwma(2), loads: new Int32Array(2), clock },
  );
  broken = true;
  // Before: the clock's own Error, raw.
  const error = (() => {
    try {
      balancer.pick();
    } catch (error) {
      return error;
    }
  })();
  assert.ok(error instanceof ConfigError, String(error));
  assert.equal(error.field, "clock");
  assert.equal(error.cause, broke);
  broken = false;
  assert.ok(["a", "b"].includes(balancer.pick()!));
});

// A clock that throws once and then reads again: the request's catch
// asked the clock a second time whether it was to blame (blameClock),
// found it working, and the request failed with the clock's raw Error.
for (
  const [loadBalancing, hedged, observed] of [
    ["round-robin", false, false],
    ["least-in-flight", false, false],
    ["peak-ewma", false, false],
    ["round-robin", true, false],
    ["round-robin", false, true],
  ] as const
) {
  test(
    `a request that meets a clock whose now() throws once, then reads again, fails with the ConfigError naming the clock (${loadBalancing}${
      hedged ? ", hedged" : ""
    }${observed ? ", observed" : ""})`,
    async () => {
      const s = await clientOnBreakableClock({
        nodes: 2,
        config: {
          loadBalancing,
          retryConfig: { maxRetries: 0 },
          ...(hedged ? { hedging: { delayMs: 50 } } : {}),
        },
      });
      const { client, broke, state } = s;
      const unsubscribe = observed ? subscribeRequestStart() : () => {};
      let escaped: unknown[] = [];
      try {
        for (let reads = 0; reads < 8; reads++) {
          state.thrown = 0;
          state.breaks = 1;
          state.reads = reads;
          const outcome = await client.request(ops.echo("x")).then(
            replyText,
            (error) => error,
          );
          state.reads = Infinity;
          if (state.thrown === 0) {
            assert.equal(outcome, "x", `${reads} reads: its reply`);
            continue;
          }
          if (outcome === "x") continue; // the reply was booked as it threw
          // Before: the clock's own Error, raw ('clock broke').
          assert.ok(
            outcome instanceof ConfigError,
            `${reads} reads: ${String(outcome)}`,
          );
          assert.equal(outcome.field, "clock");
          assert.equal(outcome.cause, broke);
          assert.equal(client.stats().inFlight, 0, `${reads} reads`);
        }
        // The config still holds the clock it was given.
        assert.equal(client.config.clock, s.clock);
      } finally {
        unsubscribe();
        escaped = await s.teardown();
      }
      assert.deepEqual(escaped, []);
    },
  );
}

/** Subscribes to nodewire:request:start, so that requests are observed. */
function subscribeRequestStart(): () => void {
  const onMessage = () => {};
  subscribe("nodewire:request:start", onMessage);
  return () => unsubscribe("nodewire:request:start", onMessage);
}
