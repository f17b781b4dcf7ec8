// A custom clock whose now() throws once the client is up, met as
// withConnection gives its connection back (the pool's check-in reads the
// clock): the call rejected with the clock's raw Error. Now it rejects
// with the ConfigError naming `clock`, the clock's error as cause, as a
// request that meets the clock does; a `fn` that failed keeps its own
// error. Nothing stays in flight or lent, and the next call gets the
// connection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

// The clock breaks after `reads` more reads, counted from the end of
// `fn`: the give-back reads it (the check-in's time, then the pool's look
// at whether to open more), and from 2 on nothing breaks.
for (const fnFails of [false, true]) {
  for (let reads = 0; reads <= 2; reads++) {
    test(
      `withConnection giving its connection back ${reads} reads before the clock's now() throws${
        fnFails ? ", fn having failed: fn's error" : ""
      }: the call settles, a ConfigError naming the clock if the give-back met it${
        fnFails ? " and fn succeeded" : ""
      }, nothing lent or in flight`,
      async () => {
        const { client, broke, state, teardown } =
          await clientOnBreakableClock();
        let escaped: unknown[] = [];
        try {
          const own = new Error("fn failed");
          let outcome: unknown = "pending";
          client.withConnection(async () => {
            // A tick of its own, so the pool's reading of this one is gone.
            await tickEnds();
            state.reads = reads;
            if (fnFails) throw own;
            return "done";
          }).then((value) => (outcome = value), (error) => (outcome = error));
          for (let i = 0; i < 10 && outcome === "pending"; i++) {
            await tickEnds();
          }
          state.reads = Infinity;
          if (reads === 0) {
            assert.ok(state.thrown > 0, "the give-back met the clock");
          }
          if (fnFails) {
            assert.equal(outcome, own);
          } else if (state.thrown > 0) {
            // Before: the clock's raw Error.
            assert.ok(outcome instanceof ConfigError, String(outcome));
            assert.equal(outcome.field, "clock");
            assert.equal(outcome.cause, broke);
          } else {
            assert.equal(outcome, "done");
          }
          assert.equal(client.stats().inFlight, 0);
          // Back in the pool: the next call has it at once.
          let next: unknown = "pending";
          client.withConnection((c) => Promise.resolve(c.id)).then(
            (value) => (next = value),
            (error) => (next = error),
          );
          for (let i = 0; i < 10 && next === "pending"; i++) await tickEnds();
          assert.equal(typeof next, "number", String(next));
          assert.equal(client.stats().inFlight, 0);
        } finally {
          escaped = await teardown();
        }
        assert.deepEqual(escaped, []);
      },
    );
  }
}
