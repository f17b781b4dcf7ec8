// Two edges of ConnectionPool a production pool must hold: a factory call
// that never settles must not wedge the pool (it is given up after the
// create timeout, like tarn's createTimeoutMillis), and a bad acquire
// `timeoutMs` is the caller's argument, refused with InvalidArgumentError
// like every other bad acquire option. Virtual clock throughout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Client } from "../src/client/client.ts";
import { parseHost } from "../src/config/hosts.ts";
import {
  ConnectTimeoutError,
  InvalidArgumentError,
  PoolTimeoutError,
} from "../src/errors.ts";
import type { PoolEventDetailMap } from "../src/pool/events.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import {
  ADDRESS,
  FakeNode,
  type NodeConnection,
  setup,
  watch,
} from "./support/pool_scene.ts";

type Failed = PoolEventDetailMap["connectionFailed"];
type Closed = PoolEventDetailMap["connectionClosed"];

/**
 * A pool whose factory's first call never settles, whatever its signal
 * does (a connect stuck in a runtime that cannot cancel it), and whose
 * later calls deliver at once. `deliverLate` resolves the first call.
 */
function wedgeOnce(config: Record<string, number>) {
  const clock = new VirtualClock();
  const signals: AbortSignal[] = [];
  const delivered: FakeConnection[] = [];
  let deliverLate!: (conn: FakeConnection) => void;
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1, ...config },
    clock,
    random: () => 0.5,
    factory: (signal) => {
      signals.push(signal);
      if (signals.length === 1) {
        return new Promise((resolve) => (deliverLate = resolve));
      }
      const conn = new FakeConnection();
      delivered.push(conn);
      return Promise.resolve(conn);
    },
  });
  const failed: Failed[] = [];
  const closed: Closed[] = [];
  pool.addEventListener("connectionFailed", (e) => failed.push(e.detail));
  pool.addEventListener("connectionClosed", (e) => closed.push(e.detail));
  return {
    clock,
    pool,
    signals,
    delivered,
    failed,
    closed,
    deliverLate: (conn: FakeConnection) => deliverLate(conn),
  };
}

// ------------------------------------------------- a factory that never settles

test("with maxConnections 1, a factory call that never settles is given up after the create timeout (connectionTimeoutMs by default): its signal aborts, the failure is reported, the next acquire gets a connection, a late delivery is closed, and nothing is left behind", async () => {
  const s = wedgeOnce({ connectionTimeoutMs: 1000 });
  const { clock, pool, signals } = s;
  const first = watch(pool.acquireShared());
  await clock.advance(0);
  assert.equal(signals.length, 1);
  assert.equal(pool.stats().connecting, 1);
  await clock.advance(999);
  assert.equal(signals[0].aborted, false, "not before the create timeout");
  assert.equal(s.failed.length, 0);

  await clock.advance(1);
  // The caller's own wait ended at the same instant, as it always did.
  assert.ok(first.error instanceof PoolTimeoutError, String(first.error));
  assert.equal(signals[0].aborted, true, "the factory is told to give up");
  assert.ok(signals[0].reason instanceof ConnectTimeoutError);
  assert.equal(signals[0].reason.timeoutMs, 1000);
  assert.equal(signals[0].reason.address, ADDRESS);
  // Reported like any factory failure: the event, the counters, backoff.
  assert.equal(s.failed.length, 1);
  assert.equal(s.failed[0].error, signals[0].reason);
  assert.equal(s.failed[0].consecutiveFailures, 1);
  assert.equal(s.failed[0].backoffMs, 100);
  assert.equal(s.failed[0].blocked, false);
  let stats = pool.stats();
  assert.deepEqual(
    [stats.connecting, stats.totalFailed, stats.consecutiveFailures],
    [0, 1, 1],
    "the slot is free",
  );

  // The next caller is not wedged behind the call that never settled.
  const second = watch(pool.acquireShared({ timeoutMs: 500 }));
  await clock.advance(0);
  assert.equal(signals.length, 2);
  assert.equal(second.value, s.delivered[0], String(second.error));
  assert.equal(signals[1].aborted, false);

  // The first call delivers after all: closed, not pooled.
  const late = new FakeConnection();
  s.deliverLate(late);
  await clock.advance(0);
  assert.equal(late.closeCalls, 1);
  assert.deepEqual(
    s.closed.map((c) => [c.connectionId, c.reason]),
    [[late.id, "stale"]],
  );
  assert.deepEqual(pool.connections(), [s.delivered[0]]);
  stats = pool.stats();
  assert.deepEqual([stats.open, stats.connecting, stats.totalFailed], [
    1,
    0,
    1,
  ]);

  await pool.close();
  assert.equal(clock.pendingTimers, 0, "no timer after close");
  assert.equal(s.delivered[0].closeCalls, 1);
});

