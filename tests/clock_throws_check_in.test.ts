// A custom clock whose now() throws as a lent connection comes back
// (`returnConnection()`, whose check-in reads the clock once): the
// connection went back, but the caller got the clock's raw Error, the
// waiter queued for a connection to itself was not handed it (nothing
// pumped), the connection kept the time it was lent at, and the
// housekeeper's timer was not armed again, so an idle connection above
// the minimum stayed open for good. Now the caller gets the ConfigError
// naming `clock`, the waiter is served (or failed with that error while
// the clock stays broken), and the connection's idle time starts at the
// housekeeper's next reading, which arms its timer again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { breakableClock, fakePoolOn } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** `fn`'s throw, or a failure when it returns. */
function thrownBy(fn: () => void): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected a throw");
}

function assertClockError(error: unknown, broke: Error): void {
  assert.ok(error instanceof ConfigError, String(error));
  assert.equal(error.field, "clock");
  assert.equal(error.cause, broke);
}

for (const broken of ["only at the check-in", "for good"] as const) {
  test(
    `returnConnection with a clock broken ${broken}: a ConfigError naming the clock, and the exclusive waiter is ${
      broken === "for good" ? "served or failed with it" : "served"
    }`,
    async () => {
      const { virtual, clock, broke, state } = breakableClock();
      const pool = fakePoolOn(clock, { minConnections: 0, maxConnections: 1 });
      const watch = watchEscapes();
      let escaped: unknown[] = [];
      try {
        const conn = await pool.getConnection();
        let waiter: unknown = "pending";
        // Read through a call: the compiler takes it for "pending" still.
        const got = (): unknown => waiter;
        pool.getConnection({ timeoutMs: 5_000 }).then(
          (c) => (waiter = c),
          (e) => (waiter = e),
        );
        await tickEnds();
        assert.equal(waiter, "pending");
        await virtual.advance(100);
        // Once: the check-in's own reading.
        state.breaks = broken === "for good" ? Infinity : 1;
        state.reads = 0;
        // Before: the clock's raw Error.
        assertClockError(thrownBy(() => pool.returnConnection(conn)), broke);
        for (let i = 0; i < 5 && got() === "pending"; i++) await tickEnds();
        state.reads = Infinity;
        // Before: still "pending", until its timeout.
        if (broken === "only at the check-in") assert.equal(got(), conn);
        else if (got() !== conn) assertClockError(got(), broke);
        if (got() === conn) pool.returnConnection(conn);
        assert.equal(pool.stats().inUse, 0);
      } finally {
        state.reads = Infinity;
        await pool.close();
        escaped = await watch.stop();
      }
      assert.deepEqual(escaped, []);
      assert.equal(virtual.pendingTimers, 0);
    },
  );
}

test("returnConnection with a clock broken only at the check-in: the connection idles out idleTimeoutMs after the housekeeper's next reading, not before", async () => {
  const { virtual, clock, broke, state } = breakableClock();
  const pool = fakePoolOn(clock, {
    minConnections: 0,
    maxConnections: 1,
    idleTimeoutMs: 1_000,
  });
  const watch = watchEscapes();
  let escaped: unknown[] = [];
  try {
    const conn = await pool.getConnection();
    // Lent for longer than its idle timeout: a stale lastUsedAt would
    // have it closed as idle at once.
    await virtual.advance(5_000);
    state.breaks = 1;
    state.reads = 0;
    assertClockError(thrownBy(() => pool.returnConnection(conn)), broke);
    await virtual.advance(999);
    assert.equal(conn.isOpen, true, "closed before its idle timeout");
    // Before: no timer armed, open for good.
    await virtual.advance(2);
    assert.equal(conn.isOpen, false, "not closed once idle");
  } finally {
    state.reads = Infinity;
    await pool.close();
    escaped = await watch.stop();
  }
  assert.deepEqual(escaped, []);
  assert.equal(virtual.pendingTimers, 0);
});
