// Client.request under faults and hostile timing: every request settles
// exactly once, the counts add up and nothing is left behind (timers,
// requests in flight, escaped errors), whatever happens to its nodes, its
// signal, the client or its hedges while it runs. Virtual clock, in-memory
// network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AbortedError, ClientClosedError } from "../src/errors.ts";
import { ops, replyText } from "../testing/ops.ts";
import type { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { type MemoryScene, memoryScene } from "./support/memory_scene.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import type { Client } from "../src/client/client.ts";

/** Lets the memory network and every settled promise run. */
async function settle(clock: VirtualClock): Promise<void> {
  await clock.advance(0);
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Whether `call` settled once the network ran, without moving the clock. */
async function settledNow(
  clock: VirtualClock,
  call: Promise<unknown>,
): Promise<boolean> {
  let done = false;
  call.then(() => done = true, () => done = true);
  await settle(clock);
  return done;
}

async function scene(
  n: number,
  config: Partial<ConnectionConfig>,
  body: (s: MemoryScene) => Promise<void>,
): Promise<void> {
  const escapes = watchEscapes();
  await memoryScene(n, config, async (s) => {
    try {
      await body(s);
    } finally {
      // A failed check may leave a request waiting on a timer: the clock
      // runs until the disconnect is through, so the test fails, not hangs.
      const closing = s.client.disconnect({ timeoutMs: 1 });
      let closed = false;
      closing.then(() => closed = true);
      for (let i = 0; i < 5; i++) await s.clock.advance(1);
      for (let i = 0; i < 100 && !closed; i++) await s.clock.advance(1000);
      await closing;
    }
  });
  assert.deepEqual(await escapes.stop(), []);
}

function assertBooked(client: Client): void {
  const stats = client.stats();
  assert.equal(stats.inFlight, 0, "client inFlight");
  for (const node of stats.nodes) {
    assert.equal(node.inFlight, 0, `${node.address} inFlight`);
  }
}

const RETRY = { maxRetries: 3, initialBackoffMs: 5000, jitter: false };

test("a signal aborted by a retry listener ends the request at once, not after the backoff", async () => {
  await scene(1, { retryConfig: RETRY }, async ({ client, clock }) => {
    const controller = new AbortController();
    client.addEventListener("retry", () => controller.abort("stop"));
    const call = client.request(ops.fail(100, true), {
      signal: controller.signal,
    });
    call.catch(() => {});
    assert.ok(await settledNow(clock, call), "settled without the backoff");
    await assert.rejects(
      call,
      (e: unknown) => e instanceof AbortedError && e.cause === "stop",
    );
    assertBooked(client);
  });
});

test("a disconnect from a retry listener ends the request at once and leaves no timer", async () => {
  await scene(1, { retryConfig: RETRY }, async ({ client, clock }) => {
    let closing: Promise<void> | undefined;
    client.addEventListener("retry", () => {
      closing = client.disconnect({ timeoutMs: 10_000 });
    });
    const call = client.request(ops.fail(100, true));
    call.catch(() => {});
    assert.ok(await settledNow(clock, call), "settled without the backoff");
    await assert.rejects(call, ClientClosedError);
    await settle(clock);
    await closing;
    assert.equal(clock.pendingTimers, 0);
  });
});
