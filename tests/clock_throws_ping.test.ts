// A custom clock whose now() throws once the client is up, met by
// client.ping() (which reads it for its limit, the checkout and the round
// trip): ping() rejected with the clock's raw Error. Now it rejects with
// the ConfigError naming `clock`, the clock's error as cause, as a request
// that meets the clock does; nothing stays in flight, and a ping made
// once the clock reads again is answered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { ConfigError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { breakableClock, disconnectOn } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

test("ping() meeting a clock whose now() throws, after 0 to 10 more reads: a ConfigError naming the clock (or its answer, once past the reads it makes), nothing left in flight, nothing escapes", async () => {
  const { virtual, clock, broke, state } = breakableClock();
  // Counts the throws: whether the ping met the broken clock.
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
  const node = await startTestNode({ runtime: network, clock: virtual });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1, maxConnections: 1 },
  });
  const watch = watchEscapes();
  let escaped: unknown[] = [];
  const answered: number[] = [];
  try {
    await virtual.advance(0);
    for (let i = 0; i < 3; i++) await tickEnds();
    for (let reads = 0; reads <= 10; reads++) {
      throws = 0;
      let outcome: unknown = "pending";
      state.reads = reads;
      client.ping().then(
        (result) => (outcome = result),
        (error) => (outcome = error),
      );
      for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
      state.reads = Infinity;
      if (throws > 0) {
        // Before: the clock's raw Error.
        assert.ok(outcome instanceof ConfigError, `${reads}: ${outcome}`);
        assert.equal(outcome.field, "clock");
        assert.equal(outcome.cause, broke);
      } else {
        assert.equal(
          typeof (outcome as { latencyMs: number }).latencyMs,
          "number",
        );
        answered.push(reads);
      }
      assert.equal(client.stats().inFlight, 0, `${reads}`);
    }
    // Else the sweep never reached past the ping's reads.
    assert.ok(answered.length > 0, "no ping answered");
    assert.ok(!answered.includes(0), "the ping read no clock");
    const last = await client.ping();
    assert.equal(typeof last.latencyMs, "number");
  } finally {
    state.reads = Infinity;
    await disconnectOn(client, virtual);
    await node.close();
    escaped = await watch.stop();
  }
  assert.deepEqual(escaped, []);
});
