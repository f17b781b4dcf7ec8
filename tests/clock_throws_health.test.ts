// A custom clock whose now() throws once the client is up, met by a
// health check (healthCheckAllNodes, and the health loop's sweeps), which
// reads it as the check starts, for what the checkout left of its limit
// and as the answer or the failure is booked: the node's result carried
// the clock's raw Error. Now it carries the ConfigError naming `clock`,
// the clock's error as cause, as a request that meets the clock does; the
// node is not marked down for it (it did nothing), and nothing escapes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

type Scene = Awaited<ReturnType<typeof clientOnBreakableClock>>;
type CheckResults = Awaited<ReturnType<Scene["client"]["healthCheckAllNodes"]>>;

/** Runs healthCheckAllNodes() with the clock breaking after `reads` reads. */
async function checkAfter(
  { client, state }: Scene,
  reads: number,
): Promise<CheckResults> {
  let outcome: unknown = "pending";
  state.reads = reads;
  client.healthCheckAllNodes().then(
    (results) => (outcome = results),
    (error) => (outcome = error),
  );
  for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
  state.reads = Infinity;
  assert.ok(Array.isArray(outcome), `${reads}: ${outcome}`);
  return outcome as CheckResults;
}

/**
 * Every failed result of `outcome` carries the ConfigError naming the
 * clock, and no node is marked down (not the nodes' doing: one miss
 * would).
 */
function assertClockNamed(
  { client, broke }: Scene,
  reads: number,
  outcome: CheckResults,
): void {
  for (const result of outcome) {
    if (result.ok) continue;
    // Before: the clock's raw Error, booked against the node.
    assert.ok(
      result.error instanceof ConfigError,
      `${reads}: ${result.error}`,
    );
    assert.equal(result.error.field, "clock");
    assert.equal(result.error.cause, broke);
  }
  assert.deepEqual(
    client.stats().nodes.map((n) => n.healthy),
    [true, true],
    `${reads}`,
  );
}

test("healthCheckAllNodes() meeting a clock whose now() throws, after 0 to 16 more reads: each failed result carries a ConfigError naming the clock, the node stays healthy, nothing escapes", async () => {
  const scene = await clientOnBreakableClock({
    nodes: 2,
    config: { healthConfig: { intervalMs: 0, unhealthyThreshold: 1 } },
  });
  const { state } = scene;
  let escaped: unknown[] = [];
  const answered: number[] = [];
  try {
    for (let reads = 0; reads <= 16; reads++) {
      state.thrown = 0;
      const outcome = await checkAfter(scene, reads);
      if (reads === 0) assert.ok(state.thrown > 0, "the check read no clock");
      const allOk = outcome.every((r) => r.ok);
      assertClockNamed(scene, reads, outcome);
      if (allOk) answered.push(reads);
    }
    assert.ok(answered.length > 0, "no sweep got past the clock");
  } finally {
    escaped = await scene.teardown();
  }
  assert.deepEqual(escaped, []);
});

// A clock that throws once only, inside the check (the checkout's reading
// in the pool, or the check's own), and reads again as the failure is
// booked: the raw Error was booked against the node, which one miss marks
// down (unhealthyThreshold 1).
test("healthCheckAllNodes() meeting a clock whose now() throws once, after 0 to 16 reads (fine again as the failure is booked): each failed result carries a ConfigError naming the clock, the node stays healthy, nothing escapes", async () => {
  const scene = await clientOnBreakableClock({
    nodes: 2,
    config: { healthConfig: { intervalMs: 0, unhealthyThreshold: 1 } },
  });
  const { state } = scene;
  let escaped: unknown[] = [];
  let met = 0;
  try {
    for (let reads = 0; reads <= 16; reads++) {
      state.thrown = 0;
      // The read that throws, counted from 0; it reads again after.
      state.breaks = 1;
      const outcome = await checkAfter(scene, reads);
      if (state.thrown > 0) met++;
      assertClockNamed(scene, reads, outcome);
    }
    assert.ok(met > 0, "the checks never met the clock");
  } finally {
    escaped = await scene.teardown();
  }
  assert.deepEqual(escaped, []);
});
