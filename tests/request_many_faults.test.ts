// Client.requestMany under faults and hostile arguments: every batch
// settles exactly once, every item gets one result, the counts add up and
// nothing is left behind (listeners, requests in flight, escaped errors),
// whatever happens to its nodes, connections, signal or arguments while it
// runs. Every test runs on the virtual clock over the in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type BatchResult, CHUNK_ITEMS } from "../src/client/batch.ts";
import type { Client } from "../src/client/client.ts";
import {
  AbortedError,
  type NodewireError,
  ProtocolError,
} from "../src/errors.ts";
import { ops, replyText } from "../testing/ops.ts";
import type { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import {
  type MemoryScene,
  memoryScene,
  type MemorySceneOptions,
} from "./support/memory_scene.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
/** Lets the memory network and every settled promise run. */
async function settle(clock: VirtualClock): Promise<void> {
  await clock.advance(0);
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** The error of a failed result; fails the test for a success. */
function errorOf(result: BatchResult): NodewireError {
  if (result.ok) assert.fail("expected the request to fail");
  return result.error;
}

/** The reply text of a successful result; fails the test for a failure. */
function textOf(result: BatchResult): string {
  if (!result.ok) throw result.error;
  return replyText(result.value);
}

/**
 * Whether `call` has settled once the network has run and the clock has
 * moved `ms` on, without waiting for it otherwise: a batch that never
 * settles fails the test instead of hanging it.
 */
async function settledWithin(
  clock: VirtualClock,
  call: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let done = false;
  call.then(() => done = true, () => done = true);
  await settle(clock);
  for (let t = 0; t < ms && !done; t++) {
    await clock.advance(1);
    await settle(clock);
  }
  return done;
}

/**
 * The memory scene, with the client disconnected by the test itself while
 * the clock runs: a failed check that leaves requests in flight then ends
 * the test instead of leaving the scene's disconnect waiting on a clock
 * nobody moves. Errors escaping to the process fail the test too.
 */
async function scene(
  n: number,
  config: Partial<ConnectionConfig>,
  body: (s: MemoryScene) => Promise<void>,
  options?: MemorySceneOptions,
): Promise<void> {
  const escapes = watchEscapes();
  await memoryScene(n, config, async (s) => {
    try {
      await body(s);
    } finally {
      const closing = s.client.disconnect({ timeoutMs: 1 });
      for (let i = 0; i < 5; i++) await s.clock.advance(1);
      await closing;
    }
  }, options);
  assert.deepEqual(await escapes.stop(), []);
}

/** The client's counts once a batch of `items` settled: nothing left over. */
function assertBooked(client: Client, items: number, before = 0): void {
  const stats = client.stats();
  assert.equal(stats.inFlight, 0, "client inFlight");
  for (const node of stats.nodes) {
    assert.equal(node.inFlight, 0, `${node.address} inFlight`);
  }
  assert.equal(stats.succeeded + stats.failed - before, items);
}

test("a chunk whose first items get its node ejected (oversized payloads) still sends and settles the rest", async () => {
  // Five payloads over the node's frame limit fail as they are sent, and
  // five failures in a row eject the node; ejection clears its pool, which
  // closed the chunk's idle connection while the chunk was being sent:
  // the items after it went into a closed connection and never settled.
  await scene(2, {}, async ({ client, clock }) => {
    let ejected = 0;
    client.addEventListener("nodeHealthChanged", (e) => {
      if (!e.detail.healthy) ejected++;
    });
    const big = ops.echo(new Uint8Array(4096));
    const call = client.requestMany([
      big,
      big,
      big,
      big,
      big,
      ops.echo("small"),
      ops.echo("last"),
    ]);
    assert.ok(await settledWithin(clock, call, 100), "the batch never settled");
    const results = await call;
    for (const r of results.slice(0, 5)) {
      assert.ok(errorOf(r) instanceof ProtocolError, String(r));
    }
    assert.equal(textOf(results[5]), "small");
    assert.equal(textOf(results[6]), "last");
    assert.equal(ejected, 1);
    assertBooked(client, 7);
  }, { maxFrameSize: 1024 });
});

test("a signal that aborts after the pool hands a waiting chunk its connection, before the chunk is sent, stops the chunk", async () => {
  // Items sent after the abort were never cancelled: the batch waited for
  // their replies (here a second) and reported them as successes.
  await scene(1, {}, async ({ client, clock }) => {
    client.manager.nodes[0].pool.clear();
    await settle(clock);
    const controller = new AbortController();
    client.addEventListener("checkedOut", () => {
      controller.abort(new Error("stop"));
    });
    const call = client.requestMany(
      [ops.sleep(1000, "a"), ops.sleep(1000, "b")],
      { signal: controller.signal },
    );
    assert.ok(await settledWithin(clock, call, 10), "the abort was ignored");
    for (const r of await call) {
      const error = errorOf(r);
      assert.ok(error instanceof AbortedError, String(error));
      assert.equal((error.cause as Error).message, "stop");
    }
    assertBooked(client, 2);
  });
});

test("a signal that aborts while the batch is being handed out stops the chunks handed out after it", async () => {
  // The first chunk that has to wait for a connection starts a checkout
  // (its event runs at once); the abort there reached the chunks sent
  // before it, but the chunks after it went out regardless.
  await scene(2, {}, async ({ client, clock }) => {
    client.manager.nodes[0].pool.clear();
    await settle(clock);
    const controller = new AbortController();
    client.addEventListener("checkoutStarted", () => {
      controller.abort(new Error("stop"));
    });
    const count = 4 * CHUNK_ITEMS;
    const call = client.requestMany(
      Array.from({ length: count }, () => ops.sleep(1000)),
      { signal: controller.signal },
    );
    assert.ok(await settledWithin(clock, call, 10), "the abort was ignored");
    for (const r of await call) {
      assert.ok(errorOf(r) instanceof AbortedError, String(r));
    }
    assertBooked(client, count);
  });
});
