// A custom clock whose setTimeout() throws as the client's own timers are
// armed while it works: the hedging timer (by a request, or re-armed by
// its own firing), outlier ejection's window and an ejection's end, and
// the health loop's next sweep. What a caller started ends with the
// ConfigError naming the clock's setTimeout() (its throw as cause), never
// the raw Error; a timer's own re-arm throws nothing out of the timer; and
// nothing is left stuck (a hedge never sent, a node ejected for good).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { Hedging } from "../src/client/hedging.ts";
import type { ManagedNode } from "../src/cluster/node.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import {
  assertSetFailed,
  breakableClock,
  clientOnBreakableClock,
} from "./support/breakable_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** A Hedging on `clock` that knows a slow node (100 ms) and a fast one (10). */
function hedgingOn(clock: ReturnType<typeof breakableClock>["clock"]) {
  const hedging = new Hedging(
    { delayMs: undefined, percentile: 50, maxHedges: 1 },
    clock,
  );
  const slow = {} as ManagedNode;
  const fast = {} as ManagedNode;
  for (let i = 0; i < 20; i++) {
    hedging.record(slow, 100);
    hedging.record(fast, 10);
  }
  return { hedging, slow, fast };
}

test("a hedge whose timer cannot be moved earlier throws the ConfigError naming setTimeout(), and the hedge already waiting still goes out at its time", async () => {
  const { virtual, clock, state, brokeSet } = breakableClock();
  const watch = watchEscapes();
  const { hedging, slow, fast } = hedgingOn(clock);
  const fired: [string, number][] = [];
  hedging.start(() => fired.push(["slow", virtual.now()])).arm(slow);
  state.sets = 0;
  state.setBreaks = 1;
  // Due sooner than the armed timer: the arm throws. Before: the clock's
  // raw Error, and the slow hedge's timer cleared first, for good.
  const thrown = (() => {
    try {
      hedging.start(() => fired.push(["fast", virtual.now()])).arm(fast);
    } catch (error) {
      return error;
    }
  })();
  assertSetFailed(thrown, brokeSet, "arm()");
  await virtual.advance(100);
  assert.deepEqual(fired, [["slow", 100]]);
  await virtual.advance(1000);
  assert.equal(fired.length, 1, "the one that threw is never sent");
  hedging.stop();
  assert.deepEqual(await watch.stop(), []);
});

test("a hedging timer that cannot re-arm as it fires sends the waiting hedges at once, throwing nothing out of the timer", async () => {
  const { virtual, clock, state } = breakableClock();
  const watch = watchEscapes();
  const { hedging, slow, fast } = hedgingOn(clock);
  const fired: [string, number][] = [];
  hedging.start(() => fired.push(["slow", virtual.now()])).arm(slow);
  hedging.start(() => fired.push(["fast", virtual.now()])).arm(fast);
  // The firing at 10 ms re-arms for the slow one: that arm throws.
  state.sets = 0;
  state.setBreaks = 1;
  // Before: advance() rejected with the clock's raw Error, thrown out of
  // the timer before either hedge was sent, and neither ever was.
  const advanced = await virtual.advance(10).then(() => "ok", (e) => e);
  assert.equal(advanced, "ok", "nothing thrown out of the timer");
  assert.equal(state.setsThrown, 1);
  assert.deepEqual(fired, [["fast", 10], ["slow", 10]]);
  await virtual.advance(1000);
  assert.equal(fired.length, 2, "each sent once");
  hedging.stop();
  assert.deepEqual(await watch.stop(), []);
});

