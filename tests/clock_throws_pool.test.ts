// A custom clock whose now() throws once the pool is up, met on the
// pool's cold paths: a factory's outcome taken in after the clock broke
// (a failure, or a connection) read it in a promise handler, an
// unhandled rejection, and the waiters were never told: a checkout (and
// so ConnectionManager.connect()) hung until close(). The shared turn's
// timer, pumping, read it as it refilled: an uncaught exception. Now the
// waiters fail with a ConfigError naming the clock, the clock's error as
// cause, and nothing escapes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionManager } from "../src/cluster/manager.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { ConfigError, PoolClosedError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { breakableClock, fakePoolOn } from "./support/breakable_clock.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { tickEnds } from "./support/stub_connection.ts";

for (
  const outcome of [
    "fails",
    "delivers",
    "fails, heard by a checkoutFailed listener",
  ] as const
) {
  test(`a factory that ${outcome} after the clock's now() broke: the waiter fails with a ConfigError naming the clock, nothing escapes`, async () => {
    const { clock, broke, state } = breakableClock();
    let settle!: {
      resolve: (c: FakeConnection) => void;
      reject: (e: Error) => void;
    };
    const pool = fakePoolOn(
      clock,
      { minConnections: 0, maxConnections: 1 },
      () =>
        new Promise<FakeConnection>((resolve, reject) => {
          settle = { resolve, reject };
        }),
    );
    // Its event reads the clock too: the waiter must fail all the same.
    let heard = 0;
    if (outcome.includes("listener")) {
      pool.addEventListener("checkoutFailed", () => heard++);
    }
    const watch = watchEscapes();
    try {
      let result: unknown = "pending";
      pool.getConnection().then((c) => (result = c), (e) => (result = e));
      await tickEnds();
      state.reads = 0;
      if (outcome === "delivers") settle.resolve(new FakeConnection());
      else settle.reject(new Error("refused"));
      await tickEnds();
      state.reads = Infinity;
      // Before: still "pending" (until close()), and an unhandled rejection.
      assert.ok(result instanceof ConfigError, String(result));
      assert.equal(result.field, "clock");
      assert.match(result.message, /now\(\)/);
      assert.equal(result.cause, broke);
      assert.equal(heard, 0);
    } finally {
      state.reads = Infinity;
      await pool.close();
      assert.deepEqual(await watch.stop(), []);
    }
  });
}

test("the shared turn's timer pumping while the clock's now() throws: nothing escapes, and the pool goes on once it reads again", async () => {
  const { clock, virtual, state } = breakableClock();
  const pool = fakePoolOn(clock, { minConnections: 1, maxConnections: 1 });
  const watch = watchEscapes();
  try {
    // Served through a promise: its connection is marked for a turn.
    const conn = await pool.acquireShared();
    assert.ok(conn instanceof FakeConnection);
    // The turn's timer has not fired yet: it meets the broken clock.
    state.reads = 0;
    await tickEnds();
    state.reads = Infinity;
    await virtual.advance(0);
    const again = await pool.getConnection({ timeoutMs: 100 });
    pool.returnConnection(again);
  } finally {
    state.reads = Infinity;
    await pool.close();
    // Before: the clock's error, uncaught from the timer.
    assert.deepEqual(await watch.stop(), []);
  }
});

test("the maintenance timer firing while the clock's now() throws: nothing escapes, and the pool goes on once it reads again", async () => {
  const { clock, virtual, state } = breakableClock();
  const pool = fakePoolOn(clock, {
    minConnections: 0,
    maxConnections: 1,
    idleTimeoutMs: 1000,
  });
  const watch = watchEscapes();
  try {
    pool.returnConnection(await pool.getConnection());
    state.reads = 0;
    // Its idle timeout is due: the timer fires into the broken clock.
    await virtual.advance(5000);
    state.reads = Infinity;
    const again = await pool.getConnection({ timeoutMs: 100 });
    pool.returnConnection(again);
  } finally {
    state.reads = Infinity;
    await pool.close();
    // Before: the clock's error, uncaught from the timer.
    assert.deepEqual(await watch.stop(), []);
  }
});