test("createTimeoutMs bounds a factory call on its own: waiters with nothing else to wait for fail at once with the ConnectTimeoutError, and a factory that honours its signal is not counted twice", async () => {
  const clock = new VirtualClock();
  // A node that hangs, and a factory that rejects once aborted.
  const node = new FakeNode(clock);
  node.connectDelayMs = Infinity;
  const timed = new ConnectionPool<NodeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1, connectionTimeoutMs: 5000 },
    clock,
    random: () => 0.5,
    factory: node.factory,
    createTimeoutMs: 300,
  });
  const failed: Failed[] = [];
  timed.addEventListener("connectionFailed", (e) => failed.push(e.detail));
  const waiter = watch(timed.getConnection());
  await clock.advance(299);
  assert.equal(waiter.done, false);
  await clock.advance(1);
  assert.ok(waiter.error instanceof ConnectTimeoutError, String(waiter.error));
  assert.equal(waiter.error.timeoutMs, 300);
  assert.equal(node.aborted, 1, "the factory heard the abort");
  assert.equal(failed.length, 1);
  assert.equal(timed.stats().totalFailed, 1, "its rejection is not counted");
  assert.equal(timed.stats().connecting, 0);
  // The node answers again: the next open (after the 100 ms backoff, or
  // at once for a caller with nothing to wait for) succeeds.
  node.connectDelayMs = 0;
  const conn = await timed.getConnection({ timeoutMs: 100 });
  assert.equal(conn, node.conn(1));
  timed.returnConnection(conn);
  await timed.close();
  assert.equal(clock.pendingTimers, 0);
});

test("an open aborted by clear() whose factory ignores the abort stops counting against maxConnections at the create timeout, without being reported as a failure", async () => {
  const s = wedgeOnce({ connectionTimeoutMs: 1000 });
  const { clock, pool, signals } = s;
  const first = watch(pool.acquireShared());
  await clock.advance(0);
  pool.clear(new Error("node unhealthy"));
  await clock.advance(0);
  assert.ok(first.error, "the waiter fails with the clear");
  assert.equal(signals[0].aborted, true);
  assert.equal(pool.stats().connecting, 1, "the factory has not settled");
  await clock.advance(1000);
  assert.equal(pool.stats().connecting, 0);
  assert.equal(pool.stats().totalFailed, 0, "our own abort is no failure");
  assert.equal(s.failed.length, 0);
  const conn = await pool.acquireShared({ timeoutMs: 100 });
  assert.equal(conn, s.delivered[0]);
  await pool.close();
  assert.equal(clock.pendingTimers, 0);
});

test("close() during a factory call that never settles and ignores its signal aborts it and waits 500 ms for it at most, not until the create timeout, leaving no timer", async () => {
  const s = wedgeOnce({ minConnections: 1, connectionTimeoutMs: 5000 });
  const { clock, pool, signals } = s;
  pool.start();
  await clock.advance(10);
  assert.equal(pool.stats().connecting, 1);
  const closing = watch(pool.close());
  await clock.advance(0);
  assert.equal(signals[0].aborted, true, "close() aborts it");
  await clock.advance(499);
  assert.equal(closing.done, false, "close() gives it a moment to settle");
  await clock.advance(1);
  assert.equal(closing.done, true, "and no more");
  assert.equal(closing.error, undefined);
  assert.equal(clock.pendingTimers, 0, "no timer after close");
  assert.equal(pool.stats().connecting, 0, "nothing left being opened");
  assert.equal(s.failed.length, 0, "an open close() aborted is no failure");
});

test("close() resolves only once an open it aborted has settled, so that a factory heeding its signal has released its socket by then", async () => {
  const clock = new VirtualClock();
  const torn: string[] = [];
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config: { minConnections: 1 },
    clock,
    // Heeds the abort, but its teardown takes a while (a TLS socket's).
    factory: (signal) =>
      new Promise((_, reject) =>
        signal.addEventListener("abort", () => {
          clock.setTimeout(() => {
            torn.push("socket released");
            reject(signal.reason);
          }, 100);
        })
      ),
  });
  pool.start();
  await clock.advance(10);
  const closing = watch(pool.close().then(() => torn.push("close resolved")));
  await clock.advance(99);
  assert.equal(closing.done, false);
  await clock.advance(1);
  assert.equal(closing.done, true);
  assert.deepEqual(torn, ["socket released", "close resolved"]);
  assert.equal(clock.pendingTimers, 0);
});

