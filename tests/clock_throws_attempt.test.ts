// A custom clock whose now() throws once the client is up, met after an
// attempt went out: booking the attempt's failure (failed(), called from
// the connection's sink) read it, and a hedge about to be sent (the hedge
// timer) read it after charging the hedge's node. Both threw out of a
// callback: reported as uncaught, the request never settled, and the
// node's in-flight count stayed raised. Now the request fails with a
// ConfigError naming the clock, the clock's error as cause, and no node
// stays charged.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

test("an attempt that fails while the clock's now() throws (peak-ewma books its latency): the request fails with a ConfigError naming the clock, no node stays charged", async () => {
  const { client, broke, state, teardown } = await clientOnBreakableClock({
    config: {
      loadBalancing: "peak-ewma",
      poolConfig: { minConnections: 1 },
    },
    ticks: 0,
  });
  try {
    let outcome: unknown = "pending";
    client.request(ops.fail(3, false, "no")).then(
      () => (outcome = "replied"),
      (error) => (outcome = error),
    );
    // Sent: the failure comes back to a broken clock.
    state.reads = 0;
    for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
    state.reads = Infinity;
    // Before: "pending" for good, the clock's error uncaught.
    assert.ok(outcome instanceof ConfigError, String(outcome));
    assert.equal(outcome.field, "clock");
    assert.equal(outcome.cause, broke);
    assert.equal(client.stats().inFlight, 0);
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0]);
  } finally {
    assert.deepEqual(await teardown(), []);
  }
});

/**
 * Two nodes, round-robin, hedged after 10 ms; the first answers 100 ms
 * late (behind a fault proxy), so a request to it is hedged.
 */
async function slowFirstHedged() {
  const scene = await clientOnBreakableClock({
    nodes: 2,
    proxied: 1,
    config: { loadBalancing: "round-robin", hedging: { delayMs: 10 } },
    ticks: 0,
  });
  await scene.proxies[0].setFaults({ latencyMs: 100 });
  return scene;
}

test("a hedge sent while the clock's now() throws: the request fails with a ConfigError naming the clock, and the hedge's node is not left charged", async () => {
  const { client, virtual, broke, state, teardown } = await slowFirstHedged();
  try {
    let outcome: unknown = "pending";
    client.request(ops.echo("x"), { idempotent: true }).then(
      () => (outcome = "replied"),
      (error) => (outcome = error),
    );
    // The hedge timer's own read goes through; the hedge's next one throws.
    state.reads = 1;
    await virtual.advance(10);
    state.reads = Infinity;
    for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
    // Before: the clock's error uncaught from the timer, the second node
    // charged with a hedge never sent.
    assert.ok(outcome instanceof ConfigError, String(outcome));
    assert.equal(outcome.field, "clock");
    assert.equal(outcome.cause, broke);
    assert.equal(client.stats().hedges, 0);
    assert.equal(client.stats().nodes[1].inFlight, 0);
    // The main attempt's late reply gives its node back.
    await virtual.advance(250);
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
  } finally {
    assert.deepEqual(await teardown(), []);
  }
});

test("the hedge timer fires while the clock's now() throws: the request fails with a ConfigError naming the clock, nothing escapes, no node stays charged", async () => {
  const { client, virtual, broke, state, teardown } = await slowFirstHedged();
  try {
    let outcome: unknown = "pending";
    client.request(ops.echo("x"), { idempotent: true }).then(
      () => (outcome = "replied"),
      (error) => (outcome = error),
    );
    // The hedge timer's own read throws (Hedging's, before any hedge is
    // looked at). Before: thrown out of the timer, uncaught.
    state.reads = 0;
    let timerThrew: unknown = undefined;
    await virtual.advance(10).catch((error) => (timerThrew = error));
    state.reads = Infinity;
    for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
    assert.equal(timerThrew, undefined);
    assert.ok(outcome instanceof ConfigError, String(outcome));
    assert.equal(outcome.field, "clock");
    assert.equal(outcome.cause, broke);
    assert.equal(client.stats().hedges, 0);
    assert.equal(client.stats().nodes[1].inFlight, 0);
    // The main attempt's late reply gives its node back.
    await virtual.advance(250);
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
  } finally {
    assert.deepEqual(await teardown(), []);
  }
});
