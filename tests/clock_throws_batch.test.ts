// A custom clock whose now() throws once the client is up, met by a
// batch (requestMany): as its chunks are handed out, or as a chunk that
// found no connection ready waits for one. requestMany promises one
// result per item and never to reject; each item fails with a
// ConfigError naming the clock, the clock's error as cause, nothing
// escapes, and no node stays charged with the batch's items.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** Checks that `outcome` is the results of a batch whose items met the clock. */
function assertClockFailed(outcome: unknown, broke: Error) {
  // Before: rejected with the clock's raw Error, or "pending" for good.
  assert.ok(
    Array.isArray(outcome),
    String((outcome as { rejected?: unknown }).rejected ?? outcome),
  );
  for (const result of outcome) {
    if (result.ok) continue; // Sent before the clock broke.
    // Before: an InvalidArgumentError blaming the payloads, too.
    assert.ok(result.error instanceof ConfigError, String(result.error));
    assert.equal(result.error.field, "clock");
    assert.equal(result.error.cause, broke);
  }
  assert.ok(outcome.some((r) => !r.ok), "no item met the broken clock");
}

// The reads as the batch is handed out: the pool's look, the
// connection's deadline (its timer armed from that reading), and, under
// peak-ewma, the chunk's start before them.
for (const balancer of ["round-robin", "peak-ewma"] as const) {
  for (const reads of balancer === "peak-ewma" ? [0, 1, 2] : [0, 1]) {
    test(`requestMany (${balancer}) while the clock's now() throws after ${reads} more reads: every item that met it fails with a ConfigError naming the clock, nothing escapes, no node stays charged`, async () => {
      const { client, broke, state, teardown } = await clientOnBreakableClock(
        {
          config: {
            loadBalancing: balancer,
            poolConfig: { minConnections: 1 },
          },
          ticks: 0,
        },
      );
      try {
        let outcome: unknown = "pending";
        state.reads = reads;
        client.requestMany([ops.echo("a"), ops.echo("b")]).then(
          (results) => (outcome = results),
          (error) => (outcome = { rejected: error }),
        );
        for (let i = 0; i < 10 && outcome === "pending"; i++) {
          await tickEnds();
        }
        state.reads = Infinity;
        assertClockFailed(outcome, broke);
        assert.equal(client.stats().inFlight, 0);
        // Before: 2, the items of a chunk never sent.
        assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0]);
      } finally {
        assert.deepEqual(await teardown(), []);
      }
    });
  }
}

test("requestMany whose chunk waits for a connection while the clock's now() throws: its items fail with a ConfigError naming the clock, nothing escapes, no node stays charged", async () => {
  const { client, broke, state, teardown } = await clientOnBreakableClock({
    config: { loadBalancing: "round-robin" },
    ticks: 0,
  });
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  try {
    // The one connection is lent: the chunk finds none ready and waits.
    const lent = client.withConnection(() => held);
    for (let i = 0; i < 5; i++) await tickEnds();
    let outcome: unknown = "pending";
    // The pool's look (it finds none) goes through; the wait's own read
    // of the clock throws.
    state.reads = 1;
    client.requestMany([ops.echo("a"), ops.echo("b")]).then(
      (results) => (outcome = results),
      (error) => (outcome = { rejected: error }),
    );
    for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
    state.reads = Infinity;
    release();
    await lent;
    assertClockFailed(outcome, broke);
    assert.equal(client.stats().inFlight, 0);
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0]);
  } finally {
    state.reads = Infinity;
    release();
    assert.deepEqual(await teardown(), []);
  }
});