test("a request whose hedge cannot be armed rejects with the ConfigError naming setTimeout(); the next is hedged as usual", async () => {
  const s = await clientOnBreakableClock({
    nodes: 2,
    config: { hedging: { delayMs: 37 }, retryConfig: { maxRetries: 0 } },
  });
  const { client, virtual, state, brokeSet } = s;
  let escaped: unknown[] = [];
  try {
    state.setMs = 37;
    state.sets = 0;
    state.setBreaks = 1;
    // Before: rejected with the clock's raw Error.
    const error = await client.request(ops.echo("x"), { idempotent: true })
      .then(replyText, (e: unknown) => e);
    assertSetFailed(error, brokeSet, "the request");
    let reply: unknown = "pending";
    client.request(ops.echo("y"), { idempotent: true }).then(
      (r) => (reply = replyText(r)),
      (e) => (reply = e),
    );
    for (let i = 0; i < 5 && reply === "pending"; i++) {
      await virtual.advance(10);
      await tickEnds();
    }
    assert.equal(reply, "y");
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});

const OVERLOADED = ops.fail(RemoteErrorCode.Overloaded, false, "busy");

/** Sends OVERLOADED once; what the request rejected with. */
function fail(client: Client): Promise<unknown> {
  return client.request(OVERLOADED).then(() => "answered", (e: unknown) => e);
}

test("an ejection whose end cannot be timed is not made: the node stays in rotation, and the request that would have ejected it rejects with the ConfigError naming setTimeout()", async () => {
  const s = await clientOnBreakableClock({
    nodes: 3,
    config: {
      loadBalancing: "round-robin",
      retryConfig: { maxRetries: 0 },
      outlierEjection: {
        consecutiveFailures: 2,
        baseEjectionTimeMs: 3_000,
        successRateMinNodes: 10,
      },
    },
  });
  const { client, virtual, state, brokeSet } = s;
  let escaped: unknown[] = [];
  try {
    const changes: boolean[] = [];
    client.addEventListener("nodeHealthChanged", (e) => {
      changes.push(e.detail.healthy);
    });
    // Only the ejection's timer (3 s less its jitter) breaks.
    state.setMs = (ms) => ms > 2_500 && ms <= 3_000;
    state.sets = 0;
    state.setBreaks = 1;
    // Round-robin: the fourth goes to the first node again, its second
    // failure in a row.
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await fail(client));
    assert.equal(state.setsThrown, 1, "the ejection's timer was tried");
    // Before: the clock's raw Error, and the node ejected with no timer
    // to end it: out of rotation for good.
    assertSetFailed(outcomes[3], brokeSet, "the ejecting request");
    assert.deepEqual(changes, [], "no ejection");
    assert.equal(client.manager.healthyCount, 3);
    await virtual.advance(600_000);
    assert.equal(client.manager.healthyCount, 3);
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});

test("a success-rate window that cannot be opened: the failure is booked all the same, the request rejects with the ConfigError naming setTimeout(), and a window that cannot re-open from its own timer throws nothing", async () => {
  const s = await clientOnBreakableClock({
    nodes: 3,
    config: {
      loadBalancing: "round-robin",
      retryConfig: { maxRetries: 0 },
      outlierEjection: {
        consecutiveFailures: 1,
        intervalMs: 4_444,
        successRateMinNodes: 3,
      },
    },
  });
  const { client, virtual, state, brokeSet } = s;
  let escaped: unknown[] = [];
  try {
    state.setMs = 4_444;
    state.sets = 0;
    state.setBreaks = 1;
    // Before: the clock's raw Error, thrown before the failure was
    // counted: the node was not ejected.
    assertSetFailed(await fail(client), brokeSet, "the first failure");
    assert.equal(client.manager.healthyCount, 2, "ejected all the same");
    // The next failure opens the window; when it closes (failures came
    // in), it re-opens from its own timer: that arm throws.
    state.sets = 1;
    state.setBreaks = 1;
    assert.ok((await fail(client)) instanceof Error);
    // Before: advance() rejected with the clock's raw Error, thrown out
    // of the window's timer.
    const advanced = await virtual.advance(4_444).then(() => "ok", (e) => e);
    assert.equal(advanced, "ok", "nothing thrown out of the timer");
    assert.equal(state.setsThrown, 2, "the re-open was tried");
    // The next failure opens a window again.
    state.sets = Infinity;
    let opened = 0;
    const set = s.clock.setTimeout;
    s.clock.setTimeout = (fn, ms) => {
      if (ms === 4_444) opened++;
      return set(fn, ms);
    };
    assert.ok((await fail(client)) instanceof Error);
    assert.equal(opened, 1, "a window opened again");
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});

test("Client.connect() whose health loop cannot be scheduled rejects with the ConfigError naming setTimeout(), and leaves nothing open", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const { clock, brokeSet, state } = breakableClock();
  const watch = watchEscapes();
  state.setMs = 2_345;
  state.sets = 0;
  state.setBreaks = 1;
  try {
    // Before: rejected with the clock's raw Error.
    const outcome = await Client.connect({
      hosts: [node.address],
      runtime: network,
      clock,
      healthConfig: { intervalMs: 2_345 },
    }).then(async (client) => {
      await client.disconnect();
      return "connected";
    }, (e: unknown) => e);
    assertSetFailed(outcome, brokeSet, "the connect");
    await tickEnds();
    assert.equal(network.openChannels, 0, "nothing left open");
  } finally {
    await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("a health loop that cannot schedule its next sweep stops, throwing nothing (no unhandled rejection); a sweep by hand still runs", async () => {
  const s = await clientOnBreakableClock({
    config: { healthConfig: { intervalMs: 2_345 } },
  });
  const { client, virtual, state } = s;
  let escaped: unknown[] = [];
  try {
    state.setMs = 2_345;
    state.sets = 0;
    state.setBreaks = 1;
    // The sweep runs at 2345 ms; its end schedules the next: that throws.
    for (let i = 0; i < 10 && state.setsThrown === 0; i++) {
      await virtual.advance(2_345);
      for (let j = 0; j < 5; j++) await tickEnds();
    }
    assert.equal(state.setsThrown, 1, "the next sweep was scheduled");
    const results = await client.healthCheckAllNodes();
    assert.equal(results.length, 1);
    assert.equal(results[0].ok, true);
  } finally {
    escaped = await s.teardown();
  }
  // Before: an unhandled rejection with the clock's raw Error.
  assert.deepEqual(escaped, []);
});