test("what a factory deaf to close()'s abort delivers after poolClosed is closed, and no event follows poolClosed", async () => {
  const s = wedgeOnce({ minConnections: 1, connectionTimeoutMs: 1000 });
  const { clock, pool } = s;
  const order: string[] = [];
  for (const type of ["connectionCreated", "connectionClosed", "poolClosed"]) {
    pool.addEventListener(type as "poolClosed", () => order.push(type));
  }
  pool.start();
  await clock.advance(10);
  const closing = watch(pool.close());
  await clock.advance(1000); // past the create timeout, whatever close() waits for
  assert.equal(closing.done, true);
  assert.deepEqual(order, ["poolClosed"]);
  const late = new FakeConnection();
  s.deliverLate(late);
  await clock.advance(0);
  assert.equal(late.closeCalls, 1, "what it delivers later is closed");
  assert.deepEqual(order, ["poolClosed"], "no event after poolClosed");
  assert.deepEqual(pool.connections(), []);
  assert.equal(clock.pendingTimers, 0);
});

/** The `ConnectTimeoutError` a pool at `address` gives a factory deaf to its signal. */
async function createTimeoutOf(address: string): Promise<ConnectTimeoutError> {
  const clock = new VirtualClock();
  let signal!: AbortSignal;
  const pool = new ConnectionPool<FakeConnection>({
    address,
    config: { minConnections: 1 },
    clock,
    createTimeoutMs: 10,
    factory: (s) => new Promise(() => (signal = s)),
  });
  pool.start();
  await clock.advance(10);
  await pool.close();
  return signal.reason;
}

