// A custom clock whose now() throws as a connection's deadline timer
// fires: the throw escaped from the timer (an uncaught exception on a real
// clock; the virtual clock's advance() rejected with it), and the tracker
// was left unarmed, so every request in flight on the connection lost its
// deadline: one a node never answers waited until a disconnect. Now the
// firing takes the deadline it was armed for as the time (the timer came
// because that deadline did): what is due expires, the rest is re-armed.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type DeadlineEntry,
  DeadlineTracker,
} from "../src/connection/deadlines.ts";
import { RequestTimeoutError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import {
  breakableClock,
  clientOnBreakableClock,
} from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

interface Entry extends DeadlineEntry {
  id: number;
}

test("a deadline timer whose clock throws as it fires still expires what is due and re-arms for the rest, throwing nothing", async () => {
  for (const breaks of [1, 2, Infinity]) {
    const { virtual, clock, state } = breakableClock();
    const held = new Set<Entry>();
    const expired: number[] = [];
    const tracker = new DeadlineTracker<Entry>(
      clock,
      (visit) => held.forEach(visit),
      (e) => {
        held.delete(e);
        expired.push(e.id);
      },
      () => assert.fail("every deadline can be armed"),
    );
    for (const [id, timeoutMs] of [[1, 100], [2, 300]]) {
      const e: Entry = { id, deadline: 0, timeoutMs: 0 };
      held.add(e);
      tracker.add(e, timeoutMs);
    }
    // The next reads are the firing's: they throw.
    state.reads = 0;
    state.breaks = breaks;
    // Before: advance() rejected with the clock's throw.
    await virtual.advance(100);
    assert.ok(state.thrown >= 1, `breaks ${breaks}: the clock threw`);
    assert.deepEqual(expired, [1], `breaks ${breaks}: the first is due`);
    // Before: the tracker was left unarmed, the second never expired.
    assert.ok(tracker.armed, `breaks ${breaks}: re-armed`);
    await virtual.advance(199);
    assert.deepEqual(expired, [1], `breaks ${breaks}: not early`);
    await virtual.advance(1);
    assert.deepEqual(expired, [1, 2], `breaks ${breaks}: the second`);
    assert.equal(tracker.armed, false, `breaks ${breaks}: nothing left`);
    tracker.stop();
  }
});

test("a request on a node that never answers still times out when the clock throws as its connection's deadline timer fires", async () => {
  const s = await clientOnBreakableClock({
    config: { requestTimeoutMs: 100, retryConfig: { maxRetries: 0 } },
  });
  const { client, virtual, state } = s;
  let escaped: unknown[] = [];
  try {
    let outcome: unknown = "pending";
    client.request(ops.sleep(5_000, "late")).then(
      () => (outcome = "reply"),
      (error) => (outcome = error),
    );
    for (let i = 0; i < 3; i++) await tickEnds();
    await virtual.advance(99);
    // The timer's firing reads the clock next.
    state.reads = 0;
    state.breaks = 1;
    // Before: advance() rejected, and the request was still pending 4 s on.
    await virtual.advance(1);
    for (let i = 0; i < 3; i++) await tickEnds();
    assert.equal(state.thrown, 1, "the clock threw at the firing");
    assert.ok(outcome instanceof RequestTimeoutError, String(outcome));
    assert.equal(client.stats().inFlight, 0);
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});
