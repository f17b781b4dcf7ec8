import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AbortedError,
  ConnectionRefusedError,
  NodewireError,
  PoolClosedError,
  PoolMisuseError,
  PoolTimeoutError,
} from "../src/errors.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { YOUNG_DEATH_MS } from "../src/pool/open_backoff.ts";
import type { PoolEvent, PoolEventDetailMap } from "../src/pool/events.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import {
  ADDRESS,
  closedReasons,
  FakeNode,
  record,
  setup,
  watch,
} from "./support/pool_scene.ts";

// ------------------------------------------------------------ min and max

test("nothing is opened before start() or the first request", async () => {
  const { clock, node } = setup({ minConnections: 3 });
  await clock.advance(10_000);
  assert.equal(node.calls, 0);
});

test("start() fills to minConnections in the background: the first connection alone, then maxConnecting at a time", async () => {
  const { clock, node, pool } = setup({
    minConnections: 5,
    maxConnections: 10,
    maxConnecting: 2,
  });
  node.connectDelayMs = 10;
  pool.start();
  await clock.advance(0);
  assert.equal(node.opening, 1, "until one open succeeded");
  await clock.advance(10);
  assert.equal(pool.stats().open, 1);
  assert.equal(node.opening, 2);
  await clock.advance(10);
  assert.equal(pool.stats().open, 3);
  await clock.advance(10);
  assert.equal(pool.stats().open, 5);
  await clock.advance(1000);
  assert.equal(node.calls, 5);
  assert.equal(node.maxOpening, 2);
  assert.equal(pool.stats().idle, 5);
});

test("the defaults are 5 to 20 connections", async () => {
  const clock = new VirtualClock();
  const node = new FakeNode(clock);
  const pool = new ConnectionPool({
    address: ADDRESS,
    config: {},
    factory: node.factory,
    clock,
  });
  assert.equal(pool.config.minConnections, 5);
  assert.equal(pool.config.maxConnections, 20);
  assert.equal(pool.config.maxConnecting, 2);
  pool.start();
  await clock.advance(0);
  assert.equal(pool.stats().open, 5);
  const held = Array.from({ length: 25 }, () => watch(pool.getConnection()));
  await clock.advance(0);
  assert.equal(held.filter((h) => h.done).length, 20);
  assert.equal(pool.stats().open, 20);
  assert.equal(pool.stats().waiting, 5);
  assert.equal(node.calls, 20);
  const closing = pool.close();
  for (const h of held) if (h.value) pool.returnConnection(h.value);
  await closing;
});

test("the first request starts filling to the minimum, as start() does", async () => {
  const { clock, pool } = setup({ minConnections: 3 });
  const events = record(pool, ["poolReady"]);
  await pool.getConnection();
  await clock.advance(0);
  assert.equal(pool.stats().open, 3);
  assert.equal(events.length, 1);
});

test("connections that break unused as soon as they open are refilled after a growing delay, while a caller's demand opens at once", async () => {
  // A node that kills each connection a moment after its handshake was
  // reconnected to at once, every time: a storm of handshakes.
  const { clock, node, pool } = setup({ minConnections: 2 });
  pool.start();
  await clock.advance(0);
  assert.equal(node.connections.length, 2);
  const breakAllOpen = () => {
    for (const c of node.connections) if (c.isOpen) c.break();
  };
  breakAllOpen(); // both at once: one young death, not two
  await clock.advance(0);
  assert.equal(node.connections.length, 2, "no refill at once");
  await clock.advance(99);
  assert.equal(node.connections.length, 2);
  await clock.advance(1);
  assert.equal(node.connections.length, 4, "refilled after 100 ms");
  breakAllOpen();
  await clock.advance(199);
  assert.equal(node.connections.length, 4, "then after 200 ms");
  await clock.advance(1);
  assert.equal(node.connections.length, 6);
  // A caller does not wait for the refill: its demand opens now, and the
  // connection it used proves itself (its death is no young one).
  breakAllOpen();
  const conn = await pool.acquireShared();
  assert.equal(conn.id, 7);
  node.conn(7).break();
  await clock.advance(400);
  assert.ok(node.connections.length >= 9, "refilled after 400 ms");
  await pool.close();
  assert.equal(clock.pendingTimers, 0);
});

test("connections closed below the minimum are replaced in the background", async () => {
  const { clock, node, pool } = setup({ minConnections: 2 });
  pool.start();
  // Established: one that breaks unused sooner is a young death (below).
  await clock.advance(YOUNG_DEATH_MS);
  node.conn(1).break();
  await clock.advance(0);
  assert.equal(pool.stats().open, 2);
  assert.deepEqual(node.connections.map((c) => c.id), [1, 2, 3]);
  const conn = await pool.getConnection();
  assert.equal(conn.id, 2);
});

// ------------------------------------------------------- exclusive checkout

