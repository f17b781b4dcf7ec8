// A custom clock whose setTimeout() throws as a connection's deadline
// timer is armed: by a request whose deadline is the earliest (the timer
// moved earlier), or by the timer's own firing, re-armed for the requests
// not yet due. The request that armed it fails with the ConfigError naming
// the clock's setTimeout(), and the tracker stays as it was, so later
// deadlines fire; a firing that cannot re-arm fails the requests it can no
// longer time with that ConfigError, throwing nothing out of the timer.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type DeadlineEntry,
  DeadlineTracker,
} from "../src/connection/deadlines.ts";
import { RequestTimeoutError } from "../src/errors.ts";
import { ops, replyText } from "../testing/ops.ts";
import {
  assertSetFailed,
  breakableClock,
  clientOnBreakableClock,
} from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** Starts `run`; its outcome, read as it settles ("pending" until then). */
function track(run: Promise<Uint8Array>) {
  const seen: { outcome: unknown } = { outcome: "pending" };
  run.then(
    (reply) => (seen.outcome = replyText(reply)),
    (error) => (seen.outcome = error),
  );
  return seen;
}

test("a request whose deadline cannot be armed rejects with the ConfigError naming setTimeout(), and later deadlines still fire", async () => {
  const s = await clientOnBreakableClock({
    config: { retryConfig: { maxRetries: 0 } },
  });
  const { client, virtual, state, brokeSet } = s;
  let escaped: unknown[] = [];
  try {
    // Only the first request's deadline (armed for its 777 ms) breaks.
    state.setMs = 777;
    state.sets = 0;
    state.setBreaks = 1;
    const first = track(client.request(ops.echo("x"), { timeoutMs: 777 }));
    for (let i = 0; i < 3; i++) await tickEnds();
    assert.equal(state.setsThrown, 1, "the deadline was armed");
    // Before: rejected with the clock's raw Error.
    assertSetFailed(first.outcome, brokeSet, "the first request");
    // A later deadline than the one that could not be armed: before, the
    // tracker believed itself armed for 777 ms and never armed for it.
    const second = track(
      client.request(ops.sleep(5_000, "late"), { timeoutMs: 1_000 }),
    );
    for (let i = 0; i < 3; i++) await tickEnds();
    await virtual.advance(999);
    assert.equal(second.outcome, "pending", "not early");
    await virtual.advance(1);
    for (let i = 0; i < 3; i++) await tickEnds();
    // Read again: the assertion above narrowed it to "pending".
    const timedOut: unknown = second.outcome;
    assert.ok(
      timedOut instanceof RequestTimeoutError,
      `the second request timed out: ${String(timedOut)}`,
    );
    assert.equal(
      replyText(await client.request(ops.echo("y"))),
      "y",
      "the connection still works",
    );
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});

test("a deadline timer that cannot re-arm as it fires fails the requests it can no longer time with the ConfigError naming setTimeout(); nothing escapes", async () => {
  const s = await clientOnBreakableClock({
    config: { retryConfig: { maxRetries: 0 } },
  });
  const { client, virtual, state, brokeSet } = s;
  let escaped: unknown[] = [];
  try {
    const due = track(
      client.request(ops.sleep(5_000, "a"), { timeoutMs: 100 }),
    );
    const later = track(
      client.request(ops.sleep(5_000, "b"), { timeoutMs: 300 }),
    );
    for (let i = 0; i < 3; i++) await tickEnds();
    // The firing at 100 ms re-arms for the rest: 200 ms.
    state.setMs = 200;
    state.sets = 0;
    state.setBreaks = 1;
    // Before: advance() rejected with the clock's raw Error, thrown out
    // of the timer, and the second request waited for good.
    const advanced = await virtual.advance(100).then(() => "ok", (e) => e);
    assert.equal(advanced, "ok", "nothing thrown out of the timer");
    for (let i = 0; i < 3; i++) await tickEnds();
    assert.equal(state.setsThrown, 1, "the re-arm was tried");
    assert.ok(
      due.outcome instanceof RequestTimeoutError,
      `the due request timed out: ${String(due.outcome)}`,
    );
    await virtual.advance(5_000);
    for (let i = 0; i < 3; i++) await tickEnds();
    assertSetFailed(later.outcome, brokeSet, "the request not yet due");
    state.setMs = undefined;
    assert.equal(
      replyText(await client.request(ops.echo("y"))),
      "y",
      "the connection still works",
    );
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});

interface Entry extends DeadlineEntry {
  id: number;
}

test("a DeadlineTracker whose setTimeout() throws is left as it was: a deadline moving the timer earlier throws the ConfigError, the armed timer still fires", async () => {
  const { virtual, clock, state, brokeSet } = breakableClock();
  const held = new Set<Entry>();
  const expired: number[] = [];
  const tracker = new DeadlineTracker<Entry>(
    clock,
    (visit) => held.forEach(visit),
    (e) => {
      held.delete(e);
      expired.push(e.id);
    },
    () => assert.fail("only the firing's re-arm fails entries"),
  );
  const add = (id: number, timeoutMs: number) => {
    const e: Entry = { id, deadline: 0, timeoutMs: 0 };
    tracker.add(e, timeoutMs);
    held.add(e);
  };
  add(1, 300);
  state.sets = 0;
  state.setBreaks = 1;
  // Earlier than the armed timer: the arm throws, and the entry is not
  // held (as a request whose add() threw is not).
  const thrown = (() => {
    try {
      add(2, 100);
    } catch (error) {
      return error;
    }
  })();
  assertSetFailed(thrown, brokeSet, "add()");
  assert.ok(tracker.armed, "still armed for 300");
  // Before: the tracker believed itself armed for 100, and a deadline
  // at 200 armed nothing.
  add(3, 200);
  await virtual.advance(199);
  assert.deepEqual(expired, []);
  await virtual.advance(1);
  assert.deepEqual(expired, [3]);
  await virtual.advance(100);
  assert.deepEqual(expired, [3, 1]);
  assert.equal(tracker.armed, false);
  tracker.stop();
});

test("a DeadlineTracker whose firing cannot re-arm hands what is not due to onUntimed with the ConfigError, and arms again on the next add", async () => {
  const { virtual, clock, state, brokeSet } = breakableClock();
  const held = new Set<Entry>();
  const expired: number[] = [];
  const untimed: [number, unknown][] = [];
  const tracker = new DeadlineTracker<Entry>(
    clock,
    (visit) => held.forEach(visit),
    (e) => {
      held.delete(e);
      expired.push(e.id);
    },
    (e, error) => {
      held.delete(e);
      untimed.push([e.id, error]);
    },
  );
  const add = (id: number, timeoutMs: number) => {
    const e: Entry = { id, deadline: 0, timeoutMs: 0 };
    tracker.add(e, timeoutMs);
    held.add(e);
  };
  add(1, 100);
  add(2, 300);
  add(3, 400);
  state.sets = 0;
  state.setBreaks = 1;
  // Before: advance() rejected with the clock's raw Error.
  await virtual.advance(100);
  assert.deepEqual(expired, [1]);
  assert.deepEqual(untimed.map(([id]) => id), [2, 3]);
  for (const [, error] of untimed) assertSetFailed(error, brokeSet, "untimed");
  assert.equal(tracker.armed, false);
  add(4, 50);
  assert.ok(tracker.armed, "armed again");
  await virtual.advance(50);
  assert.deepEqual(expired, [1, 4]);
  tracker.stop();
});

test("requestMany whose run's deadline cannot be armed: every item fails with the ConfigError naming setTimeout(), no node stays charged, and the next batch goes through", async () => {
  const s = await clientOnBreakableClock({
    config: { retryConfig: { maxRetries: 0 } },
  });
  const { client, state, brokeSet } = s;
  let escaped: unknown[] = [];
  try {
    state.setMs = 888;
    state.sets = 0;
    state.setBreaks = 1;
    const results = await client.requestMany(
      [ops.echo("a"), ops.echo("b")],
      { timeoutMs: 888 },
    );
    assert.equal(state.setsThrown, 1, "the run's deadline was armed");
    for (const result of results) {
      // Before: the clock's raw Error, or an InvalidArgumentError.
      assert.equal(result.ok, false);
      if (!result.ok) assertSetFailed(result.error, brokeSet, "an item");
    }
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0]);
    const again = await client.requestMany([ops.echo("c")], {
      timeoutMs: 888,
    });
    assert.deepEqual(again.map((r) => r.ok && replyText(r.value)), ["c"]);
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});
