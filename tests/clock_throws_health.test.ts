// A custom clock whose now() throws once the client is up, met by a
// health check (healthCheckAllNodes, and the health loop's sweeps), which
// reads it as the check starts, for what the checkout left of its limit
// and as the answer or the failure is booked: the node's result carried
// the clock's raw Error. Now it carries the ConfigError naming `clock`,
// the clock's error as cause, as a request that meets the clock does; the
// node is not marked down for it (it did nothing), and nothing escapes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { Clock } from "../src/clock.ts";
import { ConfigError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { breakableClock, disconnectOn } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

test("healthCheckAllNodes() meeting a clock whose now() throws, after 0 to 16 more reads: each failed result carries a ConfigError naming the clock, the node stays healthy, nothing escapes", async () => {
  const { virtual, clock, broke, state } = breakableClock();
  let throws = 0;
  const now = clock.now;
  clock.now = () => {
    try {
      return now();
    } catch (error) {
      throws++;
      throw error;
    }
  };
  const network = createMemoryNetwork();
  const nodes = [
    await startTestNode({ runtime: network, clock: virtual }),
    await startTestNode({ runtime: network, clock: virtual }),
  ];
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0, unhealthyThreshold: 1 },
    poolConfig: { minConnections: 1, maxConnections: 1 },
  });
  const watch = watchEscapes();
  let escaped: unknown[] = [];
  const answered: number[] = [];
  try {
    await virtual.advance(0);
    for (let i = 0; i < 3; i++) await tickEnds();
    for (let reads = 0; reads <= 16; reads++) {
      throws = 0;
      let outcome: unknown = "pending";
      state.reads = reads;
      client.healthCheckAllNodes().then(
        (results) => (outcome = results),
        (error) => (outcome = error),
      );
      for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
      state.reads = Infinity;
      assert.ok(Array.isArray(outcome), `${reads}: ${outcome}`);
      if (reads === 0) assert.ok(throws > 0, "the check read no clock");
      for (const result of outcome) {
        if (result.ok) continue;
        // Before: the clock's raw Error.
        assert.ok(
          result.error instanceof ConfigError,
          `${reads}: ${result.error}`,
        );
        assert.equal(result.error.field, "clock");
        assert.equal(result.error.cause, broke);
      }
      if (outcome.every((r) => r.ok)) answered.push(reads);
      // Not the nodes' doing: none is marked down (one miss would).
      assert.deepEqual(
        client.stats().nodes.map((n) => n.healthy),
        [true, true],
        `${reads}`,
      );
    }
    assert.ok(answered.length > 0, "no sweep got past the clock");
  } finally {
    state.reads = Infinity;
    await disconnectOn(client, virtual);
    for (const node of nodes) await node.close();
    escaped = await watch.stop();
  }
  assert.deepEqual(escaped, []);
});

// A clock that throws once only, inside the check (the checkout's reading
// in the pool, or the check's own), and reads again as the failure is
// booked: the raw Error was booked against the node, which one miss marks
// down (unhealthyThreshold 1).
test("healthCheckAllNodes() meeting a clock whose now() throws once, after 0 to 16 reads (fine again as the failure is booked): each failed result carries a ConfigError naming the clock, the node stays healthy, nothing escapes", async () => {
  const virtual = new VirtualClock();
  const broke = new Error("clock broke once");
  // The read that throws, counted from 0; none while Infinity.
  const state = { reads: Infinity, thrown: 0 };
  const clock: Clock = {
    now: () => {
      if (state.reads-- === 0) {
        state.thrown++;
        throw broke;
      }
      return virtual.now();
    },
    setTimeout: (fn, ms) => virtual.setTimeout(fn, ms),
    clearTimeout: (id) => virtual.clearTimeout(id),
  };
  const network = createMemoryNetwork();
  const nodes = [
    await startTestNode({ runtime: network, clock: virtual }),
    await startTestNode({ runtime: network, clock: virtual }),
  ];
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0, unhealthyThreshold: 1 },
    poolConfig: { minConnections: 1, maxConnections: 1 },
  });
  const watch = watchEscapes();
  let escaped: unknown[] = [];
  let met = 0;
  try {
    await virtual.advance(0);
    for (let i = 0; i < 3; i++) await tickEnds();
    for (let reads = 0; reads <= 16; reads++) {
      state.thrown = 0;
      let outcome: unknown = "pending";
      state.reads = reads;
      client.healthCheckAllNodes().then(
        (results) => (outcome = results),
        (error) => (outcome = error),
      );
      for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
      state.reads = Infinity;
      assert.ok(Array.isArray(outcome), `${reads}: ${outcome}`);
      if (state.thrown > 0) met++;
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
    assert.ok(met > 0, "the checks never met the clock");
  } finally {
    state.reads = Infinity;
    await disconnectOn(client, virtual);
    for (const node of nodes) await node.close();
    escaped = await watch.stop();
  }
  assert.deepEqual(escaped, []);
});