test("getConnection lends exclusively: no other caller and no shared use until returned", async () => {
  const { clock, pool } = setup({ maxConnections: 2 });
  const a = await pool.getConnection();
  const shared = await pool.acquireShared();
  assert.notEqual(shared.id, a.id, "shared use skips a lent connection");
  const b = await pool.getConnection();
  assert.equal(b.id, shared.id);
  const third = watch(pool.getConnection());
  await clock.advance(0);
  assert.equal(third.done, false, "both lent: the third caller waits");
  assert.equal(pool.tryAcquireShared(), undefined);
  pool.returnConnection(a);
  await clock.advance(0);
  assert.equal(third.value, a);
});

test("waiters are served first come, first served", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const conn = await pool.getConnection();
  const order: number[] = [];
  const waiters = [1, 2, 3].map((n) =>
    pool.getConnection().then((c) => {
      order.push(n);
      return c;
    })
  );
  await clock.advance(0);
  for (const waiter of waiters) {
    pool.returnConnection(conn);
    assert.equal(await waiter, conn);
  }
  assert.deepEqual(order, [1, 2, 3]);
});

test("a new caller queues behind waiters instead of taking a returned connection", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const conn = await pool.getConnection();
  const first = watch(pool.getConnection());
  await clock.advance(0);
  pool.returnConnection(conn);
  const late = watch(pool.getConnection());
  await clock.advance(0);
  assert.equal(first.value, conn);
  assert.equal(late.done, false);
});

test("a connection that becomes free goes to the oldest waiter, not to a newer caller", async () => {
  const { clock, node, pool } = setup({
    minConnections: 1,
    maxConnections: 2,
    maxConnecting: 1,
  });
  pool.start();
  await clock.advance(0);
  node.connectDelayMs = 10;
  node.conn(1).inFlight = 1;
  const first = watch(pool.getConnection()); // waits for a fresh connection
  await clock.advance(0);
  assert.equal(first.done, false);
  node.conn(1).inFlight = 0; // its shared requests finished
  const second = watch(pool.getConnection());
  await clock.advance(0);
  assert.equal(first.value?.id, 1);
  assert.equal(second.done, false);
  await clock.advance(10);
  assert.equal(second.value?.id, 2);
});

test("getConnection fails after connectionTimeoutMs naming the node and the counts", async () => {
  const { clock, pool } = setup({
    maxConnections: 1,
    connectionTimeoutMs: 100,
  });
  await pool.getConnection();
  const waiter = watch(pool.getConnection());
  await clock.advance(99);
  assert.equal(waiter.done, false);
  assert.equal(pool.stats().waiting, 1);
  await clock.advance(1);
  assert.ok(waiter.error instanceof PoolTimeoutError);
  assert.equal(waiter.error.retryable, true);
  assert.equal(waiter.error.address, ADDRESS);
  assert.equal(
    waiter.error.message,
    `no connection to ${ADDRESS} within 100 ms ` +
      `(connectionTimeoutMs; 1 open, 1 in use, 1 waiting)`,
  );
  assert.equal(waiter.error.limit, "connectionTimeoutMs");
  assert.equal(pool.stats().waiting, 0);
});

test("a per-call timeoutMs overrides connectionTimeoutMs", async () => {
  const { clock, pool } = setup({
    maxConnections: 1,
    connectionTimeoutMs: 5000,
  });
  await pool.getConnection();
  const waiter = watch(pool.getConnection({ timeoutMs: 30 }));
  await clock.advance(30);
  assert.ok(waiter.error instanceof PoolTimeoutError);
  assert.equal(waiter.error.timeoutMs, 30);
});

test("a timeoutMs that is not a finite number of ms a timer can hold is refused, not waited on", async () => {
  const { pool } = setup({ maxConnections: 1 });
  await pool.getConnection();
  for (const timeoutMs of [-1, Number.NaN, Infinity, 2 ** 31]) {
    await assert.rejects(
      pool.getConnection({ timeoutMs }),
      (error: unknown) =>
        error instanceof NodewireError && error.code === "INVALID_ARGUMENT",
    );
  }
  assert.equal(pool.stats().waiting, 0);
});

test("an aborted signal rejects with AbortedError, before or while waiting, and frees the place in line", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const early = watch(pool.getConnection({ signal: AbortSignal.abort("no") }));
  await clock.advance(0);
  assert.ok(early.error instanceof AbortedError);
  const conn = await pool.getConnection();
  const timers = clock.pendingTimers;
  const controller = new AbortController();
  const first = watch(pool.getConnection({ signal: controller.signal }));
  const second = watch(pool.getConnection());
  await clock.advance(0);
  assert.equal(pool.stats().waiting, 2);
  controller.abort("gave up");
  await clock.advance(0);
  assert.ok(first.error instanceof AbortedError);
  assert.equal((first.error as AbortedError).cause, "gave up");
  assert.equal(pool.stats().waiting, 1);
  pool.returnConnection(conn);
  await clock.advance(0);
  assert.equal(second.value, conn);
  assert.equal(clock.pendingTimers, timers, "both waiters' timers are gone");
});