test("the create timeout's ConnectTimeoutError names the pool's address as given, an IPv6 literal in brackets too", async () => {
  for (const address of ["[::1]:7000", "[fe80::1%eth0]:7001"]) {
    const error = await createTimeoutOf(address);
    assert.ok(error instanceof ConnectTimeoutError);
    assert.equal(error.address, address);
    assert.equal(
      error.message,
      `connecting to ${address} timed out after 10 ms`,
    );
  }
  // Whatever a client's pool is given (a host parseHost made canonical).
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.ipV6(), fc.ipV4(), fc.domain()),
      fc.integer({ min: 1, max: 65535 }),
      async (hostname, port) => {
        const { address } = parseHost(
          `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
        );
        assert.equal((await createTimeoutOf(address)).address, address);
      },
    ),
    { numRuns: 200 },
  );
});

test("new ConnectionPool() refuses a createTimeoutMs that is no duration with InvalidArgumentError naming it", () => {
  for (const createTimeoutMs of [0, -1, Number.NaN, Infinity, 2 ** 31, "5"]) {
    assert.throws(
      () =>
        new ConnectionPool(
          {
            address: ADDRESS,
            factory: () => Promise.resolve(new FakeConnection()),
            createTimeoutMs,
          } as unknown as ConstructorParameters<typeof ConnectionPool>[0],
        ),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        error.argument === "options.createTimeoutMs",
      String(createTimeoutMs),
    );
  }
});

// --------------------------------------------------------- the client's pools

/**
 * The memory network, except that the connects listed in `plan` (by
 * number, from 1) hang for good, ignoring their signal, or take that many
 * virtual ms first.
 */
function slowNetwork(
  clock: VirtualClock,
  plan: Record<number, number>,
): {
  network: ReturnType<typeof createMemoryNetwork>;
  adapter: RuntimeAdapter;
} {
  const network = createMemoryNetwork();
  let calls = 0;
  const adapter: RuntimeAdapter = {
    name: "memory",
    listen: (options, onConnection) => network.listen(options, onConnection),
    connect: (options) => {
      const delay = plan[++calls] ?? 0;
      if (delay === Infinity) return new Promise(() => {});
      if (delay === 0) return network.connect(options);
      return new Promise<void>((resolve) => clock.setTimeout(resolve, delay))
        .then(() => network.connect(options));
    },
  };
  return { network, adapter };
}

test("a client's pools bound a factory call by the client's connect timeout, not by connectionTimeoutMs: a connect that hangs, deaf to its signal, is given up at timeoutMs by the connection's own limit (before the pool's backstop at timeoutMs + 1000), and a slow one within timeoutMs is kept", async () => {
  const clock = new VirtualClock();
  // Connect 1 hangs for good; connect 2 takes 2 s, over connectionTimeoutMs.
  const { network, adapter } = slowNetwork(clock, { 1: Infinity, 2: 2000 });
  const node = await startTestNode({ nodeId: "n0", runtime: network, clock });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: adapter,
    clock,
    timeoutMs: 3000,
    healthConfig: { intervalMs: 0 },
    poolConfig: {
      minConnections: 1,
      maxConnections: 1,
      connectionTimeoutMs: 1000,
    },
  }, { lazy: true });
  try {
    const pool = client.manager.nodes[0].pool;
    const failed: [number, Failed][] = [];
    const ready: number[] = [];
    pool.addEventListener(
      "connectionFailed",
      (e) => failed.push([e.at, e.detail]),
    );
    pool.addEventListener("connectionReady", (e) => ready.push(e.at));
    pool.start();
    await clock.advance(2999);
    assert.equal(failed.length, 0, "nothing gives up before timeoutMs");
    assert.equal(pool.stats().connecting, 1);
    await clock.advance(1);
    assert.equal(failed.length, 1);
    assert.equal(failed[0][0], 3000);
    assert.ok(failed[0][1].error instanceof ConnectTimeoutError);
    assert.equal((failed[0][1].error as ConnectTimeoutError).timeoutMs, 3000);
    // Refilling resumes after the 100 ms backoff; that connect takes 2 s.
    await clock.advance(100 + 2000);
    assert.equal(failed.length, 1, String(failed[1]?.[1].error));
    assert.deepEqual(ready, [5100]);
    assert.equal(pool.stats().open, 1);
    const { nodeId } = decodeReply(await client.request(ops.echo()));
    assert.equal(nodeId, "n0");
  } finally {
    await client.disconnect({ timeoutMs: 1 }).catch(() => {});
    await node.close();
  }
});

// ------------------------------------------------------------- acquire timeoutMs

test('a bad acquire timeoutMs (NaN, -1, "5", Infinity, 2^31) is refused with InvalidArgumentError naming options.timeoutMs, its value and the accepted range', async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const cases: [unknown, RegExp][] = [
    [Number.NaN, /got NaN/],
    [-1, /got -1/],
    ["5", /got "5"/],
    [Infinity, /got Infinity/],
    [2 ** 31, /at most 2147483647/],
  ];
  for (const [timeoutMs, shown] of cases) {
    for (const method of ["getConnection", "acquireShared"] as const) {
      await assert.rejects(
        pool[method]({ timeoutMs } as never),
        (error: unknown) => {
          assert.ok(error instanceof InvalidArgumentError, String(error));
          assert.equal(error.argument, "options.timeoutMs");
          assert.equal(error.code, "INVALID_ARGUMENT");
          assert.match(
            error.message,
            new RegExp(`^${method}\\(\\): invalid options\\.timeoutMs: `),
          );
          // The accepted range, in the words of every duration.
          assert.match(
            error.message,
            /expected (a finite number of milliseconds ≥ 0|at most 2147483647 ms)/,
          );
          assert.match(error.message, shown);
          return true;
        },
      );
    }
  }
  assert.equal(pool.stats().waiting, 0);
  assert.equal(pool.stats().totalCreated, 0, "nothing was opened for them");
  await pool.close();
  assert.equal(clock.pendingTimers, 0);
});

test("property: any timeoutMs that is not a duration a timer can hold rejects with InvalidArgumentError at once, never a hang or another class", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  // One connection lent, so a wrongly accepted option would wait.
  const lent = await pool.getConnection();
  const bad = fc.oneof(
    fc.double().filter((v) => !(v >= 0 && v <= 2 ** 31 - 1)),
    fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }),
    fc.integer({ max: -1 }),
    fc.constantFrom(
      Number.NaN,
      Infinity,
      -Infinity,
      -0.5,
      null,
      true,
      "5",
      "",
      10n,
    ),
    fc.string(),
    fc.object(),
    fc.array(fc.nat()),
  );
  await fc.assert(
    fc.asyncProperty(
      bad,
      fc.constantFrom("getConnection", "acquireShared") as fc.Arbitrary<
        "getConnection" | "acquireShared"
      >,
      async (timeoutMs, method) => {
        const outcome = watch(pool[method]({ timeoutMs } as never));
        // Settled without time passing: refused, not queued.
        await clock.advance(0);
        assert.equal(outcome.done, true, `${method}: not settled`);
        assert.ok(
          outcome.error instanceof InvalidArgumentError,
          // Not String(timeoutMs): fast-check draws objects whose toString
          // is no function.
          `${method}: ${outcome.error}`,
        );
        assert.equal(outcome.error.argument, "options.timeoutMs");
        assert.equal(pool.stats().waiting, 0);
      },
    ),
    { numRuns: 200 },
  );
  pool.returnConnection(lent);
  await pool.close();
  assert.equal(clock.pendingTimers, 0);
});
