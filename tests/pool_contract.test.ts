// The pool's contract where it meets CMAP and the caller's deadlines: event
// order and payloads, close() and lent connections, the idle and lifetime
// limits at checkout, the per-call timeoutMs. On a virtual clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PoolTimeoutError } from "../src/errors.ts";
import type { PoolEventDetailMap } from "../src/pool/events.ts";
import {
  closedReasons,
  LateClock,
  record,
  setup,
  watch,
} from "./support/pool_scene.ts";

type Detail<K extends keyof PoolEventDetailMap> = PoolEventDetailMap[K];

// ------------------------------------------------------------------ events

test("checkoutFailed carries durationMs, as checkedOut does: how long the caller waited", async () => {
  const { clock, pool } = setup({
    maxConnections: 1,
    connectionTimeoutMs: 250,
  });
  const events = record(pool, ["checkoutFailed"]);
  await pool.getConnection();
  const timedOut = watch(pool.getConnection());
  await clock.advance(40);
  const controller = new AbortController();
  const aborted = watch(pool.acquireShared({ signal: controller.signal }));
  await clock.advance(60);
  controller.abort();
  await clock.advance(150);
  const refused = watch(pool.getConnection({ signal: AbortSignal.abort() }));
  await clock.advance(0);
  assert.ok(timedOut.error && aborted.error && refused.error);
  assert.deepEqual(
    events.map((e) => {
      const d = e.detail as Detail<"checkoutFailed">;
      return `${d.reason}:${d.durationMs}`;
    }),
    ["aborted:60", "timeout:250", "aborted:0"],
  );
});

test("clear() dispatches poolCleared first, before its stale connections close and its waiters fail", async () => {
  const { clock, node, pool } = setup({ minConnections: 2, maxConnections: 3 });
  const events = record(pool, [
    "poolCleared",
    "connectionClosed",
    "checkoutFailed",
  ]);
  pool.start();
  await clock.advance(0);
  pool.clear(new Error("3 health checks failed"));
  assert.deepEqual(
    events.map((e) => e.type),
    ["poolCleared", "connectionClosed", "connectionClosed"],
  );
  assert.deepEqual(closedReasons(events), ["1:stale", "2:stale"]);

  // A waiter: every connection lent, the next open hangs.
  events.length = 0;
  const lent = await Promise.all([pool.getConnection(), pool.getConnection()]);
  await clock.advance(0);
  node.connectDelayMs = Infinity;
  const waiter = watch(pool.getConnection());
  await clock.advance(0);
  pool.clear(new Error("again"));
  await clock.advance(0);
  assert.ok(waiter.error);
  assert.deepEqual(
    events.filter((e) => e.type !== "connectionClosed").map((e) => e.type),
    ["poolCleared", "checkoutFailed"],
  );
  for (const conn of lent) pool.returnConnection(conn);
});

// ------------------------------------------------------- close() and lending

test("close() leaves a connection lent exclusively with its holder, closes it when returned, and resolves then", async () => {
  const { clock, node, pool } = setup({ minConnections: 2 });
  const events = record(pool, ["connectionClosed", "checkedIn", "poolClosed"]);
  pool.start();
  await clock.advance(0);
  const held = await pool.getConnection();
  const closing = watch(pool.close());
  await clock.advance(0);
  assert.equal(node.conn(2).closeCalls, 1, "the idle one closes at once");
  assert.equal(held.closeCalls, 0, "the lent one is still in use");
  assert.equal(held.isOpen, true);
  assert.equal(pool.stats().open, 1);
  assert.equal(pool.stats().inUse, 1);
  await clock.advance(60_000);
  assert.equal(closing.done, false, "however long the holder takes");
  assert.equal(held.closeCalls, 0);
  pool.returnConnection(held);
  assert.equal(held.closeCalls, 1, "closed as it comes back");
  await clock.advance(0);
  assert.equal(closing.done, true);
  assert.equal(pool.stats().open, 0);
  assert.deepEqual(
    events.map((e) => {
      const d = e.detail as Partial<Detail<"connectionClosed">>;
      return d.connectionId === undefined
        ? e.type
        : `${e.type} ${d.connectionId}${d.reason ? `:${d.reason}` : ""}`;
    }),
    [
      "connectionClosed 2:poolClosed",
      "checkedIn 1",
      "connectionClosed 1:poolClosed",
      "poolClosed",
    ],
  );
  assert.equal(clock.pendingTimers, 0);
});

test("a holder that never returns cannot hold close() forever: destroying its connection (as disconnect does after its grace) ends it", async () => {
  const { clock, pool } = setup({ minConnections: 1 });
  const held = await pool.getConnection();
  const closing = watch(pool.close());
  await clock.advance(10_000);
  assert.equal(closing.done, false);
  assert.deepEqual(pool.connections(), [held], "still listed, to destroy");
  for (const conn of pool.connections()) {
    conn.destroy(new Error("shutting down"));
  }
  await clock.advance(0);
  assert.equal(closing.done, true);
  assert.equal(held.closeCalls, 0);
  assert.equal(pool.stats().open, 0);
  pool.returnConnection(held); // the holder's late return is still accepted
});

// ------------------------------------------- idle and lifetime at checkout

test("a connection idle past idleTimeoutMs is retired at shared checkout, even before the pool's timer fired", async () => {
  let late!: LateClock;
  const { clock, pool } = setup(
    { minConnections: 0, idleTimeoutMs: 1000, maxLifetimeMs: 0 },
    { poolClock: (inner) => (late = new LateClock(inner)) },
  );
  const events = record(pool, ["connectionClosed"]);
  const first = await pool.acquireShared();
  late.lag = 1000; // time passed; the timer, due at 1000, has not fired
  await clock.advance(0);
  assert.equal(pool.tryAcquireShared(), undefined, "never lent again");
  assert.equal(first.closeCalls, 1);
  assert.deepEqual(closedReasons(events), [`${first.id}:idle`]);
  const fresh = await pool.acquireShared();
  assert.notEqual(fresh, first);
});

