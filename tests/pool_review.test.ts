// The adversarial review of ConnectionPool's public API: what a careless
// or hostile caller hands it (options, acquire options, a factory or a
// heartbeat hook that misbehaves, listeners that close the pool, tens of
// thousands of waiters). Each fixed defect has a test here that failed
// before its fix; the last tests check behaviour that held.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ConfigError,
  InvalidArgumentError,
  PoolClosedError,
  PoolMisuseError,
  PoolTimeoutError,
} from "../src/errors.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { type Waiter, WaitQueue } from "../src/pool/wait_queue.ts";
import type { PoolableConnection } from "../src/pool/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { ADDRESS, setup, watch } from "./support/pool_scene.ts";

/** A pool on a virtual clock over `factory`, with a constant jitter. */
function poolOver<C extends PoolableConnection>(
  factory: (signal: AbortSignal) => Promise<C>,
  config: Record<string, number> = {},
  extra: Record<string, unknown> = {},
) {
  const clock = new VirtualClock();
  const pool = new ConnectionPool<C>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 2, ...config },
    factory,
    clock,
    random: () => 0.5,
    ...extra,
  });
  return { clock, pool };
}

const invalid = (argument: string) => (error: unknown) =>
  error instanceof InvalidArgumentError && error.argument === argument;

// ---------------------------------------------------------------- the factory

test("a factory that delivers no connection, or one the pool holds already, fails the open with InvalidArgumentError naming it; nothing escapes, nothing is counted as held", async () => {
  const watch1 = watchEscapes();
  const held = new FakeConnection();
  const deliveries: unknown[] = [
    undefined,
    null,
    { id: 1 },
    { id: 1, inFlight: 0, isOpen: true, closed: undefined, close() {} },
    {
      get isOpen(): boolean {
        throw new Error("getter bug");
      },
    },
  ];
  for (const delivered of deliveries) {
    const { clock, pool } = poolOver(
      () => Promise.resolve(delivered as FakeConnection),
      { connectionTimeoutMs: 1000 },
    );
    const failed: unknown[] = [];
    pool.addEventListener("connectionFailed", (e) => failed.push(e.detail));
    const waiter = watch(pool.getConnection());
    await clock.advance(0);
    // At once, not after connectionTimeoutMs: nothing else could serve it.
    assert.ok(invalid("options.factory")(waiter.error), String(waiter.error));
    assert.equal(failed.length, 1);
    const stats = pool.stats();
    assert.deepEqual([stats.open, stats.totalCreated, stats.totalFailed], [
      0,
      0,
      1,
    ]);
    await pool.close();
  }
  // The same connection delivered twice is held once: the second open
  // fails, and its caller waits for the lent one to come back.
  const { clock, pool } = poolOver(() => Promise.resolve(held));
  const failures: unknown[] = [];
  pool.addEventListener(
    "connectionFailed",
    (e) => failures.push(e.detail.error),
  );
  const first = await pool.getConnection();
  const second = watch(pool.getConnection());
  await clock.advance(0);
  assert.equal(first, held);
  assert.equal(failures.length, 1);
  assert.ok(invalid("options.factory")(failures[0]), String(failures[0]));
  assert.match(String(failures[0]), /does not hold/);
  assert.equal(pool.stats().open, 1);
  pool.returnConnection(first);
  await clock.advance(0);
  assert.equal(second.value, held);
  pool.returnConnection(held);
  await pool.close();
  assert.deepEqual(await watch1.stop(), []);
});

test("a factory that returns a connection instead of a promise of one is taken at its word", async () => {
  const watch1 = watchEscapes();
  const { clock, pool } = poolOver(
    (() => new FakeConnection()) as unknown as () => Promise<FakeConnection>,
  );
  pool.start();
  const conn = watch(pool.getConnection());
  await clock.advance(0);
  assert.ok(conn.value instanceof FakeConnection, String(conn.error));
  pool.returnConnection(conn.value);
  await pool.close();
  assert.deepEqual(await watch1.stop(), []);
});