test("returning a connection twice throws PoolMisuseError and leaves the counts alone", async () => {
  const { clock, pool } = setup({ maxConnections: 2 });
  const a = await pool.getConnection();
  const b = await pool.getConnection();
  pool.returnConnection(a);
  const before = pool.stats();
  assert.throws(
    () => pool.returnConnection(a),
    (error: unknown) =>
      error instanceof PoolMisuseError && error instanceof NodewireError &&
      error.code === "POOL_MISUSE" && /returned twice/.test(error.message) &&
      error.message.includes(ADDRESS),
  );
  assert.deepEqual(pool.stats(), before);
  assert.equal(before.inUse, 1);
  // Still lent exactly once: b goes back fine, and a is lent to one caller only.
  pool.returnConnection(b);
  const x = await pool.getConnection();
  const y = await pool.getConnection();
  assert.notEqual(x, y);
  const z = watch(pool.getConnection());
  await clock.advance(0);
  assert.equal(z.done, false);
});

test("returning a connection from another pool or from acquireShared throws PoolMisuseError", async () => {
  const one = setup();
  const two = setup();
  const foreign = await two.pool.getConnection();
  assert.throws(
    () => one.pool.returnConnection(foreign),
    /connection 1 does not belong to the pool for 10\.0\.0\.1:7000/,
  );
  const shared = await one.pool.acquireShared();
  assert.throws(
    () => one.pool.returnConnection(shared),
    (e: unknown) =>
      e instanceof PoolMisuseError && e.code === "POOL_MISUSE" &&
      /connection 1 was returned to the pool for 10\.0\.0\.1:7000 but is not checked out/
        .test(e.message),
  );
  assert.equal(one.pool.stats().inUse, 0);
  assert.equal(one.pool.stats().idle, 1);
});

// --------------------------------------------------------------- shared use

test("acquireShared fills the oldest connection below the threshold and checks nothing out", async () => {
  const { clock, node, pool } = setup({
    minConnections: 3,
    multiplexThreshold: 4,
  });
  pool.start();
  await clock.advance(0);
  node.conn(1).inFlight = 3;
  node.conn(2).inFlight = 1;
  assert.equal((await pool.acquireShared()).id, 1, "oldest below 4 in flight");
  assert.equal((await pool.acquireShared()).id, 1, "shared, not checked out");
  assert.equal(pool.stats().inUse, 0);
  node.conn(1).inFlight = 4;
  assert.equal(
    (await pool.acquireShared()).id,
    2,
    "the first is full: spill over",
  );
  node.conn(2).inFlight = 4;
  node.conn(3).inFlight = 5;
  assert.equal(
    (await pool.acquireShared()).id,
    1,
    "all at the threshold: the fewest in flight, oldest on ties",
  );
  node.conn(1).inFlight = 6;
  assert.equal((await pool.acquireShared()).id, 2);
});

test("acquireShared opens one more connection when every one is at the threshold, one at a time", async () => {
  const { clock, node, pool } = setup({
    minConnections: 1,
    maxConnections: 3,
    multiplexThreshold: 2,
  });
  node.connectDelayMs = 10;
  pool.start();
  await clock.advance(10);
  node.conn(1).inFlight = 1;
  assert.equal((await pool.acquireShared()).id, 1);
  assert.equal(node.calls, 1, "below the threshold: no growth");
  node.conn(1).inFlight = 2;
  const first = await pool.acquireShared();
  assert.equal(first.id, 1, "served at once by the busy connection");
  assert.equal(node.calls, 2, "and one more is on its way");
  await pool.acquireShared();
  assert.equal(node.calls, 2, "not a second one while the first opens");
  await clock.advance(10);
  assert.equal((await pool.acquireShared()).id, 2);
  assert.equal(
    node.calls,
    2,
    "a connection below the threshold exists: no growth",
  );
});

test("acquireShared does not grow past maxConnections", async () => {
  const { clock, node, pool } = setup({ maxConnections: 1 });
  const conn = await pool.acquireShared();
  conn.inFlight = 50;
  for (let i = 0; i < 10; i++) assert.equal(await pool.acquireShared(), conn);
  await clock.advance(0);
  assert.equal(node.calls, 1);
});

test("acquireShared waits in the FIFO queue when nothing is usable, with the same timeout", async () => {
  const { clock, pool } = setup({
    maxConnections: 1,
    connectionTimeoutMs: 200,
  });
  const lent = await pool.getConnection();
  const served = watch(pool.acquireShared());
  await clock.advance(100);
  assert.equal(served.done, false);
  pool.returnConnection(lent);
  await clock.advance(0);
  assert.equal(served.value, lent);
  await pool.getConnection();
  const late = watch(pool.acquireShared());
  await clock.advance(200);
  assert.ok(late.error instanceof PoolTimeoutError);
});

test("one returned connection serves the exclusive waiter first, then shared waiters share it", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const conn = await pool.getConnection();
  const exclusive = watch(pool.getConnection());
  const shared = watch(pool.acquireShared());
  await clock.advance(0);
  pool.returnConnection(conn);
  await clock.advance(0);
  assert.equal(exclusive.value, conn);
  assert.equal(shared.done, false, "lent again, so not shared");
  pool.returnConnection(conn);
  await clock.advance(0);
  assert.equal(shared.value, conn);
});

