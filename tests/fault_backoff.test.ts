import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionRefusedError } from "../src/errors.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import type { PoolableConnection } from "../src/pool/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

function refusingPool() {
  const clock = new VirtualClock();
  const calls: number[] = [];
  let refuse = true;
  let nextId = 1;
  const pool = new ConnectionPool<PoolableConnection>({
    address: "127.0.0.1:7000",
    config: { minConnections: 1, maxConnections: 2 },
    clock,
    factory: () => {
      calls.push(clock.now());
      if (refuse) {
        return Promise.reject(
          new ConnectionRefusedError({ hostname: "127.0.0.1", port: 7000 }),
        );
      }
      let settle!: (error: Error | undefined) => void;
      const conn: PoolableConnection = {
        id: nextId++,
        inFlight: 0,
        isOpen: true,
        closed: new Promise((resolve) => (settle = resolve)),
        close: () => Promise.resolve(settle(undefined)),
        destroy: (error) => settle(error),
      };
      return Promise.resolve(conn);
    },
  });
  return { clock, calls, pool, up: () => (refuse = false) };
}

test("after repeated failures, callers get the last failure at once and no connect of their own", async () => {
  const { clock, calls, pool } = refusingPool();
  pool.start();
  await clock.advance(150); // failed at 0 and 100; next attempt at 300
  assert.deepEqual(calls, [0, 100]);
  const outcomes = await Promise.allSettled(
    Array.from({ length: 50 }, () => pool.acquireShared({ timeoutMs: 1000 })),
  );
  assert.ok(
    outcomes.every((o) =>
      o.status === "rejected" && o.reason instanceof ConnectionRefusedError
    ),
  );
  assert.equal(clock.now(), 150, "at once, not after the acquire timeout");
  assert.deepEqual(calls, [0, 100], "50 callers, not one connect attempt");
  await clock.advance(150);
  assert.deepEqual(calls, [0, 100, 300], "the backoff schedule goes on");
  await pool.close();
});

test("after a single failure a stranded caller still gets an attempt at once", async () => {
  const { clock, calls, pool, up } = refusingPool();
  pool.start();
  await clock.advance(50);
  up();
  const conn = await pool.acquireShared();
  assert.equal(conn.id, 1);
  assert.deepEqual(calls, [0, 50]);
  await pool.close();
});

test("ignoreBackoff (health checks) tries at once even after repeated failures", async () => {
  const { clock, calls, pool, up } = refusingPool();
  pool.start();
  await clock.advance(1000); // failures at 0, 100, 300, 700; next at 1500
  assert.deepEqual(calls, [0, 100, 300, 700]);
  up();
  const conn = await pool.acquireShared({ ignoreBackoff: true });
  assert.equal(clock.now(), 1000);
  assert.deepEqual(calls, [0, 100, 300, 700, 1000]);
  assert.ok(conn.isOpen);
  const other = await pool.acquireShared();
  assert.equal(other, conn, "and others are served by what it opened");
  await pool.close();
});