test("a random() that throws or leaves [0, 1) fails the open with InvalidArgumentError naming options.random, and the connection is let go", async () => {
  const watch1 = watchEscapes();
  for (
    const random of [
      () => {
        throw new Error("random bug");
      },
      () => Number.NaN,
      () => 1,
      () => -0.5,
    ]
  ) {
    const conns: FakeConnection[] = [];
    const { clock, pool } = poolOver(
      () => {
        const conn = new FakeConnection();
        conns.push(conn);
        return Promise.resolve(conn);
      },
      { maxLifetimeMs: 60_000 },
      { random },
    );
    const waiter = watch(pool.getConnection());
    await clock.advance(0);
    assert.ok(invalid("options.random")(waiter.error), String(waiter.error));
    assert.equal(conns.length, 1);
    assert.ok(conns[0].destroyed, "the connection delivered is not kept");
    assert.equal(pool.stats().open, 0);
    await pool.close();
  }
  assert.deepEqual(await watch1.stop(), []);
});

// ------------------------------------------------------------ the heartbeat

test("a heartbeat hook that returns no promise counts as answered; one that throws drops its connection; nothing escapes", async () => {
  const watch1 = watchEscapes();
  const calls = { plain: 0, throwing: 0 };
  const plain = poolOver(
    () => Promise.resolve(new FakeConnection()),
    { minConnections: 1, heartbeatIntervalMs: 100 },
    { heartbeat: () => void calls.plain++ },
  );
  plain.pool.start();
  await plain.clock.advance(350);
  assert.equal(calls.plain, 3, "checked every interval");
  assert.equal(plain.pool.stats().totalCreated, 1, "never replaced");
  await plain.pool.close();

  const throwing = poolOver(
    () => Promise.resolve(new FakeConnection()),
    { minConnections: 1, heartbeatIntervalMs: 100 },
    {
      heartbeat: () => {
        calls.throwing++;
        throw new Error("hook bug");
      },
    },
  );
  const closed: unknown[] = [];
  throwing.pool.addEventListener("connectionClosed", (e) => {
    closed.push(e.detail.error?.message);
  });
  throwing.pool.start();
  await throwing.clock.advance(100);
  assert.deepEqual(closed, ["hook bug"]);
  assert.equal(throwing.pool.stats().open, 1, "replaced");
  await throwing.pool.close();
  assert.deepEqual(await watch1.stop(), []);
});

test("a heartbeat that never settles fails once the next check would be due: its connection is dropped and replaced, not left unchecked for good", async () => {
  let calls = 0;
  const { clock, pool } = poolOver(
    () => Promise.resolve(new FakeConnection()),
    { minConnections: 1, heartbeatIntervalMs: 100 },
    {
      heartbeat: () => {
        calls++;
        return new Promise(() => {});
      },
    },
  );
  const closed: string[] = [];
  pool.addEventListener("connectionClosed", (e) => {
    const error = e.detail.error as { code?: string } | undefined;
    closed.push(
      `${e.detail.connectionId}:${error?.code}:${e.detail.error?.message}`,
    );
  });
  pool.start();
  await clock.advance(0);
  const [first] = pool.connections();
  await clock.advance(100);
  assert.equal(calls, 1);
  assert.deepEqual(closed, []);
  await clock.advance(99);
  assert.deepEqual(closed, [], "given until the next check is due");
  await clock.advance(1);
  // An SDK error with a stable code, naming the pool's node.
  assert.deepEqual(closed, [
    `${first.id}:CONNECTION_LOST:connection to ${pool.address} lost: heartbeat did not settle within 100 ms`,
  ]);
  assert.ok(first.destroyed);
  assert.equal(pool.stats().open, 1, "replaced, to keep the minimum");
  await clock.advance(100);
  assert.equal(calls, 2, "the replacement is checked in turn");
  await pool.close();
});

// ------------------------------------------------------------ close() again