test("the shared fast path needs no timer, no waiter and no new connection", async () => {
  const { clock, node, pool } = setup({ minConnections: 2 });
  pool.start();
  await clock.advance(0);
  const timers = clock.pendingTimers;
  for (let i = 0; i < 1000; i++) {
    const conn = pool.tryAcquireShared();
    assert.ok(conn);
    await pool.acquireShared();
  }
  assert.equal(clock.pendingTimers, timers);
  assert.equal(pool.stats().waiting, 0);
  assert.equal(node.calls, 2);
});

test("getConnection prefers opening a connection to lending a busy one, and lends the least busy at the limit", async () => {
  const { clock, node, pool } = setup({ minConnections: 1, maxConnections: 2 });
  pool.start();
  await clock.advance(0);
  node.conn(1).inFlight = 3;
  const fresh = await pool.getConnection();
  assert.equal(fresh.id, 2, "a new connection rather than the busy one");
  node.conn(2).inFlight = 0;
  const busy = await pool.getConnection();
  assert.equal(busy.id, 1, "at the limit, the busy one rather than a wait");
  assert.equal(pool.stats().inUse, 2);
});

// ------------------------------------------------------ opening and failures

test("a burst of callers never has more than maxConnecting opens at once", async () => {
  const { clock, node, pool } = setup({ maxConnections: 10, maxConnecting: 2 });
  node.connectDelayMs = 10;
  const callers = Array.from({ length: 10 }, () => watch(pool.getConnection()));
  await clock.advance(100);
  assert.equal(callers.filter((c) => c.done).length, 10);
  assert.equal(node.maxOpening, 2);
  assert.equal(node.calls, 10);
  assert.equal(new Set(callers.map((c) => c.value)).size, 10);
});

test("when the node refuses and nothing else can serve, waiters fail at once with the factory's error", async () => {
  const { clock, node, pool } = setup({ connectionTimeoutMs: 5000 });
  const events = record(pool, ["connectionFailed", "checkoutFailed"]);
  const refused = new ConnectionRefusedError({
    hostname: "10.0.0.1",
    port: 7000,
  });
  node.refuse = refused;
  node.connectDelayMs = 5;
  const exclusive = watch(pool.getConnection());
  const shared = watch(pool.acquireShared());
  await clock.advance(5);
  assert.equal(clock.now(), 5, "long before the 5 s timeout");
  assert.equal(exclusive.error, refused);
  assert.equal(shared.error, refused);
  assert.equal(pool.stats().waiting, 0);
  assert.equal(node.calls, 1, "one attempt, alone, answers both");
  assert.deepEqual(events.map((e) => e.type), [
    "connectionFailed",
    "checkoutFailed",
    "checkoutFailed",
  ]);
  const failed = events[1].detail as PoolEventDetailMap["checkoutFailed"];
  assert.equal(failed.reason, "connectionError");
  assert.equal(failed.mode, "exclusive");
  assert.equal(failed.durationMs, 5);
  assert.equal(
    (events[0].detail as PoolEventDetailMap["connectionFailed"]).blocked,
    false,
    "a refused connect is transient",
  );
});

test("after a failed open, waiters keep waiting while a lent connection may come back", async () => {
  const { clock, node, pool } = setup({
    maxConnections: 2,
    connectionTimeoutMs: 5000,
  });
  const lent = await pool.getConnection();
  node.refuse = new Error("refused");
  const waiter = watch(pool.getConnection());
  await clock.advance(0);
  assert.equal(node.calls, 2);
  assert.equal(waiter.done, false);
  pool.returnConnection(lent);
  await clock.advance(0);
  assert.equal(waiter.value, lent);
});

test("background refilling backs off exponentially up to 5 s, and a success resets it", async () => {
  const { clock, node, pool } = setup({ minConnections: 1 });
  const events = record(pool, ["connectionFailed"]);
  node.refuse = new Error("refused");
  pool.start();
  await clock.advance(20_000);
  assert.deepEqual(
    node.callTimes,
    [0, 100, 300, 700, 1500, 3100, 6300, 11300, 16300],
  );
  assert.deepEqual(
    events.map((e) =>
      (e.detail as PoolEventDetailMap["connectionFailed"]).backoffMs
    ),
    [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000],
  );
  assert.equal(pool.stats().consecutiveFailures, 9);
  node.refuse = undefined;
  await clock.advance(5000);
  assert.equal(pool.stats().open, 1);
  assert.equal(pool.stats().consecutiveFailures, 0);
  assert.equal(pool.stats().totalFailed, 9);
});

test("a caller with nothing to wait for gets an attempt at once, even during backoff", async () => {
  const { clock, node, pool } = setup({ minConnections: 1 });
  node.refuse = new Error("refused");
  pool.start();
  await clock.advance(50); // failed at 0, next background attempt at 100
  node.refuse = undefined;
  const conn = await pool.getConnection();
  assert.equal(clock.now(), 50);
  assert.equal(conn.id, 1);
  assert.deepEqual(node.callTimes, [0, 50]);
});

// ---------------------------------------------------------- idle and lifetime

