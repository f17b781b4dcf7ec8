// A pool's factory and the connections it delivers are the user's own in
// /core: they may fail with anything. A factory that rejected with a
// proxy whose traps throw, or an object without a prototype, made the
// pool's failure handler throw (an unhandled rejection) and its waiter
// sat until the acquire timeout; a connection whose `closed` rejected so
// left an unhandled rejection behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { recordUncaught } from "./support/uncaught.ts";

const trap = () => {
  throw new Error("trap");
};
/** Values no `instanceof` or `String()` can look at without throwing. */
const unreadable = () =>
  fc.constantFrom<() => unknown>(
    () => new Proxy({}, { get: trap, getPrototypeOf: trap }),
    () => Object.create(null),
  );

/** Lets what the runtime reports as unhandled be reported. */
const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

test("a factory that fails with what cannot be read fails the waiter at once, nothing unhandled", async () => {
  const reported = recordUncaught(true);
  await fc.assert(
    fc.asyncProperty(unreadable(), async (make) => {
      const clock = new VirtualClock();
      const pool = new ConnectionPool<FakeConnection>({
        address: "127.0.0.1:7000",
        config: { minConnections: 0, maxConnections: 1 },
        factory: () => Promise.reject(make()),
        clock,
        random: () => 0.5,
      });
      const outcome = pool.getConnection().then(
        () => "connected",
        (e: unknown) => e,
      );
      await clock.advance(0);
      const error = await Promise.race([outcome, turn().then(() => "waiting")]);
      assert.ok(error instanceof Error, String(error));
      assert.equal(error.message, "an object");
      const closing = pool.close();
      await clock.advance(1000);
      await closing;
      assert.equal(clock.pendingTimers, 0);
    }),
    { numRuns: 10 },
  );
  await turn();
  assert.deepEqual(reported, []);
});

test("a connection whose closed rejects with what cannot be read is let go of, nothing unhandled", async () => {
  const reported = recordUncaught(true);
  const clock = new VirtualClock();
  let fail!: (reason: unknown) => void;
  const pool = new ConnectionPool<FakeConnection>({
    address: "127.0.0.1:7000",
    config: { minConnections: 0, maxConnections: 1 },
    factory: () => {
      const connection = new FakeConnection();
      Object.defineProperty(connection, "closed", {
        value: new Promise((_, reject) => (fail = reject)),
      });
      return Promise.resolve(connection);
    },
    clock,
    random: () => 0.5,
  });
  pool.returnConnection(await pool.getConnection());
  assert.equal(pool.stats().open, 1);
  fail(new Proxy({}, { get: trap, getPrototypeOf: trap }));
  await clock.advance(0);
  assert.equal(pool.stats().open, 0);
  const closing = pool.close();
  await clock.advance(1000);
  await closing;
  await turn();
  assert.deepEqual(reported, []);
});