test("a waiter whose signal a connectionClosed listener aborts while the pool picks its connection is not lent one: the connection stays free, not in use for ever", async () => {
  const watch1 = watchEscapes();
  let fourth!: (conn: FakeConnection) => void;
  const made: FakeConnection[] = [];
  const { clock, pool } = poolOver((): Promise<FakeConnection> => {
    if (made.length === 3) {
      return new Promise((resolve) => (fourth = resolve));
    }
    const conn = new FakeConnection();
    made.push(conn);
    return Promise.resolve(conn);
  }, { maxConnections: 4 });
  // Three connections, open and idle.
  const held: FakeConnection[] = [];
  for (let i = 0; i < 3; i++) {
    const conn = watch(pool.getConnection());
    await clock.advance(0);
    held.push(conn.value!);
  }
  for (const conn of held) pool.returnConnection(conn);
  const [e1, e2, e3] = made;
  // All busy: two exclusive callers wait for the fourth, being opened.
  for (const conn of made) conn.inFlight = 1;
  const first = watch(pool.getConnection());
  const controller = new AbortController();
  const second = watch(pool.getConnection({ signal: controller.signal }));
  await clock.advance(0);
  assert.equal(pool.stats().waiting, 2);
  assert.equal(pool.stats().connecting, 1);
  // Meanwhile two went idle and one died unnoticed; the application
  // gives up its second wait when it hears of a closed connection.
  e1.inFlight = 0;
  e3.inFlight = 0;
  e2.isOpen = false;
  pool.addEventListener("connectionClosed", () => controller.abort());
  // The fourth arrives: the waiters are served, and picking for the
  // second one finds the dead connection.
  fourth(new FakeConnection());
  await clock.advance(0);
  assert.equal(first.value, e1);
  assert.ok(second.error instanceof Error, "the second wait was aborted");
  assert.equal(second.error.name, "AbortedError");
  // Nobody holds e3: it is not lent, and the next caller gets a free one.
  assert.equal(pool.stats().inUse, 1, "only the first caller's connection");
  const next = watch(pool.getConnection({ timeoutMs: 0 }));
  await clock.advance(0);
  assert.ok(next.value !== undefined, String(next.error));
  pool.returnConnection(next.value);
  pool.returnConnection(e1);
  await pool.close();
  assert.deepEqual(await watch1.stop(), []);
});

test("acquireShared() whose pick drops a dead connection, and a connectionClosed listener closes the pool, rejects with PoolClosedError rather than resolving with a connection the close just closed", async () => {
  const watch1 = watchEscapes();
  const { clock, pool } = poolOver(
    () => Promise.resolve(new FakeConnection()),
    { multiplexThreshold: 4 },
  );
  // Two connections: the first busy at the threshold, the second dead
  // without the pool having heard of it yet.
  const a = watch(pool.getConnection());
  await clock.advance(0);
  const b = watch(pool.getConnection());
  await clock.advance(0);
  const [busy, dead] = [a.value!, b.value!];
  pool.returnConnection(busy);
  pool.returnConnection(dead);
  busy.inFlight = 4;
  dead.isOpen = false;
  pool.addEventListener("connectionClosed", () => {
    pool.close();
  });
  const shared = watch(pool.acquireShared());
  await clock.advance(0);
  assert.ok(
    shared.error instanceof PoolClosedError,
    `resolved with ${shared.value?.id} (open: ${shared.value?.isOpen})`,
  );
  busy.inFlight = 0;
  await pool.close();
  assert.deepEqual(await watch1.stop(), []);
});

test("the wait queue drops settled waiters behind one that stays: callers timing out behind a long exclusive wait neither pile up nor make every scan walk them", () => {
  // Counts how often the queue looks at a waiter's `done`: what a scan
  // costs, and a measure of what it still holds.
  let looks = 0;
  const waiter = (exclusive: boolean, deadline: number): Waiter<unknown> => {
    let done = false;
    return {
      exclusive,
      startedAt: 0,
      deadline,
      timeoutMs: deadline,
      ownTimeout: false,
      resolve() {},
      reject() {},
      signal: undefined,
      onAbort: undefined,
      get done() {
        looks++;
        return done;
      },
      set done(value: boolean) {
        done = value;
      },
    };
  };
  const queue = new WaitQueue<unknown>();
  // The oldest caller waits for a lent connection for a long time...
  const head = waiter(true, 1e9);
  queue.push(head);
  // ...while shared callers behind it come and time out, one by one.
  for (let i = 0; i < 10_000; i++) {
    const behind = waiter(false, i);
    queue.push(behind);
    assert.equal(queue.remove(behind), true);
  }
  assert.equal(queue.size, 1);
  looks = 0;
  const seen: unknown[] = [];
  queue.scan((w) => {
    seen.push(w);
    return true;
  });
  assert.deepEqual(seen, [head]);
  assert.ok(looks < 200, `a scan looked at ${looks} waiters to find one`);
  assert.equal(queue.peek(), head);
  assert.equal(queue.remove(head), true);
  assert.equal(queue.size, 0);
});

