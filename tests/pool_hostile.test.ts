// A pool over connections a custom factory made, which keep no promise the
// SDK's own Connection keeps: a close() that never settles, returns nothing
// or an async destroy() that rejects, an inFlight that is no count, parts
// that throw once taken in. The pool must still end, lend and count sanely,
// with nothing unhandled. Also the pool's own doors for hostile callers:
// its listeners' arguments, an AbortSignal whose reason throws. Virtual
// clock throughout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rejectionsDuring } from "./support/uncaught.ts";
import {
  AbortedError,
  ConnectionLostError,
  InvalidArgumentError,
} from "../src/errors.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { ADDRESS, watch } from "./support/pool_scene.ts";

/**
 * A connection whose close() never settles unless the test says so
 * (`settleClose`), as a custom factory's connection may do; destroy()
 * ends it as usual.
 */
class StuckClose extends FakeConnection {
  #reject: ((error: Error) => void) | undefined;

  override close(): Promise<void> {
    this.closeCalls++;
    this.isOpen = false;
    return new Promise((_, reject) => (this.#reject = reject));
  }

  /** The close settles at last, with a rejection nobody awaits any more. */
  settleClose(): void {
    this.#reject?.(new Error("late close failure"));
  }
}

function stuckPool(config: Record<string, number> = {}) {
  const clock = new VirtualClock();
  const made: StuckClose[] = [];
  const pool = new ConnectionPool<StuckClose>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 2, ...config },
    clock,
    random: () => 0.5,
    factory: () => {
      const conn = new StuckClose();
      made.push(conn);
      return Promise.resolve(conn);
    },
  });
  return { clock, pool, made };
}

test("close() gives up on an idle connection whose close() never settles after createTimeoutMs: it destroys it with a ConnectionLostError saying so, resolves, leaves no timer, and the late rejection is handled", async () => {
  const seen = await rejectionsDuring(async () => {
    const { clock, pool, made } = stuckPool({ connectionTimeoutMs: 2000 });
    pool.returnConnection(await pool.getConnection());
    assert.equal(made.length, 1);
    const closing = watch(pool.close());
    await clock.advance(1999);
    assert.equal(closing.done, false, "a close is given its time");
    assert.equal(made[0].destroyed, false);
    await clock.advance(1);
    assert.equal(closing.done, true, "and no more");
    assert.equal(closing.error, undefined);
    assert.equal(made[0].closeCalls, 1);
    assert.equal(made[0].destroyed, true, "given up on, it is destroyed");
    const error = made[0].destroyedWith;
    assert.ok(error instanceof ConnectionLostError);
    assert.match(error.message, /close\(\) did not settle within 2000 ms/);
    assert.equal(clock.pendingTimers, 0, "no timer after close");
    made[0].settleClose();
  });
  assert.deepEqual(seen, []);
});

test("close() does not cut short a close whose connection still has requests in flight (each bounded by its own timeout): the bound runs from when it was last seen with none", async () => {
  const { clock, pool, made } = stuckPool({ connectionTimeoutMs: 2000 });
  const conn = await pool.acquireShared();
  conn.inFlight = 1; // a request with a long timeout of its own
  const closing = watch(pool.close());
  await clock.advance(2000);
  assert.equal(made[0].destroyed, false, "busy: its close is waited for");
  await clock.advance(5000);
  assert.equal(made[0].destroyed, false);
  conn.inFlight = 0; // the request finished; the close still hangs
  // Looked at every 2000 ms, last seen busy at 6000: given up at 8000.
  await clock.advance(999);
  assert.equal(closing.done, false);
  await clock.advance(1);
  assert.equal(closing.done, true);
  assert.equal(made[0].destroyed, true);
  assert.match(
    String(made[0].destroyedWith?.message),
    /its close\(\) did not settle within 2000 ms with nothing in flight/,
  );
  assert.equal(clock.pendingTimers, 0);
});

