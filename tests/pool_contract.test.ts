// The pool's contract where it meets CMAP and the caller's deadlines: event
// order and payloads, close() and lent connections, the idle and lifetime
// limits at checkout, the per-call timeoutMs, and opening after a failure
// that retrying cannot fix (rejected credentials). On a virtual clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  AuthenticationError,
  ConnectionRefusedError,
  PoolTimeoutError,
} from "../src/errors.ts";
import type { PoolEventDetailMap } from "../src/pool/events.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import {
  ADDRESS,
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

/**
 * A connection whose close() waits for its requests in flight, as the
 * client's does: only destroy() ends it while one is out.
 */
class Draining extends FakeConnection {
  override close(): Promise<void> {
    this.closeCalls++;
    this.isOpen = false;
    return this.closed.then(() => {});
  }
}

test("a closing pool lists the connection it waits for with a request in flight: destroying it (as disconnect does after its grace) ends close() at once", async () => {
  const clock = new VirtualClock();
  const pool = new ConnectionPool<Draining>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1 },
    clock,
    random: () => 0.5,
    factory: () => Promise.resolve(new Draining()),
  });
  const conn = await pool.acquireShared();
  conn.inFlight = 1; // its node never answers
  const closing = watch(pool.close());
  await clock.advance(10_000);
  assert.equal(closing.done, false, "waits for the request");
  // Before: [], so a disconnect's destroy after its grace missed it and
  // waited on the request.
  assert.deepEqual(pool.connections(), [conn], "still listed, to destroy");
  for (const each of pool.connections()) {
    each.destroy(new Error("shutting down"));
  }
  await clock.advance(0);
  assert.equal(closing.done, true);
  assert.equal(conn.closeCalls, 1);
  assert.deepEqual(pool.connections(), []);
  assert.equal(clock.pendingTimers, 0);
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

test("a saturated connection past maxLifetimeMs is retired at shared checkout too, the next least loaded taking over", async () => {
  let late!: LateClock;
  const { clock, pool } = setup(
    { minConnections: 2, maxLifetimeMs: 10_000, multiplexThreshold: 2 },
    { poolClock: (inner) => (late = new LateClock(inner)) },
  );
  pool.start();
  await clock.advance(0);
  const [a, b] = pool.connections();
  a.inFlight = 3;
  b.inFlight = 5;
  assert.equal(pool.tryAcquireShared(), a, "both at the threshold: the fewer");
  late.lag = 10_500; // both past their lifetime (±2%); no timer fired yet
  await clock.advance(0);
  const next = pool.tryAcquireShared();
  assert.ok(next !== a && next !== b, "neither is handed out again");
  assert.equal(a.closeCalls + b.closeCalls, 0, "their requests finish first");
});