test("a connection the pool retires whose close() never settles is destroyed createTimeoutMs after it had nothing in flight, while the pool runs, not held open until the pool closes", async () => {
  const watch1 = watchEscapes();
  /** A connection whose graceful close hangs (a peer that never closes its side). */
  class Stuck extends FakeConnection {
    override close(): Promise<void> {
      this.closeCalls++;
      return new Promise<void>(() => {});
    }
  }
  const made: Stuck[] = [];
  const { clock, pool } = poolOver(
    () => {
      const conn = new Stuck();
      made.push(conn);
      return Promise.resolve(conn);
    },
    { idleTimeoutMs: 10_000 },
    { createTimeoutMs: 5_000 },
  );
  const conn = watch(pool.getConnection());
  await clock.advance(0);
  pool.returnConnection(conn.value!);
  // Idle past its timeout: retired, its close started, never settling.
  await clock.advance(10_000);
  assert.equal(made[0].closeCalls, 1);
  assert.equal(made[0].destroyed, false);
  await clock.advance(5_000);
  assert.equal(made[0].destroyed, true, "destroyed once its close was overdue");
  assert.match(String(made[0].destroyedWith), /did not settle within 5000 ms/);
  await pool.close();
  assert.deepEqual(await watch1.stop(), []);
});

test("a checkoutFailed listener that asks again at once, while the pool backs off with nothing held, gets its failures a bounded number at a time, not in a loop that never yields", async () => {
  const watch1 = watchEscapes();
  const { clock, pool } = poolOver(() => Promise.reject(new Error("refused")));
  // Two failed opens in a row: callers now fail at once with the last one.
  for (let i = 0; i < 2; i++) {
    pool.getConnection().catch(() => {});
    await clock.advance(0);
  }
  assert.equal(pool.stats().consecutiveFailures, 2);
  let failures = 0;
  let retrying = true;
  pool.addEventListener("checkoutFailed", () => {
    failures++;
    // Bounded here only so that the test ends if the pool does not bound it.
    if (retrying && failures < 100_000) pool.getConnection().catch(() => {});
  });
  pool.getConnection().catch(() => {});
  const inOneCall = failures;
  assert.ok(inOneCall >= 1 && inOneCall <= 100, `${inOneCall} in one call`);
  // The rest come later, the event loop running in between.
  await new Promise((resolve) => setTimeout(resolve, 0));
  retrying = false;
  await clock.advance(0);
  assert.ok(failures > inOneCall, "the listener's callers were answered");
  await pool.close();
  assert.deepEqual(await watch1.stop(), []);
});

test("a checkoutFailed listener that asks again with timeoutMs 0 each time one times out gets one timeout per firing of the pool's timer, not an endless loop inside one", async () => {
  const watch1 = watchEscapes();
  /** A clock whose due timers the test fires, one round at a time. */
  const timers = new Map<number, { at: number; fn: () => void }>();
  let nextId = 0;
  const clock = {
    now: () => 0,
    setTimeout(fn: () => void, ms: number) {
      timers.set(++nextId, { at: ms, fn });
      return nextId;
    },
    clearTimeout(id: unknown) {
      timers.delete(id as number);
    },
  };
  const fireDue = () => {
    for (const [id, timer] of [...timers]) {
      if (timer.at > 0) continue;
      timers.delete(id);
      timer.fn();
    }
  };
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1 },
    factory: () => Promise.resolve(new FakeConnection()),
    clock: clock as never,
  });
  const held = await pool.getConnection();
  let failures = 0;
  let retrying = true;
  pool.addEventListener("checkoutFailed", () => {
    failures++;
    // Bounded here only so that the test ends if the pool does not bound it.
    if (retrying && failures < 100_000) {
      pool.getConnection({ timeoutMs: 0 }).catch(() => {});
    }
  });
  pool.getConnection({ timeoutMs: 0 }).catch(() => {});
  fireDue();
  assert.equal(failures, 1, "one firing, the one caller due then");
  fireDue();
  assert.equal(failures, 2);
  retrying = false;
  fireDue();
  assert.equal(failures, 3);
  pool.returnConnection(held);
  await pool.close();
  assert.deepEqual(await watch1.stop(), []);
});