test("close() bounds the close of a lent connection returned after it by createTimeoutMs from the return, and waits for the holder until then", async () => {
  const clock = new VirtualClock();
  const made: StuckClose[] = [];
  const pool = new ConnectionPool<StuckClose>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1 },
    clock,
    createTimeoutMs: 300,
    factory: () => {
      const conn = new StuckClose();
      made.push(conn);
      return Promise.resolve(conn);
    },
  });
  const conn = await pool.getConnection();
  const closing = watch(pool.close());
  await clock.advance(10_000);
  assert.equal(closing.done, false, "the holder's work is waited for");
  pool.returnConnection(conn);
  assert.equal(conn.closeCalls, 1, "returned, it is closed");
  await clock.advance(299);
  assert.equal(closing.done, false);
  await clock.advance(1);
  assert.equal(closing.done, true);
  assert.equal(conn.destroyed, true);
  assert.match(String(conn.destroyedWith?.message), /within 300 ms/);
  assert.equal(clock.pendingTimers, 0);
});

// ------------------------------------------ an inFlight that is no count

/** A pool over fake connections whose inFlight the test sets. */
function countingPool(config: Record<string, number> = {}) {
  const clock = new VirtualClock();
  const made: FakeConnection[] = [];
  let nextLoad: number = 0;
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1, ...config },
    clock,
    random: () => 0.5,
    factory: () => {
      const conn = new FakeConnection();
      conn.inFlight = nextLoad;
      made.push(conn);
      return Promise.resolve(conn);
    },
  });
  const closed: string[] = [];
  pool.addEventListener("connectionClosed", (e) => {
    const { connectionId, reason, error } = e.detail;
    closed.push(`${connectionId}:${reason}:${error?.message ?? ""}`);
  });
  return {
    clock,
    pool,
    made,
    closed,
    loadNext: (n: number) => (nextLoad = n),
  };
}

test("a factory's connection whose inFlight is no count (NaN, -1, Infinity) is refused as it arrives: the caller fails at once with an InvalidArgumentError naming it, not a PoolTimeoutError after waiting", async () => {
  for (const load of [Number.NaN, -1, Infinity]) {
    const { clock, pool, made, loadNext } = countingPool();
    loadNext(load);
    const failed: unknown[] = [];
    pool.addEventListener(
      "connectionFailed",
      (e) => failed.push(e.detail.error),
    );
    const got = watch(pool.getConnection());
    await clock.advance(1);
    assert.equal(got.done, true, `${load}: no wait`);
    const error = got.error;
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(
      error.message,
      `ConnectionPool: invalid options.factory: connection ${made[0].id}'s ` +
        `inFlight is expected to be a count of requests (a finite number ` +
        `≥ 0), got ${load}`,
    );
    assert.deepEqual(failed, [error], "reported as a failed open");
    assert.equal(made[0].destroyed || made[0].closeCalls > 0, true);
    assert.equal(pool.stats().open, 0);
    await pool.close();
  }
});

test("a held connection whose inFlight turns into no count is dropped as broken when a caller would wait for it, and the caller gets a fresh one instead of a PoolTimeoutError", async () => {
  const { clock, pool, made, closed } = countingPool();
  const first = await pool.acquireShared();
  first.inFlight = Number.NaN;
  const second = watch(pool.getConnection({ timeoutMs: 1000 }));
  await clock.advance(1);
  assert.equal(second.done, true);
  assert.equal(second.error, undefined);
  assert.equal(second.value, made[1], "a fresh connection");
  assert.equal(first.destroyed, true);
  assert.deepEqual(closed, [
    `${first.id}:error:ConnectionPool: invalid options.factory: connection ` +
    `${first.id}'s inFlight is expected to be a count of requests (a ` +
    `finite number ≥ 0), got NaN`,
  ]);
  pool.returnConnection(second.value!);
  await pool.close();
  assert.equal(clock.pendingTimers, 0);
});

test("a connection cleared while its inFlight is no count is dropped as broken, not looked at again every second for ever", async () => {
  const { clock, pool, made } = countingPool();
  const conn = await pool.acquireShared();
  conn.inFlight = Number.NaN;
  pool.clear();
  await clock.advance(5000);
  assert.equal(made[0].destroyed, true);
  assert.equal(clock.pendingTimers, 0, "no recheck armed");
  await pool.close();
});

