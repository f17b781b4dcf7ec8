// A custom clock whose now() throws once the client is up, met by
// client.ping() (which reads it for its limit, the checkout and the round
// trip): ping() rejected with the clock's raw Error. Now it rejects with
// the ConfigError naming `clock`, the clock's error as cause, as a request
// that meets the clock does; nothing stays in flight, and a ping made
// once the clock reads again is answered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

test("ping() meeting a clock whose now() throws, after 0 to 10 more reads: a ConfigError naming the clock (or its answer, once past the reads it makes), nothing left in flight, nothing escapes", async () => {
  const { client, broke, state, teardown } = await clientOnBreakableClock();
  let escaped: unknown[] = [];
  const answered: number[] = [];
  try {
    for (let reads = 0; reads <= 10; reads++) {
      // Whether the ping met the broken clock.
      state.thrown = 0;
      let outcome: unknown = "pending";
      state.reads = reads;
      client.ping().then(
        (result) => (outcome = result),
        (error) => (outcome = error),
      );
      for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
      state.reads = Infinity;
      if (state.thrown > 0) {
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
    escaped = await teardown();
  }
  assert.deepEqual(escaped, []);
});