test("close() called from a listener while the pool closes returns the same promise, and poolClosed comes once", async () => {
  const { pool } = setup({ maxConnections: 2 });
  let inner: Promise<void> | undefined;
  let closedEvents = 0;
  pool.addEventListener("poolClosed", () => closedEvents++);
  pool.addEventListener("connectionClosed", () => inner ??= pool.close());
  pool.addEventListener("checkoutFailed", () => inner ??= pool.close());
  const conn = await pool.getConnection();
  pool.returnConnection(conn);
  const outer = pool.close();
  assert.equal(inner, outer);
  assert.equal(pool.close(), outer);
  await outer;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(closedEvents, 1);
});

// ----------------------------------------------------------------- arguments

test("getConnection and acquireShared check their options before anything, whether or not a connection is free: a typed rejection, never a throw or a silent default", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const bad: [unknown, string, string][] = [
    [null, "options", "InvalidArgumentError"],
    [5, "options", "InvalidArgumentError"],
    [{ timeout: 5 }, "options.timeout", "InvalidArgumentError"],
    [{ signal: {} }, "options.signal", "InvalidArgumentError"],
    [{ signal: { aborted: true } }, "options.signal", "InvalidArgumentError"],
    [{ ignoreBackoff: "yes" }, "options.ignoreBackoff", "InvalidArgumentError"],
    [
      {
        get signal(): AbortSignal {
          throw new Error("getter bug");
        },
      },
      "options.signal",
      "InvalidArgumentError",
    ],
    [{ timeoutMs: Number.NaN }, "options.timeoutMs", "InvalidArgumentError"],
    [{ timeoutMs: -1 }, "options.timeoutMs", "InvalidArgumentError"],
    [{ timeoutMs: 2 ** 31 }, "options.timeoutMs", "InvalidArgumentError"],
  ];
  const check = async (label: string) => {
    for (const [options, name, kind] of bad) {
      for (const method of ["getConnection", "acquireShared"] as const) {
        let outcome: Promise<unknown>;
        try {
          outcome = pool[method](options as never);
        } catch (error) {
          assert.fail(`${label} ${method}(${name}) threw: ${error}`);
        }
        await assert.rejects(outcome, (error: unknown) => {
          assert.equal(error?.constructor.name, kind, String(error));
          assert.equal((error as InvalidArgumentError).argument, name);
          if (error instanceof InvalidArgumentError) {
            assert.match(error.message, new RegExp(`^${method}\\(\\)`));
          }
          return true;
        }, `${label} ${method}(${name})`);
      }
    }
  };
  await check("nothing open yet:");
  const conn = await pool.getConnection();
  pool.returnConnection(conn);
  await clock.advance(0);
  await check("a connection free:");
  assert.equal(pool.stats().inUse, 0, "nothing was lent");
  assert.equal(pool.stats().waiting, 0, "nobody waits");
  // Valid options still work, the defaults included.
  const lent = await pool.getConnection({
    timeoutMs: 0,
    ignoreBackoff: false,
    signal: new AbortController().signal,
  });
  pool.returnConnection(lent);
  await pool.close();
  await check("closed:");
});