test("shared checkout with connections closed, lent, saturated or past their lifetime anywhere in the list picks what a plain two-pass search picks, and retires what it passes over", async () => {
  // Lifetimes 9,800, 10,000 and 10,200 ms (the pool's ±2% jitter at its
  // ends and middle), so a late clock finds some past and some not.
  const jitters = [0, 0.5, 0.999_999];
  const lifetimeOf = (j: number) => 10_000 * (1 + (j * 2 - 1) * 0.02);
  const connArb = fc.record({
    load: fc.integer({ min: 0, max: 5 }),
    open: fc.oneof(
      { weight: 3, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
    lent: fc.boolean(),
    jitter: fc.constantFrom(...jitters),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(connArb, { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom(0, 9_900, 10_100, 10_300),
      async (specs, threshold, lag) => {
        let late!: LateClock;
        let draw = 0;
        const n = specs.length;
        const { clock, pool } = setup(
          {
            minConnections: n,
            maxConnections: n,
            maxLifetimeMs: 10_000,
            multiplexThreshold: threshold,
          },
          {
            poolClock: (inner) => (late = new LateClock(inner)),
            random: () => specs[draw++ % n].jitter,
          },
        );
        pool.start();
        await clock.advance(0);
        const conns = pool.connections();
        assert.equal(conns.length, n);
        // Lend them all, then give back those not meant to stay lent.
        const lent = [];
        for (let i = 0; i < n; i++) lent.push(await pool.getConnection());
        for (const conn of lent) {
          if (!specs[conns.indexOf(conn)].lent) pool.returnConnection(conn);
        }
        specs.forEach((spec, i) => {
          conns[i].inFlight = spec.load;
          conns[i].isOpen = spec.open;
        });
        late.lag = lag;
        await clock.advance(0); // a new tick: the pool reads its clock again
        // The model: usable ones in age order; the first under the
        // threshold and within its lifetime, else the least loaded (oldest
        // on ties) within its lifetime.
        const past = (i: number) => lag >= lifetimeOf(specs[i].jitter);
        const usable = specs.map((_, i) => i).filter((i) =>
          specs[i].open && !specs[i].lent
        );
        const below = usable.filter((i) => specs[i].load < threshold);
        const saturated = usable.filter((i) => specs[i].load >= threshold)
          .sort((a, b) => specs[a].load - specs[b].load || a - b);
        const firstBelow = below.find((i) => !past(i));
        const expected = firstBelow ??
          (below.every(past) ? saturated.find((i) => !past(i)) : undefined);
        const got = pool.tryAcquireShared();
        assert.equal(
          got === undefined ? undefined : conns.indexOf(got),
          expected,
        );
        // Whatever it passed over as past its lifetime stays retired: the
        // next pick picks the same (unless that one was retired too).
        const again = pool.tryAcquireShared();
        if (expected !== undefined) assert.equal(again, got);
        // The ones marked closed finish closing, as a real one does.
        conns.forEach((conn, i) => {
          conn.inFlight = 0;
          if (!specs[i].open) conn.destroy();
        });
        const closed = pool.close();
        conns.forEach((conn, i) => {
          if (specs[i].lent) pool.returnConnection(conn);
        });
        await clock.advance(0);
        await closed;
      },
    ),
    { numRuns: 150 },
  );
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

// ------------------------------------------------ failures retrying can't fix

function authFailure(): AuthenticationError {
  return new AuthenticationError(`authentication as "alice" failed`, {
    reason: "rejected",
    address: "10.0.0.1:7000",
  });
}

test("rejected credentials are tried once, not maxConnecting times: the first open goes alone", async () => {
  const { clock, node, pool } = setup({
    minConnections: 3,
    maxConnections: 10,
    maxConnecting: 5,
  });
  const events = record(pool, ["connectionFailed", "checkoutFailed"]);
  const rejected = authFailure();
  node.refuse = rejected;
  node.connectDelayMs = 5;
  const callers = [
    watch(pool.acquireShared()),
    watch(pool.getConnection()),
    watch(pool.getConnection()),
  ];
  await clock.advance(5);
  assert.equal(node.calls, 1);
  for (const caller of callers) assert.equal(caller.error, rejected);
  const failed = events[0].detail as Detail<"connectionFailed">;
  assert.equal(failed.blocked, true);
  assert.equal(failed.backoffMs, 100);
  assert.equal(pool.stats().blocked, true);
  assert.deepEqual(
    events.slice(1).map((e) => (e.detail as Detail<"checkoutFailed">).reason),
    ["connectionError", "connectionError", "connectionError"],
  );
});

test("after rejected credentials nothing is opened until the backoff ends, then one attempt; callers in between fail at once with the error", async () => {
  const { clock, node, pool } = setup({
    minConnections: 3,
    maxConnections: 10,
    maxConnecting: 5,
  });
  const rejected = authFailure();
  node.refuse = rejected;
  pool.start();
  // A health check every 50 ms, which asks to ignore the backoff.
  const probes: ReturnType<typeof watch>[] = [];
  for (let t = 0; t < 20_000; t += 50) {
    probes.push(
      watch(pool.acquireShared({ ignoreBackoff: true, timeoutMs: 1000 })),
    );
    await clock.advance(50);
  }
  assert.deepEqual(
    node.callTimes,
    [0, 100, 300, 700, 1500, 3100, 6300, 11300, 16300],
    "one attempt per backoff, none in between",
  );
  assert.equal(pool.stats().consecutiveFailures, 9);
  for (const probe of probes) {
    assert.equal(probe.done, true);
    assert.equal(probe.error, rejected, "at once, not as a timeout");
  }
  // Nobody asks: no attempt, though the backoff is over, since refilling
  // in the background would only fail the same way.
  await clock.advance(30_000);
  assert.equal(node.calls, 9);
  assert.equal(pool.stats().blocked, true);
  // The node takes the credentials again: the next caller's one attempt
  // succeeds, and then the pool fans out to its minimum.
  node.refuse = undefined;
  node.connectDelayMs = 10;
  const caller = watch(pool.acquireShared());
  await clock.advance(0);
  assert.equal(node.opening, 1);
  await clock.advance(10);
  assert.ok(caller.value);
  assert.equal(pool.stats().blocked, false);
  assert.equal(node.opening, 2);
  await clock.advance(10);
  assert.equal(pool.stats().open, 3);
});

test("a transient failure does not block: a caller with nothing to wait for still gets its attempt", async () => {
  const { clock, node, pool } = setup({ minConnections: 1 });
  const events = record(pool, ["connectionFailed"]);
  node.refuse = new ConnectionRefusedError({
    hostname: "10.0.0.1",
    port: 7000,
  });
  pool.start();
  await clock.advance(50);
  assert.equal(
    (events[0].detail as Detail<"connectionFailed">).blocked,
    false,
  );
  assert.equal(pool.stats().blocked, false);
  node.refuse = undefined;
  const conn = await pool.acquireShared({ ignoreBackoff: true });
  assert.deepEqual(node.callTimes, [0, 50]);
  assert.equal(conn.id, 1);
});

test("while blocked, connections already held keep serving; only opening stops", async () => {
  const { clock, node, pool } = setup({ minConnections: 1, maxConnections: 2 });
  const held = await pool.getConnection();
  node.refuse = authFailure();
  const waiter = watch(pool.getConnection({ timeoutMs: 3000 }));
  await clock.advance(0);
  assert.equal(node.calls, 2);
  assert.equal(pool.stats().blocked, true);
  assert.equal(waiter.done, false, "a lent connection may come back");
  await clock.advance(99);
  assert.equal(node.calls, 2, "no attempt while blocked");
  await clock.advance(1);
  assert.equal(node.calls, 3, "one when the backoff ends");
  assert.equal(waiter.done, false);
  pool.returnConnection(held);
  await clock.advance(0);
  assert.equal(waiter.value, held);
});
