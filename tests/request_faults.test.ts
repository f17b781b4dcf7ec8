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

test("a disconnect wakes every request waiting to be retried: each fails at once with ClientClosedError, and no timer is left", async () => {
  await scene(2, { retryConfig: RETRY }, async ({ client, clock }) => {
    let retries = 0;
    client.addEventListener("retry", () => retries++);
    const calls = Array.from(
      { length: 20 },
      () => client.request(ops.fail(100, true)).catch((e) => e),
    );
    await settle(clock);
    assert.equal(retries, 20, "every request waits to be retried");
    const closing = client.disconnect({ timeoutMs: 10_000 });
    await settle(clock);
    for (const outcome of await Promise.all(calls)) {
      assert.ok(outcome instanceof ClientClosedError, String(outcome));
    }
    await settle(clock);
    await closing;
    assert.equal(clock.pendingTimers, 0);
    const stats = client.stats();
    assert.equal(stats.failed, 20);
    assert.equal(stats.retries, 20);
    assertBooked(client);
  });
});

test("an abort during the backoff ends the request at once and leaves no listener on the signal", async () => {
  await scene(1, { retryConfig: RETRY }, async ({ client, clock }) => {
    const controller = new AbortController();
    const { signal, live } = countedSignal(controller);
    const call = client.request(ops.fail(100, true), { signal });
    call.catch(() => {});
    await settle(clock);
    assert.equal(client.stats().retries, 1);
    controller.abort("stop");
    assert.ok(await settledNow(clock, call));
    await assert.rejects(
      call,
      (e: unknown) => e instanceof AbortedError && e.cause === "stop",
    );
    assert.equal(live(), 0);
    assertBooked(client);
  });
});

test("a request leaves no listener on its signal: after a reply, retries, a timeout, a hedge and no healthy node", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 2, initialBackoffMs: 10, jitter: false },
    poolConfig: { minConnections: 1, maxConnections: 1 },
    hedging: { delayMs: 10 },
  }, async ({ client, clock, nodes }) => {
    const { signal, live } = countedSignal(new AbortController());
    const run = async (payload: Uint8Array, options = {}) => {
      const call = client.request(payload, { signal, ...options }).catch((
        e,
      ) => e);
      for (let t = 0; t < 40; t++) await clock.advance(10);
      return await call;
    };
    assert.equal(replyText(await run(ops.echo("a"))), "a");
    assert.ok(await run(ops.fail(100, true)) instanceof RetriesExhaustedError);
    await run(ops.sleep(300), { timeoutMs: 50, retry: false });
    await run(ops.sleep(30), { idempotent: true });
    assert.equal(client.stats().hedges, 1);
    // Two waiting for the one connection of each node.
    await Promise.all([run(ops.sleep(5)), run(ops.sleep(5))]);
    for (const node of nodes) client.manager.markNodeUnhealthy(node.address);
    await run(ops.echo());
    assert.equal(live(), 0);
    assertBooked(client);
  });
});

test("with one healthy node a request is not hedged to the node it already waits on", async () => {
  await hedged({}, async ({ client, clock, fast }) => {
    client.manager.markNodeUnhealthy(fast.address);
    const call = client.request(ops.echo("x"), { idempotent: true });
    await clock.advance(250);
    assert.equal(replyText(await call), "x");
    assert.equal(client.stats().hedges, 0);
    assertBooked(client);
  });
});

/** A real signal that counts the listeners added to it and not removed. */
function countedSignal(
  controller: AbortController,
): { signal: AbortSignal; live: () => number } {
  const signal = controller.signal;
  const live = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  Object.assign(signal, {
    addEventListener(type: string, fn: () => void, options?: unknown) {
      live.add(fn);
      add(type, fn, options as AddEventListenerOptions);
    },
    removeEventListener(type: string, fn: () => void, options?: unknown) {
      live.delete(fn);
      remove(type, fn, options as EventListenerOptions);
    },
  });
  return { signal, live: () => live.size };
}