test("idle connections above the minimum close after idleTimeoutMs; the minimum stays", async () => {
  const { clock, pool } = setup({
    minConnections: 1,
    maxConnections: 3,
    idleTimeoutMs: 1000,
  });
  const events = record(pool, ["connectionClosed"]);
  const conns = await Promise.all([1, 2, 3].map(() => pool.getConnection()));
  for (const conn of conns) pool.returnConnection(conn);
  await clock.advance(999);
  assert.equal(pool.stats().open, 3);
  await clock.advance(1);
  assert.equal(pool.stats().open, 1);
  assert.deepEqual(closedReasons(events), ["1:idle", "2:idle"]);
  await clock.advance(100_000);
  assert.equal(pool.stats().open, 1);
});

test("a connection is not closed for idleness while requests are in flight on it", async () => {
  const { clock, node, pool } = setup({ idleTimeoutMs: 1000 });
  const conn = await pool.acquireShared();
  conn.inFlight = 1;
  await clock.advance(5000);
  assert.equal(node.conn(1).closeCalls, 0);
  conn.inFlight = 0;
  await clock.advance(5000);
  assert.equal(node.conn(1).closeCalls, 1);
  assert.equal(pool.stats().open, 0);
});

test("idleTimeoutMs 0 never closes idle connections", async () => {
  const { clock, pool } = setup({ idleTimeoutMs: 0, maxLifetimeMs: 0 });
  const conn = await pool.getConnection();
  pool.returnConnection(conn);
  await clock.advance(10_000_000);
  assert.equal(pool.stats().open, 1);
  assert.equal(clock.pendingTimers, 0);
});

test("connections retire after maxLifetimeMs", async () => {
  const { clock, pool } = setup({ maxLifetimeMs: 10_000, idleTimeoutMs: 0 });
  const events = record(pool, ["connectionClosed"]);
  const conn = await pool.getConnection();
  pool.returnConnection(conn);
  await clock.advance(9999);
  assert.equal(pool.stats().open, 1);
  await clock.advance(1);
  assert.equal(pool.stats().open, 0);
  assert.deepEqual(closedReasons(events), ["1:lifetime"]);
});

test("the lifetime jitter stays within ±2%", async () => {
  for (
    const [random, early, late] of [[0, 9799, 9800], [0.99999, 10199, 10200]]
  ) {
    const { clock, pool } = setup(
      { maxLifetimeMs: 10_000, idleTimeoutMs: 0 },
      { random: () => random },
    );
    pool.returnConnection(await pool.getConnection());
    await clock.advance(early);
    assert.equal(pool.stats().open, 1, `random ${random}: open at ${early}`);
    await clock.advance(late - early);
    assert.equal(pool.stats().open, 0, `random ${random}: closed by ${late}`);
  }
});

test("a connection past its lifetime is no longer handed out, and closes only once idle", async () => {
  const { clock, node, pool } = setup({
    minConnections: 1,
    maxLifetimeMs: 10_000,
    idleTimeoutMs: 0,
  });
  const events = record(pool, ["connectionClosed"]);
  pool.start();
  await clock.advance(0);
  const old = node.conn(1);
  old.inFlight = 2;
  await clock.advance(10_000);
  assert.equal(old.closeCalls, 0, "never mid-request");
  assert.equal(pool.stats().open, 2, "replaced to keep the minimum");
  assert.equal((await pool.acquireShared()).id, 2);
  await clock.advance(0); // the shared caller's turn to send on it
  assert.equal((await pool.getConnection()).id, 2);
  old.inFlight = 0;
  await clock.advance(1000);
  assert.equal(old.closeCalls, 1);
  assert.deepEqual(closedReasons(events), ["1:lifetime"]);
});

test("a lent connection past its lifetime closes when it is returned", async () => {
  const { clock, pool } = setup({ maxLifetimeMs: 10_000, idleTimeoutMs: 0 });
  const conn = await pool.getConnection();
  await clock.advance(20_000);
  assert.equal(conn.closeCalls, 0);
  pool.returnConnection(conn);
  assert.equal(conn.closeCalls, 1);
  assert.equal(pool.stats().open, 0);
});

test("the pool keeps one maintenance timer however many connections it holds, and close() stops it", async () => {
  const { clock, pool } = setup({
    minConnections: 2,
    maxConnections: 10,
    idleTimeoutMs: 1000,
    maxLifetimeMs: 60_000,
  });
  const conns = await Promise.all(
    Array.from({ length: 10 }, () => pool.getConnection()),
  );
  for (const conn of conns) pool.returnConnection(conn);
  assert.equal(clock.pendingTimers, 1);
  await clock.advance(1000);
  assert.equal(pool.stats().open, 2);
  assert.equal(clock.pendingTimers, 1, "the lifetime of the last two");
  await pool.close();
  assert.equal(clock.pendingTimers, 0);
});

// ---------------------------------------------------------- broken connections

test("a connection that breaks while idle is evicted, reported with its error, and replaced", async () => {
  const { clock, node, pool } = setup({ minConnections: 2 });
  const events = record(pool, ["connectionClosed"]);
  pool.start();
  await clock.advance(YOUNG_DEATH_MS);
  const error = new Error("reset");
  node.conn(1).break(error);
  await clock.advance(0);
  const closed = events[0].detail as PoolEventDetailMap["connectionClosed"];
  assert.equal(closed.reason, "error");
  assert.equal(closed.error, error);
  assert.equal(closed.connectionId, 1);
  assert.equal(pool.stats().open, 2);
  for (let i = 0; i < 5; i++) {
    assert.notEqual((await pool.acquireShared()).id, 1);
  }
});