test("a lent connection returned with an inFlight that is no count is dropped as broken, and the caller waiting gets a fresh one", async () => {
  const { clock, pool, made, closed } = countingPool();
  const lent = await pool.getConnection();
  const waiting = watch(pool.getConnection({ timeoutMs: 1000 }));
  await clock.advance(1);
  assert.equal(waiting.done, false);
  lent.inFlight = Number.NaN;
  pool.returnConnection(lent);
  await clock.advance(1);
  assert.equal(waiting.value, made[1]);
  assert.equal(lent.destroyed, true);
  assert.equal(closed.length, 1);
  assert.match(closed[0], /^\d+:error:.*inFlight is expected to be a count/);
  pool.returnConnection(waiting.value!);
  await pool.close();
});

// ------------------------------------- a connection whose parts throw later

test("a factory's connection that passes the door but throws as the pool takes it in (its closed.then, a second read of isOpen) is a failed open: destroyed, reported, the caller fails at once, nothing unhandled", async () => {
  const trap = () => {
    throw new Error("trap");
  };
  const shapes: [string, (conn: FakeConnection) => void][] = [
    ["closed.then throws", (conn) => {
      Object.defineProperty(conn, "closed", { value: { then: trap } });
    }],
    ["isOpen throws when read again", (conn) => {
      let reads = 0;
      Object.defineProperty(conn, "isOpen", {
        get: () => reads++ === 0 ? true : trap(),
      });
    }],
  ];
  for (const [name, spoil] of shapes) {
    const seen = await rejectionsDuring(async () => {
      const clock = new VirtualClock();
      const made: FakeConnection[] = [];
      const pool = new ConnectionPool<FakeConnection>({
        address: ADDRESS,
        config: { minConnections: 0, maxConnections: 1 },
        clock,
        factory: () => {
          const conn = new FakeConnection();
          spoil(conn);
          made.push(conn);
          return Promise.resolve(conn);
        },
      });
      const failed: unknown[] = [];
      pool.addEventListener("connectionFailed", (e) => {
        failed.push(e.detail.error);
      });
      const got = watch(pool.getConnection({ timeoutMs: 1000 }));
      await clock.advance(1);
      assert.equal(got.done, true, `${name}: no wait`);
      const error = got.error;
      assert.ok(error instanceof InvalidArgumentError, `${name}: ${error}`);
      assert.equal(error.argument, "options.factory");
      assert.match(error.message, /could not be taken in \(it threw "trap"\)/);
      assert.deepEqual(failed, [error]);
      assert.equal(made[0].destroyed, true, `${name}: destroyed`);
      assert.equal(pool.stats().open, 0, `${name}: not held`);
      await pool.close();
      assert.equal(clock.pendingTimers, 0);
    });
    assert.deepEqual(seen, [], name);
  }
});

/**
 * Sets `conn`'s `part` getter to throw once `armed()` says so, as a custom
 * connection's may once torn down (a getter over a table set to null).
 */
function trapGetter(
  conn: FakeConnection,
  part: "isOpen" | "inFlight" | "id" | "closed",
  armed: () => boolean,
): void {
  let value = conn[part];
  Object.defineProperty(conn, part, {
    get: () => {
      if (armed()) throw new TypeError(`${part} trap`);
      return value;
    },
    set: (v) => (value = v),
  });
}

/**
 * A pool of one connection at most, on a virtual clock, whose first
 * connection's `part` getter throws once `armed()` says so; `made` holds
 * every connection its factory made.
 */
function trappedPool(
  part: "isOpen" | "inFlight" | "id" | "closed",
  armed: () => boolean,
) {
  const clock = new VirtualClock();
  const made: FakeConnection[] = [];
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1, idleTimeoutMs: 1000 },
    clock,
    random: () => 0.5,
    factory: () => {
      const conn = new FakeConnection();
      if (made.length === 0) trapGetter(conn, part, armed);
      made.push(conn);
      return Promise.resolve(conn);
    },
  });
  return { clock, made, pool };
}

