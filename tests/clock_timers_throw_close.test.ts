// A custom clock whose setTimeout() throws once the client is up, met by
// a shutdown. The closing pool's wait for a busy connection's close armed
// no timer: each wait ended at once and drainPool looked again, for good,
// a loop of microtasks that starved the event loop (nothing else ran, the
// close never settled). disconnect()'s grace period armed its timer in
// its constructor: the throw rejected disconnect() with the clock's raw
// Error, every connection left open. Now a wait the clock cannot time is
// given up: the pool destroys the connections it still waits for, and
// the grace is over at once (what is in flight is cancelled); both name
// the clock's setTimeout() in a ConfigError.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { Clock } from "../src/clock.ts";
import { ConfigError, NodewireError } from "../src/errors.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { ADDRESS } from "./support/pool_scene.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** How many refused timers make a spin: then the clock arms them again. */
const SPIN = 1000;

/**
 * A virtual clock whose setTimeout() throws `broke` while `state.broken`,
 * counting the refusals; after SPIN of them it mends itself, so that a
 * loop that asks again and again ends (and the test fails, not hangs).
 */
function timerlessClock() {
  const virtual = new VirtualClock();
  const broke = new Error("no timers");
  const state = { broken: false, refused: 0 };
  const clock: Clock = {
    now: () => virtual.now(),
    setTimeout: (fn, ms) => {
      if (state.broken) {
        if (++state.refused >= SPIN) state.broken = false;
        throw broke;
      }
      return virtual.setTimeout(fn, ms);
    },
    clearTimeout: (id) => virtual.clearTimeout(id),
  };
  return { virtual, clock, broke, state };
}

/** A connection whose close() waits for its requests, as the client's does. */
class Draining extends FakeConnection {
  override close(): Promise<void> {
    this.closeCalls++;
    this.isOpen = false;
    return this.closed.then(() => {});
  }
}

test("ConnectionPool.close() waiting for a busy connection while the clock's setTimeout() throws: the connection is destroyed with a ConfigError naming the clock, close() resolves, no spin", async () => {
  const { virtual, clock, broke, state } = timerlessClock();
  const pool = new ConnectionPool<Draining>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1 },
    clock,
    random: () => 0.5,
    factory: () => Promise.resolve(new Draining()),
  });
  const conn = await pool.acquireShared();
  conn.inFlight = 1; // its node never answers
  state.broken = true;
  let closed = false;
  pool.close().then(() => (closed = true));
  await tickEnds();
  // Before: SPIN refusals (the loop ran until the clock mended), the
  // connection still open.
  assert.ok(state.refused < 5, `setTimeout() refused ${state.refused} times`);
  assert.equal(closed, true);
  assert.ok(conn.destroyedWith instanceof ConfigError);
  assert.equal(conn.destroyedWith.field, "clock");
  assert.equal(conn.destroyedWith.cause, broke);
  assert.match(conn.destroyedWith.message, /setTimeout\(\)/);
  assert.deepEqual(pool.connections(), []);
  state.broken = false;
  await virtual.advance(10_000);
});

test("disconnect() with a request in flight while the clock's setTimeout() throws: the grace is over at once, the request is cancelled, every connection closes, and disconnect() rejects with a ConfigError naming the clock", async () => {
  const { virtual, clock, broke, state } = timerlessClock();
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network, clock: virtual });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1, maxConnections: 1 },
  });
  const watch = watchEscapes();
  try {
    await virtual.advance(0);
    let request: unknown = "pending";
    // The node answers in 10 s: in flight through any grace.
    client.request(ops.sleep(10_000, "x")).then(
      () => (request = "replied"),
      (error) => (request = error),
    );
    await tickEnds();
    state.broken = true;
    let outcome: unknown = "pending";
    try {
      client.disconnect({ timeoutMs: 5 }).then(
        () => (outcome = "done"),
        (error) => (outcome = error),
      );
    } catch (error) {
      outcome = `threw ${error}`;
    }
    for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
    const refused = state.refused;
    state.broken = false;
    await virtual.advance(0);
    // Before: the clock's raw Error, the connection open, the request
    // pending.
    assert.ok(outcome instanceof ConfigError, String(outcome));
    assert.equal(outcome.field, "clock");
    assert.equal(outcome.cause, broke);
    assert.match(outcome.message, /setTimeout\(\)/);
    assert.ok(refused < SPIN, `setTimeout() refused ${refused} times`);
    assert.ok(request instanceof NodewireError, String(request));
    assert.equal(network.openChannels, 0);
  } finally {
    state.broken = false;
    const again = client.disconnect({ timeoutMs: 0 }).catch(() => {});
    for (let i = 0; i < 20; i++) await virtual.advance(1000);
    await again;
    await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});
