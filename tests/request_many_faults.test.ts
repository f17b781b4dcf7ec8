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
  InvalidArgumentError,
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

/** A getter that answers `value` once and throws on any later read. */
function readOnce<T>(value: T): PropertyDescriptor {
  let read = false;
  return {
    enumerable: true,
    get() {
      if (read) throw new Error("read a second time");
      read = true;
      return value;
    },
  };
}

test("options are read once, at the door: getters that would throw later change nothing, retries included", async () => {
  // The batch read its options again (the signal when it started, the
  // others per chunk and per failure): a getter that threw then rejected
  // the call with a raw Error and left the batch counted in flight.
  await scene(2, {
    retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
    retryBudget: false,
  }, async ({ client, clock, nodes }) => {
    const controller = new AbortController();
    const options = Object.defineProperties({}, {
      idempotent: readOnce(true),
      timeoutMs: readOnce(5000),
      retry: readOnce(true),
      hedge: readOnce(false),
      signal: readOnce(controller.signal),
    });
    const payloads = Array.from(
      { length: 2 * CHUNK_ITEMS },
      (_, i) => ops.sleep(50, `${i}`),
    );
    const call = client.requestMany(payloads, options);
    await settle(clock);
    // Half the batch fails on n0 and is retried on n1.
    await nodes[0].stop();
    assert.ok(await settledWithin(clock, call, 500), "the batch never settled");
    const results = await call;
    results.forEach((r, i) => assert.equal(textOf(r), `${i}`));
    assert.ok(client.stats().retries > 0);
    assertBooked(client, payloads.length);
  });
});

test("an array whose length is not a length, or a revoked one (proxies), is refused with InvalidArgumentError", async () => {
  await scene(1, {}, async ({ client, nodes }) => {
    const lengths: unknown[] = [NaN, -1, 2.5, "2", Infinity];
    const proxies: unknown[] = lengths.map((length) =>
      new Proxy([ops.echo("a"), ops.echo("b")], {
        get: (target, key) =>
          key === "length" ? length : Reflect.get(target, key),
      })
    );
    proxies.push(
      new Proxy([ops.echo("a")], {
        get: (target, key) => {
          if (key === "length") throw new Error("no length");
          return Reflect.get(target, key);
        },
      }),
    );
    const revocable = Proxy.revocable([ops.echo("a")], {});
    revocable.revoke();
    proxies.push(revocable.proxy);
    for (const payloads of proxies) {
      await assert.rejects(
        client.requestMany(payloads as Uint8Array[]),
        (error: unknown) => {
          assert.ok(error instanceof InvalidArgumentError, String(error));
          assert.match(error.message, /Client\.requestMany/);
          return true;
        },
      );
    }
    assert.equal(nodes[0].stats.requests, 0);
    assert.equal(client.stats().inFlight, 0);
  });
});