test("a connection whose isOpen turned false is never handed out", async () => {
  const { clock, node, pool } = setup({ minConnections: 2 });
  pool.start();
  await clock.advance(0);
  node.conn(1).isOpen = false; // closing; `closed` has not settled yet
  assert.equal((await pool.acquireShared()).id, 2);
  await clock.advance(0); // the shared caller's turn to send on it
  assert.equal((await pool.getConnection()).id, 2);
  await clock.advance(0);
  assert.equal(pool.stats().open, 2, "replaced");
  assert.deepEqual(node.connections.map((c) => c.id), [1, 2, 3]);
  assert.equal(node.conn(1).closeCalls, 0, "it was closing on its own");
});

test("a connection that broke while lent is discarded when returned, never lent again", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const conn = await pool.getConnection();
  conn.break();
  await clock.advance(0);
  assert.equal(pool.stats().open, 0);
  pool.returnConnection(conn); // not misuse
  const next = await pool.getConnection();
  assert.notEqual(next, conn);
  assert.equal(next.id, 2);
  assert.throws(
    () => pool.returnConnection(conn),
    (e: unknown) =>
      e instanceof PoolMisuseError && e.code === "POOL_MISUSE" &&
      /connection 1 was returned to the pool for 10\.0\.0\.1:7000 but is not checked out/
        .test(e.message),
  );
  assert.deepEqual(
    { open: pool.stats().open, inUse: pool.stats().inUse },
    { open: 1, inUse: 1 },
  );
});

test("a connection returned while closing on its own is dropped at once", async () => {
  const { pool } = setup();
  const events = record(pool, ["connectionClosed"]);
  const conn = await pool.getConnection();
  conn.isOpen = false; // closing; `closed` has not settled yet
  pool.returnConnection(conn);
  assert.equal(pool.stats().open, 0);
  assert.deepEqual(closedReasons(events), ["1:error"]);
  assert.equal(conn.closeCalls, 0, "it closes itself");
});

test("connection ids handed out increase monotonically through churn", async () => {
  const { clock, node, pool } = setup({
    minConnections: 1,
    maxConnections: 3,
    idleTimeoutMs: 100,
    maxLifetimeMs: 1000,
  });
  const ready: number[] = [];
  pool.addEventListener(
    "connectionReady",
    (e) => ready.push(e.detail.connectionId),
  );
  pool.start();
  for (let round = 0; round < 20; round++) {
    const conns = await Promise.all([1, 2].map(() => pool.getConnection()));
    if (round % 3 === 0) conns[0].break();
    for (const conn of conns) pool.returnConnection(conn);
    await clock.advance(150);
  }
  assert.ok(ready.length > 10);
  for (let i = 1; i < ready.length; i++) assert.ok(ready[i] > ready[i - 1]);
  const stats = pool.stats();
  assert.equal(stats.totalCreated, node.calls);
  assert.equal(stats.totalCreated - stats.totalClosed, stats.open);
});

// ------------------------------------------------------------ clear and close

test("clear() fails waiters with a retryable PoolClosedError and closes lent connections once returned", async () => {
  const { clock, node, pool } = setup({ maxConnections: 2 });
  const events = record(pool, ["connectionClosed", "poolCleared"]);
  const a = await pool.getConnection();
  const b = await pool.getConnection();
  const exclusive = watch(pool.getConnection());
  const shared = watch(pool.acquireShared());
  await clock.advance(0);
  const cause = new Error("3 health checks failed");
  pool.clear(cause);
  await clock.advance(0);
  for (const waiter of [exclusive, shared]) {
    assert.ok(waiter.error instanceof PoolClosedError);
    assert.equal(waiter.error.code, "POOL_CLEARED");
    assert.equal(waiter.error.retryable, true);
    assert.equal(waiter.error.cause, cause);
  }
  assert.equal(a.closeCalls, 0, "still lent");
  pool.returnConnection(a);
  assert.equal(a.closeCalls, 1);
  pool.returnConnection(b);
  assert.equal(b.closeCalls, 1);
  assert.deepEqual(closedReasons(events), ["1:stale", "2:stale"]);
  const cleared = events.filter((e) => e.type === "poolCleared");
  assert.equal(cleared.length, 1);
  assert.equal(
    (cleared[0].detail as PoolEventDetailMap["poolCleared"]).reason,
    cause,
  );
  const fresh = await pool.getConnection();
  assert.equal(fresh.id, 3, "the pool stays usable, with new connections");
  assert.equal(node.calls, 3);
});

test("clear() closes an idle connection at once and a busy one once its requests finish", async () => {
  const { clock, node, pool } = setup({ minConnections: 2 });
  pool.start();
  await clock.advance(0);
  node.conn(2).inFlight = 1;
  pool.clear();
  assert.equal(node.conn(1).closeCalls, 1);
  assert.equal(node.conn(2).closeCalls, 0);
  assert.equal(pool.stats().idle, 0, "stale: not handed out");
  node.conn(2).inFlight = 0;
  await clock.advance(1000);
  assert.equal(node.conn(2).closeCalls, 1);
  await clock.advance(60_000);
  assert.equal(
    node.calls,
    2,
    "no background refill until the pool is used again",
  );
  pool.start();
  await clock.advance(0);
  assert.equal(pool.stats().open, 2);
  assert.equal((await pool.acquireShared()).id, 3);
});