test("a connection whose isOpen or inFlight getter throws once taken in is dropped as broken wherever the pool meets it off the request path (its timer, returnConnection, getConnection, a waiter served, stats, clear, close): destroyed, its slot freed, nothing thrown or uncaught", async () => {
  const scenes = [
    "timer",
    "return",
    "waiter",
    "get",
    "stats",
    "clear",
    "close",
  ] as const;
  for (const part of ["isOpen", "inFlight"] as const) {
    for (const scene of scenes) {
      const what = `${part}, ${scene}`;
      let armed = false;
      const seen = await rejectionsDuring(async () => {
        const { clock, made, pool } = trappedPool(part, () => armed);
        const closed: string[] = [];
        pool.addEventListener("connectionClosed", (e) => {
          closed.push(`${e.detail.reason}:${e.detail.error?.message}`);
        });
        const lent = scene === "return" || scene === "waiter";
        const first = lent
          ? await pool.getConnection()
          : await pool.acquireShared();
        const waiter = scene === "waiter"
          ? watch(pool.getConnection({ timeoutMs: 500 }))
          : undefined;
        armed = true;
        let late: ReturnType<typeof watch<FakeConnection>> | undefined;
        if (scene === "timer") await clock.advance(1000);
        else if (scene === "return" || scene === "waiter") {
          pool.returnConnection(first);
        } else if (scene === "get") {
          late = watch(pool.getConnection({ timeoutMs: 500 }));
        } else if (scene === "stats") {
          const stats = pool.stats();
          assert.equal(stats.open, 1, what);
          assert.equal(stats.idle, 0, what);
          assert.equal(stats.inFlight, 0, what);
        } else if (scene === "clear") pool.clear();
        await clock.advance(1);
        // Stats leave it be; close() closes it, as any connection, and so
        // does clear() when the getter it reads (inFlight) answers.
        if (scene === "clear" && part === "isOpen") {
          assert.equal(made[0].closeCalls, 1, what);
        } else if (scene !== "stats" && scene !== "close") {
          assert.equal(made[0].destroyed, true, `${what}: destroyed`);
          assert.ok(
            made[0].destroyedWith instanceof InvalidArgumentError,
            `${what}: ${made[0].destroyedWith}`,
          );
          assert.equal(closed.length, 1, what);
          assert.match(
            closed[0],
            new RegExp(
              `^error:.*connection \\d+'s ${part} is expected to be .*readable`,
            ),
            what,
          );
        }
        // The slot is free: the next caller gets a fresh connection.
        for (const got of [waiter, late]) {
          if (got === undefined) continue;
          assert.equal(got.done, true, `${what}: served`);
          assert.equal(got.value, made[1], `${what}: a fresh one`);
          pool.returnConnection(got.value!);
        }
        const closing = watch(pool.close());
        await clock.advance(10_000);
        assert.equal(closing.done, true, `${what}: closed`);
        assert.equal(closing.error, undefined, what);
        assert.ok(
          made[0].destroyed || made[0].closeCalls === 1,
          `${what}: ended at last`,
        );
        assert.equal(clock.pendingTimers, 0, what);
      });
      assert.deepEqual(seen, [], what);
    }
  }
});

