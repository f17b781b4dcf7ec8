// A connection lent by getConnection() carries no new shared request:
// requests in flight on it finish, but nothing handed out for shared use
// is sent on it while it is lent. A shared caller sends only once its
// promise's continuation runs, a few microtasks after the pool handed it
// the connection, so the pool must not lend that connection in between:
// not in the same pass over the waiters, not from a checkedIn listener's
// acquireShared(), not to a getConnection() right after an
// acquireShared(). Virtual clock throughout; connections are fakes that
// record every shared request sent while they are lent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import type { PoolConfig } from "../src/config/shapes.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { PoolClosedError } from "../src/errors.ts";
import { runtimeGlobals as g } from "./helpers.ts";
import { memoryScene } from "./support/memory_scene.ts";
import { ops, replyText } from "../testing/ops.ts";
import { FakeConnection } from "./support/fake_connection.ts";

const ADDRESS = "10.0.0.1:7000";
const TIMEOUT_MS = 5000;

/** A fake connection that knows whether the pool lends it right now. */
class Wire extends FakeConnection {
  /** Lent, as the pool's checkedOut (exclusive) and checkedIn events say. */
  lent = false;

  constructor(id: number, private readonly violations: string[]) {
    super(id);
  }

  /** A shared holder's request goes out on it. */
  sendShared(who: string): void {
    if (this.lent) {
      this.violations.push(`${who} sent on connection ${this.id} while lent`);
    }
    this.inFlight++;
  }
}

/**
 * A pool whose connections open `connectMs` virtual ms after they are
 * asked for (or when `deliver()` is called, with `connectMs` undefined),
 * and whose events keep each Wire's `lent` true.
 */