test("a connection idle past idleTimeoutMs is retired at exclusive checkout, even before the pool's timer fired", async () => {
  let late!: LateClock;
  const { clock, pool } = setup(
    { minConnections: 0, idleTimeoutMs: 1000, maxLifetimeMs: 0 },
    { poolClock: (inner) => (late = new LateClock(inner)) },
  );
  const events = record(pool, ["connectionClosed"]);
  const first = await pool.getConnection();
  pool.returnConnection(first);
  late.lag = 999;
  await clock.advance(0);
  const again = await pool.getConnection();
  assert.equal(again, first, "still within its idle timeout");
  pool.returnConnection(again);
  late.lag = 999 + 1000;
  await clock.advance(0);
  const fresh = await pool.getConnection();
  assert.notEqual(fresh, first);
  assert.equal(first.closeCalls, 1);
  assert.deepEqual(closedReasons(events), [`${first.id}:idle`]);
});

test("the idle limit at checkout spares the minimum, as the timer does", async () => {
  let late!: LateClock;
  const { clock, pool } = setup(
    { minConnections: 1, idleTimeoutMs: 1000 },
    { poolClock: (inner) => (late = new LateClock(inner)) },
  );
  const first = await pool.acquireShared();
  late.lag = 5000;
  await clock.advance(0);
  assert.equal(pool.tryAcquireShared(), first);
  assert.equal(await pool.getConnection(), first);
});

test("a connection past maxLifetimeMs is retired at shared checkout, even before the pool's timer fired, and closes once idle", async () => {
  let late!: LateClock;
  const { clock, pool } = setup(
    { minConnections: 0, maxLifetimeMs: 10_000 },
    { poolClock: (inner) => (late = new LateClock(inner)) },
  );
  const events = record(pool, ["connectionClosed"]);
  const first = await pool.acquireShared();
  first.inFlight = 1;
  late.lag = 10_000;
  await clock.advance(0);
  const shared = await pool.acquireShared();
  assert.notEqual(shared, first, "retired, not handed out");
  assert.equal(pool.tryAcquireShared(), shared);
  assert.equal(first.closeCalls, 0, "its request finishes first");
  first.inFlight = 0;
  await clock.advance(10_000); // the late timer fires at last
  assert.equal(first.closeCalls, 1);
  assert.equal(closedReasons(events)[0], `${first.id}:lifetime`);
});

test("a connection past maxLifetimeMs is retired at exclusive checkout and on return, even before the pool's timer fired", async () => {
  let late!: LateClock;
  const { clock, pool } = setup(
    { minConnections: 0, maxLifetimeMs: 10_000 },
    { poolClock: (inner) => (late = new LateClock(inner)) },
  );
  const events = record(pool, ["connectionClosed"]);
  const first = await pool.getConnection();
  const second = await pool.getConnection();
  pool.returnConnection(first);
  late.lag = 10_000;
  await clock.advance(0);
  const waiter = watch(pool.getConnection());
  await clock.advance(0);
  assert.ok(waiter.value !== undefined && waiter.value !== first);
  assert.notEqual(waiter.value, second);
  assert.equal(first.closeCalls, 1);
  // Lent past its lifetime, returned while a caller waits: closed, not lent.
  const next = watch(pool.getConnection());
  await clock.advance(0);
  pool.returnConnection(second);
  assert.equal(second.closeCalls, 1);
  assert.notEqual(next.value, second);
  await clock.advance(0);
  assert.ok(next.value !== undefined && next.value !== second);
  assert.deepEqual(closedReasons(events), [
    `${first.id}:lifetime`,
    `${second.id}:lifetime`,
  ]);
});

// -------------------------------------------------------- per-call timeoutMs

test("a per-call timeoutMs bounds the wait exactly, shorter or longer than connectionTimeoutMs, and the error names it", async () => {
  const { clock, pool } = setup({
    maxConnections: 1,
    connectionTimeoutMs: 5000,
  });
  const events = record(pool, ["checkoutFailed"]);
  await pool.getConnection();
  const short = watch(pool.acquireShared({ timeoutMs: 30 }));
  const long = watch(pool.getConnection({ timeoutMs: 20_000 }));
  const plain = watch(pool.getConnection());
  await clock.advance(29);
  assert.equal(short.done, false);
  await clock.advance(1);
  assert.ok(short.error instanceof PoolTimeoutError);
  assert.equal(short.error.timeoutMs, 30);
  assert.equal(short.error.limit, "timeoutMs");
  assert.match(short.error.message, /within 30 ms \(the call's timeoutMs;/);
  await clock.advance(5000 - 30);
  assert.ok(plain.error instanceof PoolTimeoutError);
  assert.equal(plain.error.limit, "connectionTimeoutMs");
  assert.match(plain.error.message, /within 5000 ms \(connectionTimeoutMs;/);
  await clock.advance(20_000 - 5000 - 1);
  assert.equal(long.done, false, "a longer limit is honoured too");
  await clock.advance(1);
  assert.ok(long.error instanceof PoolTimeoutError);
  assert.equal(long.error.timeoutMs, 20_000);
  assert.deepEqual(
    events.map((e) => (e.detail as Detail<"checkoutFailed">).durationMs),
    [30, 5000, 20_000],
  );
});
