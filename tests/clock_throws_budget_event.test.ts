// A custom clock whose now() throws just as the client dispatches its
// `retryBudgetExhausted` event (the event's time): the event is only a
// notice, yet the throw ended the request with the clock's ConfigError in
// place of the failure the budget kept from being retried. The `retry`
// event was guarded the same way already; now the budget's notice is too:
// the request fails with its own error and the logger hears of the clock
// once.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { LogEntry } from "../src/config/shapes.ts";
import { ConfigError, RemoteError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

test("a clock that throws as the retryBudgetExhausted event takes its time: the request fails with its own error, the clock is logged once", async () => {
  const logs: LogEntry[] = [];
  let breakNext = () => {};
  const s = await clientOnBreakableClock({
    config: {
      // The budget allows no retry at all: the first failure spends it.
      retryBudget: { ratio: 0, minPerSecond: 0 },
      retryConfig: { maxRetries: 2, initialBackoffMs: 10, maxBackoffMs: 10 },
      logger: (entry) => {
        logs.push(entry);
        // The notice's log line comes just before the event reads the
        // clock: break it for that one read.
        if (entry.event === "retryBudgetExhausted") breakNext();
      },
    },
  });
  const { client, virtual, state } = s;
  breakNext = () => {
    state.reads = 0;
    state.breaks = 1;
  };
  const events: Event[] = [];
  client.addEventListener("retryBudgetExhausted", (e) => events.push(e));
  let escaped: unknown[] = [];
  try {
    let outcome: unknown = "pending";
    client.request(ops.fail(3, true, "again"), { idempotent: true }).then(
      () => (outcome = "reply"),
      (error) => (outcome = error),
    );
    for (let i = 0; i < 20 && outcome === "pending"; i++) {
      await virtual.advance(10);
      for (let j = 0; j < 3; j++) await tickEnds();
    }
    assert.equal(state.thrown, 1, "the clock threw at the event");
    // Before: a ConfigError naming the clock, the node's failure lost.
    assert.ok(!(outcome instanceof ConfigError), String(outcome));
    assert.ok(outcome instanceof RemoteError, String(outcome));
    assert.equal(events.length, 0, "no event without its time");
    assert.equal(
      logs.filter((e) => e.event === "clockFailed").length,
      1,
      "the clock's failure is logged once",
    );
    assert.equal(client.stats().inFlight, 0);
    assert.equal(client.stats().retries, 0);
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});