test("new ConnectionPool() refuses options missing, of the wrong type or unknown, naming them, before anything starts", () => {
  const factory = () => Promise.resolve(new FakeConnection());
  const cases: [unknown, string][] = [
    [undefined, "options"],
    [null, "options"],
    [{ address: ADDRESS }, "options.factory"],
    [{ address: ADDRESS, factory: 5 }, "options.factory"],
    [{ address: 7000, factory }, "options.address"],
    [{ address: "", factory }, "options.address"],
    // Not host:port: no port, a port out of range or not a number, IPv6
    // without brackets, nothing before the port.
    [{ address: "orders-pool", factory }, "options.address"],
    [{ address: "db:65536", factory }, "options.address"],
    [{ address: "db:70a", factory }, "options.address"],
    [{ address: "db:", factory }, "options.address"],
    [{ address: "::1:7000", factory }, "options.address"],
    [{ address: ":7000", factory }, "options.address"],
    [{ address: "db:7000\n", factory }, "options.address"],
    [{ address: ADDRESS, factory, hearbeat: () => 0 }, "options.hearbeat"],
    [{ address: ADDRESS, factory, heartbeat: 5 }, "options.heartbeat"],
    [{ address: ADDRESS, factory, random: 0.5 }, "options.random"],
    [{ address: ADDRESS, factory, clock: {} }, "options.clock"],
    [{ address: ADDRESS, factory, clock: Date }, "options.clock"],
    [
      {
        address: ADDRESS,
        get factory(): unknown {
          throw new Error("getter bug");
        },
      },
      "options.factory",
    ],
  ];
  assert.throws(
    () => new ConnectionPool({ address: "orders-pool", factory }),
    /options\.address.*expected the node as host:port \(\[ipv6\]:port for IPv6\)/,
  );
  for (const [options, argument] of cases) {
    assert.throws(
      () => new ConnectionPool(options as never),
      (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.argument, argument);
        assert.match(error.message, /^new ConnectionPool\(\): /);
        return true;
      },
      argument,
    );
  }
  assert.match(
    String(
      (() => {
        try {
          new ConnectionPool(
            { address: ADDRESS, factory, hearbeat: 1 } as never,
          );
        } catch (error) {
          return error;
        }
      })(),
    ),
    /did you mean "heartbeat"/,
  );
});

// ------------------------------------------------------------------ waiters

test("forty thousand callers waiting for a pool with nothing to lend queue in linear time, and are served first come, first served", async () => {
  const clock = new VirtualClock();
  let deliver!: (conn: FakeConnection) => void;
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1, connectionTimeoutMs: 1000 },
    factory: () => new Promise((resolve) => (deliver = resolve)),
    clock,
  });
  const n = 40_000;
  const order: number[] = [];
  const started = performance.now();
  const waiters: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    waiters.push(pool.acquireShared().then(() => order.push(i)));
  }
  const queued = performance.now() - started;
  // Each new waiter walked the whole queue: 14.5 s for 40,000 on Node
  // (quadratic); linear, it takes about 0.1 s.
  assert.ok(queued < 3000, `queueing took ${queued.toFixed(0)} ms`);
  assert.equal(pool.stats().waiting, n);
  deliver(new FakeConnection());
  await Promise.all(waiters);
  assert.equal(order.length, n);
  assert.ok(order.every((value, i) => value === i), "in arrival order");
  await pool.close();
});

test("held: exclusive and shared callers queued together are served first come, first served as one connection is handed on", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const conn = await pool.getConnection();
  const served: string[] = [];
  const waiters: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    const kind = i % 3 === 2 ? "shared" : "exclusive";
    const promise = kind === "shared"
      ? pool.acquireShared()
      : pool.getConnection();
    waiters.push(promise.then((c) => {
      served.push(`${kind}${i}`);
      if (kind === "exclusive") {
        // Hands it on at once, as a short exclusive job would.
        queueMicrotask(() => pool.returnConnection(c));
      }
    }));
  }
  await clock.advance(0);
  assert.equal(served.length, 0);
  pool.returnConnection(conn);
  // Exclusive callers hand on within microtasks. The first shared caller
  // is handed the connection, so the exclusive caller behind it waits for
  // the event loop's next task (the connection is not lent before the
  // shared caller could send on it); the shared callers behind that one
  // take their share at once, as shared callers behind a blocked
  // exclusive one do; then the exclusive callers hand it on in order.
  await Promise.all(waiters);
  assert.equal(clock.now(), 0, "no time passed");
  const kindOf = (i: number) => i % 3 === 2 ? "shared" : "exclusive";
  const all = Array.from({ length: 300 }, (_, i) => `${kindOf(i)}${i}`);
  assert.deepEqual(served, [
    "exclusive0",
    "exclusive1",
    ...all.filter((name) => name.startsWith("shared")),
    ...all.slice(3).filter((name) => name.startsWith("exclusive")),
  ]);
  await pool.close();
});

