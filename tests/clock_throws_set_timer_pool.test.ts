// A custom clock whose setTimeout() throws as a pool arms its one
// maintenance timer (a checkout's wait, an open, a connection given back)
// or defers a refusal's event: the throw went out of what armed it, half
// done (a waiter left queued with its promise rejected, a connection given
// back reported as a clock whose now() threw). Now the waiters fail with
// the ConfigError naming the clock's setTimeout(), the pool is left as it
// was, and nothing escapes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { ConfigError, PoolClosedError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import {
  assertSetFailed,
  breakableClock,
  disconnectOn,
  fakePoolOn,
} from "./support/breakable_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { tickEnds } from "./support/stub_connection.ts";

test("a checkout whose wait cannot arm the pool's timer rejects with the ConfigError naming setTimeout(), and leaves no waiter behind", async () => {
  const { clock, brokeSet, state } = breakableClock();
  const pool = fakePoolOn(clock, { minConnections: 0, maxConnections: 1 });
  const watch = watchEscapes();
  try {
    const held = await pool.getConnection();
    state.setMs = 321;
    state.sets = 0;
    state.setBreaks = 1;
    // Before: rejected with the clock's raw Error, its waiter still queued.
    const error = await pool.getConnection({ timeoutMs: 321 }).then(
      () => "lent",
      (e: unknown) => e,
    );
    assertSetFailed(error, brokeSet, "the wait");
    assert.equal(pool.stats().waiting, 0, "no waiter left");
    pool.returnConnection(held);
    await tickEnds();
    // Before: lent to the waiter that had rejected, so this one waited
    // for a connection nobody would give back.
    let next: unknown = "pending";
    pool.getConnection({ timeoutMs: 50 }).then(
      (c) => (next = c),
      (e) => (next = e),
    );
    await tickEnds();
    assert.equal(next, held, "the connection given back is lent again");
    pool.returnConnection(held);
  } finally {
    state.sets = Infinity;
    await pool.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("a checkoutFailed listener that asks again as each wait fails on a clock whose setTimeout() throws: the asking ends, every ask rejects with the ConfigError, nothing escapes", async () => {
  const { clock, state } = breakableClock();
  const pool = fakePoolOn(clock, { minConnections: 0, maxConnections: 1 });
  const watch = watchEscapes();
  try {
    const held = await pool.getConnection();
    const outcomes: unknown[] = [];
    let asks = 0;
    // Asks again for as long as it is told (bounded here for the test's
    // sake, far past what the pool lets nest).
    pool.addEventListener("checkoutFailed", () => {
      if (asks++ < 10_000) {
        pool.getConnection({ timeoutMs: 1 }).catch((e) => outcomes.push(e));
      }
    });
    state.sets = 0;
    await pool.getConnection({ timeoutMs: 1 }).catch((e) => outcomes.push(e));
    for (let i = 0; i < 3; i++) await tickEnds();
    // Failed from inside the arm with every other waiter, each ask's
    // event asked again at once: the stack overflowed.
    assert.ok(asks <= 20, `${asks} asks`);
    assert.equal(outcomes.length, asks + 1);
    assert.ok(outcomes.every((e) => e instanceof ConfigError));
    state.sets = Infinity;
    pool.returnConnection(held);
  } finally {
    state.sets = Infinity;
    await pool.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("a connection given back whose idle timer cannot be armed is taken back without a throw, and lent again", async () => {
  const { clock, virtual, state } = breakableClock();
  const pool = fakePoolOn(clock, {
    minConnections: 0,
    maxConnections: 1,
    idleTimeoutMs: 400,
  });
  const watch = watchEscapes();
  try {
    const held = await pool.getConnection();
    // Past the idle time armed as it opened (lent: nothing to close).
    await virtual.advance(500);
    // Giving it back arms its idle timeout, 400 ms on.
    state.setMs = 400;
    state.sets = 0;
    state.setBreaks = 1;
    // Before: threw the ConfigError naming now(), which had not thrown.
    assert.doesNotThrow(() => pool.returnConnection(held));
    assert.equal(state.setsThrown, 1, "the idle timer was tried");
    assert.equal(pool.stats().open, 1, "kept");
    const again = await pool.getConnection({ timeoutMs: 50 });
    assert.equal(again, held);
    pool.returnConnection(held);
  } finally {
    state.sets = Infinity;
    await pool.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("an open whose time limit the pool's timer cannot be armed for fails the waiters with the ConfigError naming setTimeout(); the open goes on, its connection lent next", async () => {
  const { clock, brokeSet, state } = breakableClock();
  let deliver = (_: FakeConnection) => {};
  const pool = fakePoolOn(
    clock,
    { minConnections: 0, maxConnections: 1, connectionTimeoutMs: 555 },
    () => new Promise<FakeConnection>((resolve) => (deliver = resolve)),
  );
  const watch = watchEscapes();
  try {
    // Only the open's limit (its 555 ms) breaks, not the wait's 5 s.
    state.setMs = 555;
    state.sets = 0;
    state.setBreaks = 1;
    // Before: the waiter rejected with the clock's raw Error.
    const error = await pool.getConnection({ timeoutMs: 5_000 }).then(
      () => "lent",
      (e: unknown) => e,
    );
    assertSetFailed(error, brokeSet, "the waiter");
    assert.equal(state.setsThrown, 1);
    const conn = new FakeConnection();
    deliver(conn);
    await tickEnds();
    assert.equal(await pool.getConnection({ timeoutMs: 50 }), conn);
    pool.returnConnection(conn);
  } finally {
    state.sets = Infinity;
    await pool.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("a refusal whose checkoutFailed cannot be deferred (deep in a listener's loop) rejects with the ConfigError naming setTimeout(); nothing escapes", async () => {
  const { clock, brokeSet, state } = breakableClock();
  const pool = fakePoolOn(clock, { minConnections: 0, maxConnections: 1 });
  const watch = watchEscapes();
  await pool.close();
  const outcomes: unknown[] = [];
  // Asks again as each refusal is told, nesting until the pool defers.
  let asks = 0;
  pool.addEventListener("checkoutFailed", () => {
    if (asks++ < 40) {
      try {
        pool.getConnection().catch((e: unknown) => outcomes.push(e));
      } catch (thrown) {
        outcomes.push(["thrown", thrown]);
      }
    }
  });
  state.sets = 0;
  state.setBreaks = 1;
  // Before: the clock's raw Error thrown out of getConnection() (no
  // promise), inside the listeners' dispatch.
  pool.getConnection().catch((e: unknown) => outcomes.push(e));
  for (let i = 0; i < 5; i++) await tickEnds();
  assert.equal(state.setsThrown, 1);
  const config = outcomes.filter((e) => e instanceof ConfigError);
  assert.equal(config.length, 1, `one ConfigError: ${outcomes.map(String)}`);
  assertSetFailed(config[0], brokeSet, "the deferred refusal");
  assert.ok(
    outcomes.every((e) =>
      e instanceof ConfigError || e instanceof PoolClosedError
    ),
    outcomes.map(String).join(", "),
  );
  assert.deepEqual(await watch.stop(), []);
});

test("a lazy client's first request whose checkout cannot arm the pool's timer rejects with the ConfigError naming setTimeout(); the next gets its reply", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const { virtual, clock, brokeSet, state } = breakableClock();
  const watch = watchEscapes();
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    // The first connect waits twice this for each node's checkout.
    timeoutMs: 2_161,
  }, { lazy: true });
  try {
    // Only the first connect's checkout's wait breaks.
    state.setMs = 4_322;
    state.sets = 0;
    state.setBreaks = 1;
    let outcome: unknown = "pending";
    client.request(ops.echo("x")).then(
      (reply) => (outcome = replyText(reply)),
      (error) => (outcome = error),
    );
    for (let i = 0; i < 20 && outcome === "pending"; i++) {
      await virtual.advance(0);
      await tickEnds();
    }
    assert.equal(state.setsThrown, 1, "the wait's timer was tried");
    // Before: ConnectFailedError, the clock's raw Error as its cause.
    assertSetFailed(outcome, brokeSet, "the first request");
    assert.equal(replyText(await client.request(ops.echo("y"))), "y");
  } finally {
    state.sets = Infinity;
    await disconnectOn(client, virtual);
    await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("Client.connect() whose opens cannot arm their connect limit rejects with the ConfigError naming setTimeout(), not a ConnectFailedError", async () => {
  const network = createMemoryNetwork();
  const nodes = [
    await startTestNode({ runtime: network }),
    await startTestNode({ runtime: network }),
  ];
  const { clock, brokeSet, state } = breakableClock();
  const watch = watchEscapes();
  // Only the opens' limits break.
  state.setMs = 3_210;
  state.sets = 0;
  try {
    const outcome = await Client.connect({
      hosts: nodes.map((node) => node.address),
      runtime: network,
      clock,
      healthConfig: { intervalMs: 0 },
      timeoutMs: 3_210,
    }).then(async (client) => {
      await client.disconnect();
      return "connected";
    }, (e: unknown) => e);
    assert.ok(state.setsThrown >= 2, "each node's open was tried");
    // Before: ConnectFailedError "could not connect to any node: ...
    // (invalid clock: ...)", retryable, the ConfigError inside it.
    assertSetFailed(outcome, brokeSet, "the connect");
    assert.equal(network.openChannels, 0, "nothing left open");
  } finally {
    for (const node of nodes) await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});