test("a connection whose id or closed getter throws once taken in leaves the pool's events and its close untouched: they use what was read as it came in, and nothing is thrown, unhandled or left", async () => {
  for (const part of ["id", "closed"] as const) {
    const scenes = ["break", "return", "checkout", "idle", "clear", "closing"];
    for (const scene of scenes) {
      const what = `${part}, ${scene}`;
      let armed = false;
      const seen = await rejectionsDuring(async () => {
        const { clock, made, pool } = trappedPool(part, () => armed);
        const events: string[] = [];
        for (
          const type of ["connectionClosed", "checkedOut", "checkedIn"] as const
        ) {
          pool.addEventListener(type, (e) => {
            events.push(`${type}:${e.detail.connectionId}`);
          });
        }
        const lent = scene === "return" || scene === "closing";
        const conn = lent
          ? await pool.getConnection()
          : await pool.acquireShared();
        const id = made[0].id;
        armed = true;
        if (scene === "break") conn.break();
        else if (scene === "return") pool.returnConnection(conn);
        else if (scene === "checkout") {
          assert.equal(await pool.acquireShared(), conn, what);
        } else if (scene === "idle") await clock.advance(1000);
        else if (scene === "clear") pool.clear();
        // A lent connection that breaks while the pool closes: the close
        // waits for it, by its closed.
        const closing = watch(pool.close());
        if (scene === "closing") conn.break();
        await clock.advance(1);
        if (scene === "checkout" || scene === "return") {
          assert.ok(events.includes(`checkedOut:${id}`), `${what}: ${events}`);
        }
        await clock.advance(10_000);
        assert.equal(closing.done, true, what);
        assert.equal(closing.error, undefined, what);
        assert.ok(
          events.includes(`connectionClosed:${id}`),
          `${what}: ${events}`,
        );
        // Only the first is trapped, and no other was made.
        assert.equal(made.length, 1, what);
        assert.equal(clock.pendingTimers, 0, what);
      });
      assert.deepEqual(seen, [], what);
    }
  }
});

// ---------------------------------------------------------- the pool's events

test("ConnectionPool.addEventListener and removeEventListener refuse an event name the pool never dispatches (a typo heard nothing), a non-listener and bad options with InvalidArgumentError naming them", () => {
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    factory: () => Promise.resolve(new FakeConnection()),
  });
  const trap = () => {
    throw new Error("trap");
  };
  for (const method of ["addEventListener", "removeEventListener"] as const) {
    const call = (...args: unknown[]) =>
      (pool[method] as (...a: unknown[]) => void)(...args);
    const refused = (argument: string, message?: RegExp) => (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === argument &&
      e.message.startsWith(`ConnectionPool.${method}: `) &&
      (message === undefined || message.test(e.message));
    assert.throws(
      () => call("checkedin", () => {}),
      refused("type", /expected an event name: poolCreated, .*checkedIn/),
    );
    assert.throws(() => call(Symbol("checkedIn"), () => {}), refused("type"));
    assert.throws(() => call("retry", () => {}), refused("type"));
    assert.throws(() => call("checkedIn", "listener"), refused("listener"));
    assert.throws(() => call("checkedIn", {}), refused("listener"));
    assert.throws(
      () => call("checkedIn", () => {}, new Proxy({}, { get: trap })),
      refused("options.once", /could not be read \(trap\)/),
    );
    assert.throws(
      () => call("checkedIn", () => {}, { capture: "yes" }),
      refused("options.capture"),
    );
  }
  let heard = 0;
  const listener = () => heard++;
  pool.addEventListener("checkedIn", listener, { once: true });
  assert.equal(pool.hasListeners("checkedIn"), true);
  pool.removeEventListener("checkedIn", listener);
  assert.equal(pool.hasListeners("checkedIn"), false);
  pool.addEventListener("checkedIn", null);
  assert.equal(heard, 0);
});

test("a signal whose reason cannot be read is refused at the pool's door with InvalidArgumentError naming it, not taken in and waited on; nothing uncaught", async () => {
  const { clock, pool } = countingPool();
  const lent = await pool.getConnection();
  const controller = new AbortController();
  Object.defineProperty(controller.signal, "reason", {
    get() {
      throw new Error("reason trap");
    },
  });
  // A redefined reason is no real AbortSignal (isAbortSignal): were it
  // taken in, the pool's abort listener would read the reason inside
  // abort(), where a throw is reported as uncaught (the listener reads it
  // through fieldOf for a signal that changes after the door).
  const waiting = watch(pool.acquireShared({ signal: controller.signal }));
  await clock.advance(1);
  assert.equal(waiting.done, true, "refused at once");
  assert.ok(
    waiting.error instanceof InvalidArgumentError,
    String(waiting.error),
  );
  assert.match(waiting.error.message, /signal/);
  controller.abort();
  // One that changes after the door: the waiter still fails as aborted.
  const later = new AbortController();
  const queued = watch(pool.acquireShared({ signal: later.signal }));
  await clock.advance(1);
  assert.equal(queued.done, false);
  Object.defineProperty(later.signal, "reason", {
    get() {
      throw new Error("reason trap");
    },
  });
  later.abort();
  await clock.advance(1);
  assert.ok(queued.error instanceof AbortedError, String(queued.error));
  assert.match(queued.error.message, /acquireShared\(\) for .* aborted/);
  pool.returnConnection(lent);
  await pool.close();
});

