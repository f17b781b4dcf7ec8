// A custom clock whose now() throws once the client is up, met by a
// request that fails while a diagnostics_channel subscriber listens (an
// APM agent): the request path ends a failed request by publishing it,
// which reads the clock (the message's start or duration), before it
// settled the request's promise. The throw left the request pending for
// good (counted settled: disconnect() no longer waited for it) and went
// out of the path's catch, or uncaught from the connection's sink. Now
// the request fails with its error (the ConfigError naming the clock when
// the clock broke before the node's answer was booked, else that
// answer), the logger hears of the clock once, and (since
// clock_throws_published) the publication is made all the same, without
// its duration.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { LogEntry } from "../src/config/shapes.ts";
import { ConfigError, RemoteError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

for (const loadBalancing of ["round-robin", "peak-ewma"] as const) {
  test(`a request failing while the clock's now() throws, a diagnostics subscriber listening (${loadBalancing}): it settles with its error (the ConfigError naming the clock if it broke first), nothing escapes`, async () => {
    for (let reads = 0; reads <= 6; reads++) {
      const logs: LogEntry[] = [];
      const { client, broke, state, teardown } = await clientOnBreakableClock(
        {
          config: { loadBalancing, logger: (entry) => logs.push(entry) },
        },
      );
      const heard = () => {};
      subscribe("nodewire:request:error", heard);
      let escaped: unknown[] = [];
      const name = `${loadBalancing}, ${reads} reads`;
      try {
        let outcome: unknown = "pending";
        state.reads = reads;
        // Not retried: the node's answer ends it.
        client.request(ops.fail(3, false, "no")).then(
          () => (outcome = "reply"),
          (error) => (outcome = error),
        );
        for (let i = 0; i < 10 && outcome === "pending"; i++) {
          await tickEnds();
        }
        state.reads = Infinity;
        if (reads === 0) assert.ok(state.thrown > 0, `${name}: no throw`);
        // Before: "pending" for good.
        const told = logs.filter((e) => e.event === "clockFailed").length;
        if (outcome instanceof ConfigError) {
          // The clock broke before the node's answer was booked.
          assert.ok(state.thrown > 0, name);
          assert.equal(outcome.field, "clock");
          assert.equal(outcome.cause, broke);
          assert.ok(told <= 1, name);
        } else {
          // The node's answer is the outcome; what broke after it (its
          // publication) is told to the logger, once.
          assert.ok(outcome instanceof RemoteError, `${name}: ${outcome}`);
          assert.equal(told, state.thrown > 0 ? 1 : 0, name);
        }
        assert.equal(client.stats().inFlight, 0, name);
        assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0]);
      } finally {
        unsubscribe("nodewire:request:error", heard);
        escaped = await teardown();
      }
      assert.deepEqual(escaped, [], name);
    }
  });
}