function scene(
  config: Partial<PoolConfig>,
  connectMs?: () => number,
) {
  const clock = new VirtualClock();
  const violations: string[] = [];
  const wires: Wire[] = [];
  const pending: (() => void)[] = [];
  let nextId = 1;
  const pool = new ConnectionPool<Wire>({
    address: ADDRESS,
    config: {
      minConnections: 0,
      maxConnections: 2,
      connectionTimeoutMs: TIMEOUT_MS,
      ...config,
    },
    clock,
    random: () => 0.5,
    // Heeds its signal, so that close() does not wait out its grace for
    // an open the test never lets finish.
    factory: (signal) =>
      new Promise<Wire>((resolve, reject) => {
        let timer: unknown;
        const open = () => {
          signal.removeEventListener("abort", onAbort);
          const wire = new Wire(nextId++, violations);
          wires.push(wire);
          resolve(wire);
        };
        const onAbort = () => {
          clock.clearTimeout(timer);
          const i = pending.indexOf(open);
          if (i >= 0) pending.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        if (connectMs === undefined) pending.push(open);
        else timer = clock.setTimeout(open, connectMs());
      }),
  });
  const byId = (id: number) => wires.find((w) => w.id === id)!;
  pool.addEventListener("checkedOut", (event) => {
    if (event.detail.mode === "exclusive") {
      byId(event.detail.connectionId as number).lent = true;
    }
  });
  pool.addEventListener("checkedIn", (event) => {
    byId(event.detail.connectionId as number).lent = false;
  });
  /** Opens the oldest connection asked for. */
  const deliver = () => {
    assert.ok(pending.length > 0, "a connection was asked for");
    pending.shift()!();
  };
  return { clock, pool, violations, wires, deliver };
}

/** A shared caller that sends as soon as it holds its connection. */
function sharedCaller(pool: ConnectionPool<Wire>, who: string) {
  const state: { conn?: Wire; error?: unknown } = {};
  pool.acquireShared().then((conn) => {
    state.conn = conn;
    conn.sendShared(who);
  }, (error) => (state.error = error));
  return state;
}

/** An exclusive caller that holds its connection until the test returns it. */
function exclusiveCaller(pool: ConnectionPool<Wire>) {
  const state: { conn?: Wire; error?: unknown } = {};
  pool.getConnection().then(
    (conn) => (state.conn = conn),
    (error) => (state.error = error),
  );
  return state;
}

/** Lets the pool's zero-delay work run, a bounded number of times. */
async function settle(clock: VirtualClock, done: () => boolean) {
  for (let i = 0; i < 20 && !done(); i++) await clock.advance(0);
}

for (const maxConnections of [1, 2]) {
  test(`lend: a shared and an exclusive caller queued while the first connection opens (maxConnections ${maxConnections}): the shared request is not sent on the lent connection`, async () => {
    const { clock, pool, violations, deliver } = scene({ maxConnections });
    const shared = sharedCaller(pool, "the shared caller");
    const exclusive = exclusiveCaller(pool);
    deliver();
    await settle(clock, () => exclusive.conn !== undefined);
    if (maxConnections === 2 && exclusive.conn === undefined) {
      // Its connection is being opened: the first one carries a request.
      deliver();
      await settle(clock, () => exclusive.conn !== undefined);
    }
    assert.deepEqual(violations, []);
    assert.ok(shared.conn, "the shared caller is served");
    assert.ok(exclusive.conn, "the exclusive caller is served");
    assert.equal(shared.error, undefined);
    assert.equal(exclusive.error, undefined);
    assert.equal(clock.now(), 0, "nobody waited out a timeout");
    pool.returnConnection(exclusive.conn);
    await pool.close();
    assert.equal(clock.pendingTimers, 0, "no timer left behind");
  });
}

test("lend: a checkedIn listener's acquireShared() while an exclusive caller waits: its request is not sent on the connection lent next", async () => {
  const { clock, pool, violations, deliver } = scene({ maxConnections: 1 });
  const first = exclusiveCaller(pool);
  deliver();
  await settle(clock, () => first.conn !== undefined);
  assert.ok(first.conn);
  const next = exclusiveCaller(pool);
  let shared: { conn?: Wire; error?: unknown } | undefined;
  pool.addEventListener("checkedIn", () => {
    shared = sharedCaller(pool, "the listener's shared caller");
  }, { once: true });
  pool.returnConnection(first.conn);
  await settle(clock, () => next.conn !== undefined);
  assert.deepEqual(violations, []);
  assert.ok(shared?.conn, "the listener's caller is served");
  assert.ok(next.conn, "the waiting exclusive caller is served");
  assert.equal(clock.now(), 0, "nobody waited out a timeout");
  pool.returnConnection(next.conn);
  await pool.close();
  assert.equal(clock.pendingTimers, 0, "no timer left behind");
});

test("lend: getConnection() right after acquireShared() resolved with the idle connection does not lend it before the shared request is sent", async () => {
  const { clock, pool, violations, deliver } = scene({ maxConnections: 1 });
  const warm = exclusiveCaller(pool);
  deliver();
  await settle(clock, () => warm.conn !== undefined);
  pool.returnConnection(warm.conn!);
  const shared = sharedCaller(pool, "the shared caller");
  const exclusive = exclusiveCaller(pool);
  await settle(clock, () => exclusive.conn !== undefined);
  assert.deepEqual(violations, []);
  assert.ok(shared.conn);
  assert.ok(exclusive.conn);
  assert.equal(clock.now(), 0, "nobody waited out a timeout");
  pool.returnConnection(exclusive.conn);
  await pool.close();
});

for (const via of ["tryAcquireShared", "acquireShared"] as const) {
  test(`lend: a checkedOut listener's getConnection() is not lent the connection ${via}() is handing out`, async () => {
    const { clock, pool, violations, deliver } = scene({ maxConnections: 1 });
    const warm = exclusiveCaller(pool);
    deliver();
    await settle(clock, () => warm.conn !== undefined);
    pool.returnConnection(warm.conn!);
    let listener: { conn?: Wire; error?: unknown } | undefined;
    pool.addEventListener("checkedOut", (event) => {
      if (event.detail.mode === "shared" && listener === undefined) {
        listener = exclusiveCaller(pool);
      }
    });
    if (via === "tryAcquireShared") {
      const conn = pool.tryAcquireShared();
      assert.ok(conn);
      conn.sendShared("the tryAcquireShared() caller");
    } else {
      const shared = sharedCaller(pool, "the acquireShared() caller");
      await settle(clock, () => shared.conn !== undefined);
    }
    await settle(clock, () => listener?.conn !== undefined);
    assert.deepEqual(violations, []);
    assert.ok(listener?.conn, "the listener's caller is served");
    assert.equal(clock.now(), 0, "nobody waited out a timeout");
    pool.returnConnection(listener.conn);
    await pool.close();
  });
}

test("lend: a pool closed while an exclusive caller waits for a shared holder's turn clears the turn's timer and fails the caller", async () => {
  const { clock, pool, deliver } = scene({ maxConnections: 1 });
  const shared = sharedCaller(pool, "the shared caller");
  const exclusive = exclusiveCaller(pool);
  deliver();
  // The shared caller's promise settles in microtasks; the exclusive one
  // waits for the next task of the event loop, which close() cancels.
  for (let i = 0; i < 50 && shared.conn === undefined; i++) {
    await Promise.resolve();
  }
  assert.ok(shared.conn, "the shared caller is served");
  assert.equal(exclusive.conn, undefined, "not lent the shared caller's");
  // Where the runtime lists its timers (Node, Deno; Bun's list is empty).
  const info = g.Bun ? undefined : g.process?.getActiveResourcesInfo;
  const timers = () => info?.().filter((r) => r === "Timeout").length;
  const before = timers();
  const closing = pool.close();
  if (info !== undefined) {
    assert.equal(timers(), before! - 1, "the turn's timer is cleared");
  }
  await closing;
  await settle(clock, () => exclusive.error !== undefined);
  assert.ok(exclusive.error instanceof PoolClosedError, "the caller fails");
  assert.equal(exclusive.conn, undefined);
  assert.equal(clock.pendingTimers, 0, "no pool timer left behind");
});

test("lend: a client's burst of requests and a withConnection() queued while the first connection opens: the lent connection carries none of the burst", async () => {
  await memoryScene(1, {
    poolConfig: { minConnections: 0, maxConnections: 2, idleTimeoutMs: 1000 },
  }, async ({ client, clock }) => {
    await client.request(ops.echo("warm"));
    await clock.advance(2000); // the connection idles out: none is open
    const burst = Array.from(
      { length: 5 },
      () => client.request(ops.sleep(10, "x")),
    );
    let inFlight: number | undefined;
    const work = client.withConnection((connection) => {
      inFlight = connection.inFlight;
      return Promise.resolve();
    });
    for (let i = 0; i < 20 && inFlight === undefined; i++) {
      await clock.advance(0);
    }
    assert.equal(inFlight, 0, "no request of the burst on the lent connection");
    await clock.advance(10);
    assert.deepEqual(
      (await Promise.all(burst)).map((reply) => replyText(reply)),
      ["x", "x", "x", "x", "x"],
    );
    await work;
  });
});

type Step =
  | { kind: "shared"; holdMs: number }
  | { kind: "exclusive"; holdMs: number }
  | { kind: "try"; holdMs: number }
  | { kind: "listener" }
  | { kind: "outListener" }
  | { kind: "advance"; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.integer({ min: 0, max: 30 }).map((holdMs): Step => ({
    kind: "shared",
    holdMs,
  })),
  fc.integer({ min: 0, max: 30 }).map((holdMs): Step => ({
    kind: "exclusive",
    holdMs,
  })),
  fc.integer({ min: 0, max: 30 }).map((holdMs): Step => ({
    kind: "try",
    holdMs,
  })),
  fc.constant<Step>({ kind: "listener" }),
  fc.constant<Step>({ kind: "outListener" }),
  fc.integer({ min: 0, max: 20 }).map((ms): Step => ({ kind: "advance", ms })),
);

test("lend: property: whatever mix of shared and exclusive callers, returns, opens and checkedIn and checkedOut listeners, no shared request is sent on a lent connection, and every caller is served", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 1, maxLength: 25 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.integer({ min: 0, max: 15 }), {
        minLength: 1,
        maxLength: 8,
      }),
      async (steps, maxConnections, delays) => {
        let opened = 0;
        const { clock, pool, violations } = scene(
          { maxConnections },
          () => delays[opened++ % delays.length],
        );
        let callers = 0;
        let served = 0;
        let held = 0;
        const failures: unknown[] = [];
        const shared = (who: string, holdMs: number) => {
          callers++;
          pool.acquireShared().then((conn) => {
            served++;
            if (!conn.isOpen) return;
            conn.sendShared(who);
            clock.setTimeout(() => conn.inFlight--, holdMs);
          }, (error) => failures.push(error));
        };
        const exclusive = (holdMs: number) => {
          callers++;
          pool.getConnection().then((conn) => {
            served++;
            held++;
            clock.setTimeout(() => {
              held--;
              pool.returnConnection(conn);
            }, holdMs);
          }, (error) => failures.push(error));
        };
        for (const [i, s] of steps.entries()) {
          switch (s.kind) {
            case "shared":
              shared(`shared caller ${i}`, s.holdMs);
              break;
            case "exclusive":
              exclusive(s.holdMs);
              break;
            case "try": {
              // Sends at once, as the request path does.
              const conn = pool.tryAcquireShared();
              if (conn !== undefined) {
                conn.sendShared(`tryAcquireShared caller ${i}`);
                clock.setTimeout(() => conn.inFlight--, s.holdMs);
              }
              break;
            }
            case "outListener": {
              const onShared = (event: { detail: { mode: string } }) => {
                if (event.detail.mode !== "shared") return;
                pool.removeEventListener("checkedOut", onShared);
                exclusive(5);
              };
              pool.addEventListener("checkedOut", onShared);
              break;
            }
            case "listener":
              pool.addEventListener(
                "checkedIn",
                () => shared(`listener ${i}`, 5),
                { once: true },
              );
              break;
            case "advance":
              await clock.advance(s.ms);
              break;
          }
        }
        // Bounded: every hold and open is short next to the timeout.
        const busy = () => served + failures.length < callers || held > 0;
        for (let i = 0; i < 200 && busy(); i++) await clock.advance(10);
        await pool.close();
        assert.deepEqual(violations, []);
        assert.deepEqual(failures, []);
        assert.equal(served, callers);
        assert.ok(clock.now() < TIMEOUT_MS, "nobody waited out a timeout");
      },
    ),
    { numRuns: 100 },
  );
});