test("stats() counts only what counts: a shared connection whose inFlight turned NaN adds nothing to inFlight, which stays a number", async () => {
  const { pool } = countingPool({ maxConnections: 2 });
  const a = await pool.acquireShared();
  a.inFlight = 3;
  const b = await pool.getConnection();
  b.inFlight = Number.NaN;
  const stats = pool.stats();
  assert.equal(stats.inFlight, 3);
  assert.equal(stats.open, 2);
  assert.equal(stats.idle, 0);
  assert.equal(stats.inUse, 1);
  pool.returnConnection(b);
  await pool.close();
});

// ------------------------------- close() and destroy() of another shape

test("a connection whose close() returns no promise (a sync close) is closed, not destroyed at once as if the close had failed", async () => {
  const clock = new VirtualClock();
  const made: FakeConnection[] = [];
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1 },
    clock,
    factory: () => {
      const conn = new FakeConnection();
      // A JavaScript caller's connection: its close() starts a graceful
      // close (requests in flight finish) and returns nothing.
      conn.close = function (this: FakeConnection) {
        this.closeCalls++;
        this.isOpen = false;
        clock.setTimeout(() => this.destroy(), 100);
        return undefined as unknown as Promise<void>;
      };
      made.push(conn);
      return Promise.resolve(conn);
    },
  });
  pool.returnConnection(await pool.getConnection());
  const closing = watch(pool.close());
  await clock.advance(0);
  assert.equal(made[0].closeCalls, 1);
  assert.equal(made[0].destroyed, false, "its graceful close is let run");
  await clock.advance(100);
  assert.equal(closing.done, true);
  assert.equal(made[0].destroyedWith, undefined);
});

test("a connection whose destroy() returns a promise that rejects leaves no unhandled rejection", async () => {
  const seen = await rejectionsDuring(async () => {
    const { clock, pool, made } = countingPool();
    for (const conn of [await pool.acquireShared()]) {
      conn.destroy = function (this: FakeConnection, error?: Error) {
        FakeConnection.prototype.destroy.call(this, error);
        return Promise.reject(new Error("async destroy failed")) as never;
      };
    }
    // A failed heartbeat, a failed open, a given-up close destroy; here a
    // connection found with an inFlight that is no count.
    made[0].inFlight = Number.NaN;
    const got = watch(pool.getConnection({ timeoutMs: 100 }));
    await clock.advance(1);
    assert.equal(made[0].destroyed, true);
    assert.equal(got.value, made[1]);
    pool.returnConnection(got.value!);
    await pool.close();
  });
  assert.deepEqual(seen, []);
});

// ------------------------------------------------ everything at once

