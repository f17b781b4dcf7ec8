// Client.request under faults and hostile timing: every request settles
// exactly once, the counts add up and nothing is left behind (timers,
// requests in flight, escaped errors), whatever happens to its nodes, its
// signal, the client or its hedges while it runs. Virtual clock, in-memory
// network.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AbortedError,
  ClientClosedError,
  RemoteError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { ops, replyText } from "../testing/ops.ts";
import type { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { type MemoryScene, memoryScene } from "./support/memory_scene.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import type { Client } from "../src/client/client.ts";
import { type HedgeScene, hedgeScene } from "./support/hedge_scene.ts";

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
      closing = client.disconnect({ timeoutMs: 1 });
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

/** The hedge scene, with escaped errors checked at the end. */
async function hedged(
  config: Partial<ConnectionConfig>,
  body: (s: HedgeScene) => Promise<void>,
): Promise<void> {
  const escapes = watchEscapes();
  await hedgeScene(config, body);
  assert.deepEqual(await escapes.stop(), []);
}

test("a hedged request ends with the first node's refusal, not after the slower attempt says it again", async () => {
  // The hedge's node answered "not found" at 10 ms; the request waited for
  // the slow node's own answer, 190 ms later.
  await hedged({}, async ({ client, clock }) => {
    const start = clock.now();
    const call = client.request(ops.fail(404, false, "not found"), {
      idempotent: true,
    }).then(
      () => assert.fail("expected the node's error"),
      (error: unknown) => ({ error, at: clock.now() - start }),
    );
    await clock.advance(10);
    await settle(clock);
    assert.ok(await settledNow(clock, call), "settled on the first answer");
    const { error, at } = await call;
    assert.ok(error instanceof RemoteError && error.remoteCode === 404);
    assert.equal(error.nodeId, "h1");
    assert.ok(at < 20, `settled after ${at} ms`);
    // The slow attempt is still out, and booked when it ends.
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [1, 0]);
    await clock.advance(250);
    const stats = client.stats();
    assert.equal(stats.failed, 1);
    assert.equal(stats.succeeded, 0);
    assert.equal(stats.hedges, 1);
    assert.equal(stats.retries, 0);
    assertBooked(client);
  });
});

test("a retryable refusal from a hedged attempt waits for the other attempt", async () => {
  // "Overloaded, try elsewhere" is no answer: the slow attempt may still
  // succeed, so the request waits for it (here it fails the same way).
  await hedged(
    { retryConfig: { maxRetries: 0 } },
    async ({ client, clock }) => {
      const call = client.request(ops.fail(503, true), { idempotent: true });
      call.catch(() => {});
      await clock.advance(10);
      await clock.advance(10);
      assert.equal(await settledNow(clock, call), false);
      await clock.advance(250);
      await assert.rejects(
        call,
        (e: unknown) =>
          e instanceof RetriesExhaustedError &&
          e.cause instanceof RemoteError &&
          e.cause.nodeId === "h0",
      );
      assert.equal(client.stats().hedges, 1);
      assertBooked(client);
    },
  );
});