test("held: callers that wait with their own timeouts, in and out of deadline order, each time out exactly at theirs", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const conn = await pool.getConnection();
  const timeouts = [300, 100, 200, 100, 400, 50, 300];
  const at: number[] = [];
  const waiters = timeouts.map((timeoutMs, i) =>
    pool.getConnection({ timeoutMs }).then(
      () => assert.fail("served"),
      (error: unknown) => {
        assert.ok(error instanceof PoolTimeoutError);
        assert.equal(error.timeoutMs, timeoutMs);
        at[i] = clock.now();
      },
    )
  );
  // Then a run in deadline order, joining later.
  await clock.advance(10);
  const sorted = [100, 100, 200].map((timeoutMs) =>
    pool.acquireShared({ timeoutMs }).catch(() => clock.now())
  );
  await clock.advance(1000);
  await Promise.all(waiters);
  assert.deepEqual(at, timeouts);
  assert.deepEqual(await Promise.all(sorted), [110, 110, 210]);
  pool.returnConnection(conn);
  await pool.close();
});

// ------------------------------------------------------------- what held

test("held: a closed pool refuses every checkout with PoolClosedError, and a connection returned after close() is closed, not kept", async () => {
  const { clock, pool } = setup({ maxConnections: 2 });
  const conn = await pool.getConnection();
  const closing = pool.close();
  await assert.rejects(
    pool.acquireShared(),
    (e: unknown) =>
      e instanceof PoolClosedError && e.code === "POOL_CLOSED" &&
      /the pool for 10\.0\.0\.1:7000 was closed/.test(e.message),
  );
  await assert.rejects(
    pool.getConnection({ timeoutMs: 10 }),
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
  pool.returnConnection(conn);
  await clock.advance(0);
  await closing;
  assert.equal(conn.closeCalls, 1);
  assert.equal(pool.stats().open, 0);
});

test("a pool config or a returned connection that cannot be read (a throwing getter, a proxy's trap) gives the typed error, with what was thrown as its cause", async () => {
  const factory = () => Promise.resolve(new FakeConnection());
  for (
    const [config, thrown] of [
      [{
        get maxConnections(): number {
          throw new Error("getter threw");
        },
      }, "getter threw"],
      [
        new Proxy({}, {
          ownKeys() {
            throw new Error("ownKeys threw");
          },
        }),
        "ownKeys threw",
      ],
    ] as const
  ) {
    assert.throws(
      () => new ConnectionPool({ address: ADDRESS, factory, config }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.code, "CONFIG_INVALID");
        assert.equal(e.field, "poolConfig");
        assert.match(
          e.message,
          new RegExp(`could not be read \\(${thrown}\\)`),
        );
        assert.equal((e.cause as Error).message, thrown);
        return true;
      },
    );
  }
  const pool = new ConnectionPool({ address: ADDRESS, factory });
  const hostile = new Proxy({}, {
    get() {
      throw new Error("proxy get threw");
    },
  });
  assert.throws(
    () => pool.returnConnection(hostile as never),
    (e: unknown) =>
      e instanceof PoolMisuseError && e.code === "POOL_MISUSE" &&
      /connection \(unreadable\) does not belong to the pool/.test(e.message),
  );
  await pool.close();
});

for (const why of ["closed", "aborted"] as const) {
  test(`a checkoutFailed listener that always asks again of a pool that refuses at once (${why}) gets its refusals a bounded number at a time, not a recursion that overflows the stack`, async () => {
    const watch1 = watchEscapes();
    const { clock, pool } = setup();
    const signal = AbortSignal.abort(new Error("stop"));
    const options = why === "aborted" ? { signal } : {};
    if (why === "closed") await pool.close();
    let failures = 0;
    let retrying = true;
    pool.addEventListener("checkoutFailed", () => {
      failures++;
      // Bounded here only so that the test ends if the pool does not bound it.
      if (retrying && failures < 1_000) {
        pool.getConnection(options).catch(() => {});
      }
    });
    pool.getConnection(options).catch(() => {});
    const inOneCall = failures;
    assert.ok(inOneCall >= 1 && inOneCall <= 100, `${inOneCall} in one call`);
    // The rest come on the pool's clock, the event loop running in between.
    await clock.advance(0);
    assert.ok(failures > inOneCall, "the listener's callers were answered");
    retrying = false;
    for (let i = 0; i < 10 && clock.pendingTimers > 0; i++) {
      await clock.advance(0);
    }
    if (why === "aborted") await pool.close();
    assert.deepEqual(await watch1.stop(), []);
  });
}