test("whatever a custom factory's connections and the callers do (closes that hang, breaks, inFlight of any value, clear, close midway, heartbeats that hang or fail, refused opens), every call settles with an SDK error or a connection, close() resolves, no timer is left and nothing is unhandled", async () => {
  const { fc } = await import("./support/fc.ts");
  const { NodewireError } = await import("../src/errors.ts");
  const index = fc.nat(5);
  const op = fc.oneof(
    fc.record({ k: fc.constant("get"), t: fc.integer({ min: 0, max: 300 }) }),
    fc.record({ k: fc.constant("share"), t: fc.integer({ min: 0, max: 300 }) }),
    fc.record({ k: fc.constant("return"), i: index }),
    fc.record({
      k: fc.constant("load"),
      i: index,
      v: fc.constantFrom(0, 1, 5, 200, Number.NaN, -1, Infinity),
    }),
    fc.record({ k: fc.constant("break"), i: index }),
    fc.record({ k: fc.constant("hang"), i: index }),
    fc.record({ k: fc.constant("clear") }),
    fc.record({ k: fc.constant("close") }),
    fc.record({
      k: fc.constant("beat"),
      v: fc.constantFrom("ok", "hang", "reject", "throw", "value"),
    }),
    fc.record({
      k: fc.constant("advance"),
      t: fc.integer({ min: 0, max: 2000 }),
    }),
  );
  const seen = await rejectionsDuring(async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { maxLength: 30 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        async (ops, refuse, min) => {
          const clock = new VirtualClock();
          const made: StuckClose[] = [];
          const hanging = new Set<StuckClose>();
          let beat = "ok";
          let calls = 0;
          const pool = new ConnectionPool<StuckClose>({
            address: ADDRESS,
            config: {
              minConnections: min,
              maxConnections: 3,
              connectionTimeoutMs: 500,
              idleTimeoutMs: 1000,
              maxLifetimeMs: 5000,
              heartbeatIntervalMs: 300,
              multiplexThreshold: 4,
            },
            clock,
            random: () => 0.5,
            heartbeat: () => {
              if (beat === "hang") return new Promise(() => {});
              if (beat === "reject") return Promise.reject(new Error("beat"));
              if (beat === "throw") throw new Error("beat");
              return beat === "value" ? 5 as never : Promise.resolve();
            },
            factory: () => {
              if (refuse && ++calls % 3 === 0) {
                return Promise.reject(new Error("refused"));
              }
              // Closes at once unless told to hang (StuckClose's close).
              const conn = new StuckClose();
              const hang = conn.close.bind(conn);
              conn.close = () =>
                hanging.has(conn)
                  ? hang()
                  : FakeConnection.prototype.close.call(conn);
              made.push(conn);
              return Promise.resolve(conn);
            },
          });
          const lent: StuckClose[] = [];
          const bad: string[] = [];
          const follow = (promise: Promise<StuckClose>, exclusive: boolean) =>
            promise.then((conn) => {
              if (exclusive) lent.push(conn);
            }, (error) => {
              if (!(error instanceof NodewireError)) {
                if (error?.message !== "refused") bad.push(String(error));
              }
            });
          const pick = (i: number) => made[i % Math.max(1, made.length)];
          for (const o of ops) {
            if (o.k === "get") {
              follow(pool.getConnection({ timeoutMs: o.t }), true);
            } else if (o.k === "share") {
              follow(pool.acquireShared({ timeoutMs: o.t }), false);
            } else if (o.k === "return") {
              const conn = lent.splice(o.i % Math.max(1, lent.length), 1)[0];
              if (conn) pool.returnConnection(conn);
            } else if (o.k === "load") {
              if (pick(o.i)) pick(o.i).inFlight = o.v;
            } else if (o.k === "break") pick(o.i)?.break();
            else if (o.k === "hang") {
              if (pick(o.i)) hanging.add(pick(o.i));
            } else if (o.k === "clear") pool.clear(new Error("unhealthy"));
            else if (o.k === "close") {
              pool.close().catch((e) => bad.push(`close rejected ${e}`));
            } else if (o.k === "beat") beat = o.v;
            else await clock.advance(o.t);
          }
          // The callers' requests finish and they give back what they hold.
          for (const conn of made) conn.inFlight = 0;
          for (let round = 0; round < 5; round++) {
            await clock.advance(0);
            for (const conn of lent.splice(0)) pool.returnConnection(conn);
          }
          const closing = watch(pool.close());
          await clock.advance(10_000);
          if (!closing.done) bad.push("close() did not resolve");
          if (clock.pendingTimers !== 0) {
            bad.push(`${clock.pendingTimers} timers left`);
          }
          assert.deepEqual(bad, []);
        },
      ),
      { numRuns: 150 },
    );
  });
  assert.deepEqual(seen, []);
});