test("ConnectionManager.connect() while the clock's now() throws as the first open fails: it fails with a ConfigError naming the clock, instead of hanging until close(), and nothing escapes", async () => {
  const { clock, virtual, broke, state } = breakableClock();
  const network = createMemoryNetwork();
  // Down: its port was listened on once, and no longer is.
  const gone = await startTestNode({ runtime: network, clock: virtual });
  const down = gone.address;
  await gone.close();
  // The clock breaks as the pool's open reaches the network: its checkout
  // has read it already, the refusal is taken in by the broken clock.
  const runtime = new Proxy(network, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (key === "connect") {
        return (...args: unknown[]) => {
          state.reads = 0;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const manager = new ConnectionManager(
    resolveConfig({
      hosts: [down],
      runtime,
      clock,
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 0 },
    }),
    runtime,
  );
  const watch = watchEscapes();
  try {
    let outcome: unknown = "pending";
    manager.connect().then(() => (outcome = "connected"), (e) => (outcome = e));
    for (let i = 0; i < 20 && outcome === "pending"; i++) await tickEnds();
    state.reads = Infinity;
    // Before: "pending" until close(), and an unhandled rejection; then
    // the clock's own Error, raw, out of marking the node unhealthy (its
    // pool's clear() reads the clock).
    assert.notEqual(outcome, "pending");
    assert.ok(outcome instanceof ConfigError, String(outcome));
    assert.equal(outcome.field, "clock");
    assert.equal(outcome.cause, broke);
  } finally {
    state.reads = Infinity;
    await manager.close();
    assert.deepEqual(await watch.stop(), []);
  }
  assert.equal(network.openChannels, 0);
});

test("ConnectionManager.addNode() while the clock's now() throws as the node's first open fails: it fails with a ConfigError naming the clock, and nothing escapes", async () => {
  const { clock, virtual, broke, state } = breakableClock();
  const network = createMemoryNetwork();
  const up = await startTestNode({ runtime: network, clock: virtual });
  const gone = await startTestNode({ runtime: network, clock: virtual });
  const down = gone.address;
  await gone.close();
  const manager = new ConnectionManager(
    resolveConfig({
      hosts: [up.address],
      runtime: network,
      clock,
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 0 },
    }),
    network,
  );
  const watch = watchEscapes();
  try {
    await manager.connect();
    let outcome: unknown = "pending";
    manager.addNode(down).then((r) => (outcome = r), (e) => (outcome = e));
    // The open is under way: its refusal meets the broken clock.
    state.reads = 0;
    for (let i = 0; i < 20 && outcome === "pending"; i++) await tickEnds();
    state.reads = Infinity;
    // Before: the clock's own Error, raw (booking the failed first
    // connection against the node's health reads the clock).
    assert.ok(outcome instanceof ConfigError, String(outcome));
    assert.equal(outcome.field, "clock");
    assert.equal(outcome.cause, broke);
  } finally {
    state.reads = Infinity;
    await manager.close();
    await up.close();
    assert.deepEqual(await watch.stop(), []);
  }
  assert.equal(network.openChannels, 0);
});

test("clear() while the clock's now() throws: the cleared pool's waiters fail all the same, nothing escapes", async () => {
  const { clock, broke, state } = breakableClock();
  let refuse = (_: Error) => {};
  // Delivers nothing until the end: the checkout waits until the pool is
  // cleared.
  const pool = fakePoolOn(
    clock,
    { minConnections: 0, maxConnections: 1 },
    () => new Promise<FakeConnection>((_, reject) => (refuse = reject)),
  );
  const watch = watchEscapes();
  try {
    let result: unknown = "pending";
    pool.getConnection().then((c) => (result = c), (e) => (result = e));
    await tickEnds();
    state.reads = 0;
    // The clock's throw reaches clear()'s caller (the health watch puts
    // it on the clock), but only once the waiters were failed.
    assert.throws(() => pool.clear(new Error("unhealthy")), (e) => e === broke);
    await tickEnds();
    state.reads = Infinity;
    // Before: still "pending" until close().
    assert.ok(result instanceof PoolClosedError, String(result));
    assert.match(result.message, /cleared/);
  } finally {
    state.reads = Infinity;
    refuse(new Error("refused"));
    await pool.close();
    assert.deepEqual(await watch.stop(), []);
  }
});