test("clear() aborts opens in progress and does not count them as failures", async () => {
  const { clock, node, pool } = setup();
  node.connectDelayMs = Infinity;
  const waiter = watch(pool.getConnection());
  await clock.advance(0);
  assert.equal(node.opening, 1);
  pool.clear();
  await clock.advance(0);
  assert.equal(node.aborted, 1);
  assert.ok(waiter.error instanceof PoolClosedError);
  assert.equal(pool.stats().connecting, 0);
  assert.equal(pool.stats().totalFailed, 0);
});

test("close() refuses new requests, fails waiters, and resolves once every connection closed gracefully, lent ones once returned", async () => {
  const { clock, node, pool } = setup({ maxConnections: 4 });
  node.closeDelayMs = 50;
  const lent = await pool.getConnection();
  const busy = await pool.acquireShared();
  busy.inFlight = 3;
  const other = await pool.getConnection();
  node.connectDelayMs = Infinity;
  const waiter = watch(pool.getConnection());
  await clock.advance(0);
  const closing = watch(pool.close());
  await clock.advance(0);
  assert.ok(waiter.error instanceof PoolClosedError);
  assert.equal(waiter.error.code, "POOL_CLOSED");
  assert.equal(waiter.error.retryable, false);
  assert.equal(closing.done, false, "waits for the graceful closes");
  assert.deepEqual(
    node.connections.map((c) => c.closeCalls),
    [0, 1, 0],
    "the lent ones stay with their holders",
  );
  await clock.advance(50);
  assert.equal(closing.done, false, "waits for the lent ones");
  assert.equal(pool.stats().open, 2);
  await assert.rejects(
    pool.getConnection(),
    (e: unknown) =>
      e instanceof PoolClosedError && e.code === "POOL_CLOSED" &&
      /the pool for 10\.0\.0\.1:7000 was closed/.test(e.message),
  );
  await assert.rejects(
    pool.acquireShared(),
    (e: unknown) =>
      e instanceof PoolClosedError && e.code === "POOL_CLOSED" &&
      /the pool for 10\.0\.0\.1:7000 was closed/.test(e.message),
  );
  assert.equal(pool.tryAcquireShared(), undefined);
  assert.throws(
    () => pool.start(),
    (e: unknown) =>
      e instanceof PoolClosedError && e.code === "POOL_CLOSED" &&
      /the pool for 10\.0\.0\.1:7000 was closed/.test(e.message),
  );
  pool.returnConnection(lent); // accepted after close, and closed
  assert.equal(lent.closeCalls, 1);
  pool.returnConnection(other);
  await clock.advance(50);
  assert.equal(closing.done, true);
  assert.equal(pool.stats().open, 0);
  assert.equal(clock.pendingTimers, 0);
});

test("close() is idempotent", async () => {
  const { clock, node, pool } = setup({ minConnections: 2 });
  const events = record(pool, ["poolClosed"]);
  pool.start();
  await clock.advance(0);
  const first = pool.close();
  const second = pool.close();
  assert.equal(first, second);
  await first;
  await pool.close();
  assert.deepEqual(node.connections.map((c) => c.closeCalls), [1, 1]);
  assert.equal(events.length, 1);
});

test("close() aborts opens in progress and closes what a factory delivers anyway, before poolClosed when it comes within the grace", async () => {
  const { clock, node, pool } = setup({ minConnections: 1 });
  const events = record(pool, [
    "connectionCreated",
    "connectionClosed",
    "poolClosed",
  ]);
  node.connectDelayMs = 100;
  node.ignoreAbort = true;
  pool.start();
  await clock.advance(0);
  const closing = watch(pool.close());
  await clock.advance(99);
  assert.equal(closing.done, false);
  await clock.advance(1);
  assert.equal(closing.done, true);
  assert.equal(node.conn(1).closeCalls, 1);
  assert.deepEqual(closedReasons(events), ["1:poolClosed"]);
  assert.deepEqual(events.map((e) => e.type), [
    "connectionCreated",
    "connectionClosed",
    "poolClosed",
  ]);
});

// ------------------------------------------------------------------- events

test("events trace a pool's life in order", async () => {
  const { clock, pool } = setup({ minConnections: 1 });
  const events = record(pool);
  pool.start();
  await clock.advance(0);
  const conn = await pool.getConnection();
  pool.returnConnection(conn);
  await pool.acquireShared();
  await pool.close();
  assert.deepEqual(events.map((e) => e.type), [
    "poolCreated",
    "connectionCreated",
    "connectionReady",
    "poolReady",
    "checkoutStarted",
    "checkedOut",
    "checkedIn",
    "checkoutStarted",
    "checkedOut",
    "connectionClosed",
    "poolClosed",
  ]);
  for (const event of events) assert.equal(event.detail.address, ADDRESS);
  const out = events[5].detail as PoolEventDetailMap["checkedOut"];
  assert.deepEqual(out, {
    address: ADDRESS,
    mode: "exclusive",
    connectionId: 1,
    durationMs: 0,
  });
  assert.equal(
    (events[8].detail as PoolEventDetailMap["checkedOut"]).mode,
    "shared",
  );
  assert.equal(
    (events[9].detail as PoolEventDetailMap["connectionClosed"]).reason,
    "poolClosed",
  );
});

test("checkoutFailed says why: timeout, aborted, connectionError, poolClosed", async () => {
  const { clock, node, pool } = setup({
    maxConnections: 1,
    connectionTimeoutMs: 10,
  });
  const events = record(pool, ["checkoutFailed"]);
  const conn = await pool.getConnection();
  const timedOut = watch(pool.getConnection());
  await clock.advance(10);
  const aborted = watch(pool.acquireShared({ signal: AbortSignal.abort() }));
  pool.returnConnection(conn);
  conn.break();
  node.refuse = new Error("refused");
  await clock.advance(0);
  const refused = watch(pool.getConnection());
  await clock.advance(0);
  await pool.close();
  const closed = watch(pool.getConnection());
  await clock.advance(0);
  assert.ok(timedOut.error && aborted.error && refused.error && closed.error);
  assert.deepEqual(
    events.map((e) => {
      const d = e.detail as PoolEventDetailMap["checkoutFailed"];
      return `${d.mode}:${d.reason}`;
    }),
    [
      "exclusive:timeout",
      "shared:aborted",
      "exclusive:connectionError",
      "exclusive:poolClosed",
    ],
  );
});

test("no event is built when nobody listens, and removing a listener stops it", async () => {
  const { clock, pool } = setup({ minConnections: 1 });
  let dispatched = 0;
  const dispatch = pool.dispatchEvent.bind(pool);
  pool.dispatchEvent = (event) => {
    dispatched++;
    return dispatch(event);
  };
  pool.start();
  await clock.advance(0);
  pool.returnConnection(await pool.getConnection());
  await pool.acquireShared();
  assert.equal(dispatched, 0);

  const seen: string[] = [];
  const listener = (event: PoolEvent<"checkedOut">) =>
    seen.push(event.detail.mode);
  pool.addEventListener("checkedOut", listener);
  pool.addEventListener("checkedOut", listener, { capture: true });
  await pool.acquireShared();
  assert.equal(dispatched, 1, "only the event someone listens to");
  pool.removeEventListener("checkedOut", listener);
  await pool.acquireShared();
  assert.equal(dispatched, 2, "still registered with capture");
  pool.removeEventListener("checkedOut", listener, { capture: true });
  await pool.acquireShared();
  assert.equal(dispatched, 2);
  assert.deepEqual(seen, ["shared", "shared", "shared"]);

  const controller = new AbortController();
  pool.addEventListener("checkedOut", () => {}, { signal: controller.signal });
  await pool.acquireShared();
  assert.equal(dispatched, 3);
  controller.abort();
  await pool.acquireShared();
  assert.equal(dispatched, 3, "a listener removed by its signal is forgotten");
});

// -------------------------------------------------------------------- stats

test("stats() is a plain snapshot of the pool's counts", async () => {
  const { clock, node, pool } = setup({
    minConnections: 3,
    maxConnections: 4,
    multiplexThreshold: 1,
  });
  pool.start();
  await clock.advance(0);
  const lent = await pool.getConnection();
  node.conn(2).inFlight = 4;
  node.connectDelayMs = 10;
  node.conn(3).inFlight = 1;
  await pool.acquireShared(); // every usable one busy: one more opens
  const stats = pool.stats();
  assert.deepEqual(stats, {
    address: ADDRESS,
    open: 3,
    idle: 0,
    inUse: 1,
    inFlight: 5,
    waiting: 0,
    connecting: 1,
    totalCreated: 3,
    totalClosed: 0,
    totalFailed: 0,
    consecutiveFailures: 0,
    blocked: false,
    closed: false,
  });
  assert.equal(lent.id, 1);
  stats.open = 99;
  assert.equal(pool.stats().open, 3, "a copy, not a view");
});

test("connections() lists every connection held, lent or not, and after close only the lent ones, until returned", async () => {
  const { clock, node, pool } = setup({ minConnections: 2, maxConnections: 3 });
  pool.start();
  await clock.advance(0);
  const lent = await pool.getConnection();
  node.conn(2).inFlight = 1;
  await pool.getConnection(); // opens the third
  node.conn(2).inFlight = 0;
  assert.deepEqual(pool.connections().map((c) => c.id), [1, 2, 3]);
  assert.ok(pool.connections().includes(lent));
  node.conn(2).break();
  await clock.advance(0);
  assert.deepEqual(pool.connections().map((c) => c.id), [1, 3]);
  const closing = pool.close();
  assert.deepEqual(pool.connections().map((c) => c.id), [1, 3]);
  pool.returnConnection(lent);
  pool.returnConnection(node.conn(3));
  await closing;
  assert.deepEqual(pool.connections(), []);
});
