// The request contract of issue #12: one request path, a deadline model
// (timeoutMs per attempt end to end, signal for the whole call), health that
// counts only what the node did, and errors whose `retryable` tells the
// truth. Every test runs on the virtual clock over the in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import {
  AbortedError,
  ClientClosedError,
  NodewireError,
  PoolTimeoutError,
  RequestTimeoutError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { startFaultProxy } from "../testing/proxy.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { memoryScene as scene } from "./support/memory_scene.ts";
import { failure } from "./support/fault_checks.ts";

/** A promise and its resolve (Node 20 has no Promise.withResolvers). */
function gate(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

// --- health counts only what the node did -----------------------------------

test("a caller's own short timeouts never take a healthy node out of rotation", async () => {
  await scene(1, {}, async ({ client, clock }) => {
    for (let i = 0; i < 6; i++) {
      const slow = failure(
        client.request(ops.sleep(500), { timeoutMs: 10, retry: false }),
      );
      await clock.advance(10);
      const error = await slow;
      assert.ok(error instanceof RequestTimeoutError, String(error));
    }
    const stats = client.stats();
    assert.equal(stats.nodes[0].healthy, true);
    assert.equal(stats.nodes[0].consecutiveFailures, 0);
    // The next request goes through at once.
    assert.equal(replyText(await client.request(ops.echo("ok"))), "ok");
    await clock.advance(500);
  });
});

test("a node answering Overloaded counts against it; a node's ordinary errors do not", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 0 },
    outlierEjection: { consecutiveFailures: 3 },
  }, async ({ client }) => {
    const reasons: string[] = [];
    client.addEventListener("nodeHealthChanged", (e) => {
      reasons.push(e.detail.reason);
    });
    for (let i = 0; i < 6; i++) {
      await failure(client.request(ops.fail(3, false))); // NotFound
    }
    assert.deepEqual(client.stats().nodes.map((n) => n.healthy), [true, true]);
    for (let i = 0; i < 6; i++) {
      await failure(client.request(ops.fail(4, false))); // Overloaded
    }
    // Spread over both nodes: each one saw three in a row, and the first
    // to get there was ejected; the other is the last healthy node, which
    // what requests see never takes out.
    assert.equal(
      client.stats().nodes.filter((n) => !n.healthy).length,
      1,
    );
    assert.equal(reasons.length, 1);
    assert.match(reasons[0], /^ejected .*3 requests in a row failed/);
  });
});

test("a silent node is still taken out, by the health checks' own timeouts", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes = await Promise.all(
    [0, 1].map((i) =>
      startTestNode({ nodeId: `n${i}`, runtime: network, clock })
    ),
  );
  const proxy = await startFaultProxy({
    target: nodes[1],
    runtime: network,
    clock,
  });
  const client = await Client.connect({
    hosts: [nodes[0].address, proxy.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0, timeoutMs: 100, unhealthyThreshold: 2 },
  });
  try {
    // The node behind the proxy keeps its sockets but goes silent.
    await proxy.setFaults({ stall: true });
    for (let round = 0; round < 2; round++) {
      const sweep = client.healthCheckAllNodes();
      await clock.advance(100);
      await sweep;
    }
    assert.deepEqual(client.stats().nodes.map((n) => n.healthy), [
      true,
      false,
    ]);
    await proxy.clearFaults();
  } finally {
    await client.disconnect({ timeoutMs: 1 });
    await proxy.close();
    await Promise.all(nodes.map((node) => node.close()));
  }
});

// --- deadlines ----------------------------------------------------------------

test("a request's timeoutMs bounds its wait for a pool connection", async () => {
  await scene(1, {
    poolConfig: { maxConnections: 1, minConnections: 1 },
  }, async ({ client, clock }) => {
    const release = gate();
    const held = client.withConnection(() => release.promise);
    await clock.advance(0);
    const waiting = failure(
      client.request(ops.echo(), { timeoutMs: 50, retry: false }),
    );
    await clock.advance(50);
    const error = await waiting;
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.equal(error.retryable, true);
    release.resolve();
    await held;
  });
});

test("what the pool wait used is taken off the time the reply may take", async () => {
  await scene(1, {
    poolConfig: { maxConnections: 1, minConnections: 1 },
  }, async ({ client, clock }) => {
    const release = gate();
    const held = client.withConnection(() => release.promise);
    await clock.advance(0);
    // 60 ms of the 100 go by in the pool; the reply takes 50 more.
    const request = failure(
      client.request(ops.sleep(50), { timeoutMs: 100, retry: false }),
    );
    await clock.advance(60);
    release.resolve();
    await held;
    await clock.advance(39);
    let settled = false;
    request.then(() => (settled = true));
    await clock.advance(0);
    assert.equal(settled, false, "still within the attempt's 100 ms");
    await clock.advance(1);
    const error = await request;
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.ok(error.timeoutMs <= 40 && error.timeoutMs > 0, error.message);
    await clock.advance(50);
  });
});

test("signal bounds the whole call, backoff included: AbortedError with the reason, at once", async () => {
  await scene(1, {
    retryConfig: { maxRetries: 5, initialBackoffMs: 1000, jitter: false },
  }, async ({ client, clock }) => {
    const controller = new AbortController();
    const request = failure(
      client.request(ops.fail(100, true), { signal: controller.signal }),
    );
    await clock.advance(0);
    assert.equal(client.stats().retries, 1, "waiting before the first retry");
    controller.abort("the user left");
    const error = await request;
    assert.ok(error instanceof AbortedError, String(error));
    assert.equal(error.retryable, false);
    assert.equal(error.cause, "the user left");
    assert.equal(client.stats().inFlight, 0);
    assert.equal(client.stats().nodes[0].inFlight, 0);
  });
});

test("ping, withConnection and healthCheckAllNodes abort with AbortedError carrying the reason", async () => {
  await scene(1, {
    poolConfig: { maxConnections: 1, minConnections: 1 },
  }, async ({ client, clock }) => {
    const release = gate();
    const held = client.withConnection(() => release.promise);
    await clock.advance(0);
    const reason = new Error("stop");
    const controller = new AbortController();
    const waiting = failure(
      client.withConnection(() => Promise.resolve(), {
        signal: controller.signal,
      }),
    );
    const sweep = failure(
      client.healthCheckAllNodes({ signal: controller.signal }),
    );
    controller.abort(reason);
    for (const error of [await waiting, await sweep]) {
      assert.ok(error instanceof AbortedError, String(error));
      assert.equal(error.retryable, false);
      assert.equal(error.cause, reason);
    }
    release.resolve();
    await held;
    const pinged = failure(client.ping({ signal: AbortSignal.abort(reason) }));
    const error = await pinged;
    assert.ok(error instanceof AbortedError, String(error));
    assert.equal(error.cause, reason);
  });
});

test("aborting Client.connect gives a non-retryable AbortedError carrying the reason", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  try {
    const controller = new AbortController();
    controller.abort("changed my mind");
    const error = await failure(
      Client.connect({
        hosts: [node.address],
        runtime: network,
        clock,
      }, { signal: controller.signal }),
    );
    assert.ok(error instanceof AbortedError, String(error));
    assert.equal(error.retryable, false);
    assert.equal(error.cause, "changed my mind");
    assert.doesNotMatch((error as Error).message, /acquire|#|pool\./);
  } finally {
    await node.close();
  }
});

// --- errors tell the truth ------------------------------------------------------

test("a sent non-idempotent request that timed out says retryable: false; an idempotent one true", async () => {
  await scene(
    1,
    { retryConfig: { maxRetries: 0 } },
    async ({ client, clock }) => {
      const plain = failure(
        client.request(ops.sleep(500), { timeoutMs: 10, retry: false }),
      );
      const safe = failure(
        client.request(ops.sleep(500), {
          timeoutMs: 10,
          retry: false,
          idempotent: true,
        }),
      );
      await clock.advance(10);
      const [a, b] = [await plain, await safe];
      assert.ok(
        a instanceof RequestTimeoutError && b instanceof RequestTimeoutError,
      );
      assert.equal(a.sent, true);
      assert.equal(a.retryable, false);
      assert.equal(b.retryable, true);
      await clock.advance(500);
    },
  );
});

// --- one request path -------------------------------------------------------------

test("every attempt is booked once: stats and in-flight counts add up after mixed outcomes", async () => {
  await scene(3, {
    retryConfig: { maxRetries: 2, initialBackoffMs: 1, jitter: false },
  }, async ({ client, clock }) => {
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const payload = i % 3 === 0
        ? ops.echo("x")
        : i % 3 === 1
        ? ops.fail(100, true) // retried twice, then exhausted
        : ops.fail(3, false); // not retried
      calls.push(client.request(payload).catch((e) => e));
    }
    await clock.advance(10);
    const outcomes = await Promise.all(calls);
    const exhausted = outcomes.filter((o) =>
      o instanceof RetriesExhaustedError
    );
    assert.equal(exhausted.length, 10);
    for (const e of exhausted) {
      assert.equal((e as RetriesExhaustedError).attempts, 3);
    }
    assert.equal(
      outcomes.filter((o) => o instanceof NodewireError).length,
      20,
    );
    const stats = client.stats();
    assert.equal(stats.succeeded, 10);
    assert.equal(stats.failed, 20);
    assert.equal(stats.retries, 20);
    assert.equal(stats.inFlight, 0);
    for (const node of stats.nodes) assert.equal(node.inFlight, 0);
  });
});

test("a request waiting for a pool connection counts as in flight on its node", async () => {
  await scene(1, {
    poolConfig: { maxConnections: 1, minConnections: 1 },
  }, async ({ client, clock }) => {
    const release = gate();
    const held = client.withConnection(() => release.promise);
    await clock.advance(0);
    const waiting = client.request(ops.echo("late"));
    await clock.advance(0);
    assert.equal(client.stats().nodes[0].inFlight, 1);
    release.resolve();
    await held;
    assert.equal(replyText(await waiting), "late");
    assert.equal(client.stats().nodes[0].inFlight, 0);
  });
});

test("disconnect ends a request waiting to be retried at once, with ClientClosedError", async () => {
  await scene(1, {
    retryConfig: {
      maxRetries: 3,
      initialBackoffMs: 60_000,
      maxBackoffMs: 60_000,
      jitter: false,
    },
  }, async ({ client, clock }) => {
    const request = failure(client.request(ops.fail(100, true)));
    await clock.advance(0);
    assert.equal(client.stats().retries, 1, "waiting a minute to retry");
    let done = false;
    const closed = client.disconnect({ timeoutMs: 30_000 }).then(() => {
      done = true;
    });
    const error = await request;
    assert.ok(error instanceof ClientClosedError, String(error));
    await clock.advance(0);
    await closed;
    assert.equal(done, true);
    assert.equal(clock.now(), 0, "no virtual time had to pass");
  });
});

// --- lazy connect (#13) ----------------------------------------------------------

test("a lazy client resolves with no node up, connects on first use, and tries again after a failed connect", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  // Reserve an address, then free it: nothing listens there yet.
  const probe = await startTestNode({ runtime: network, clock });
  const port = probe.port;
  await probe.close();
  const client = await Client.connect(
    {
      hosts: [`127.0.0.1:${port}`],
      runtime: network,
      clock,
      healthConfig: { intervalMs: 0 },
      retryConfig: { maxRetries: 0 },
      poolConfig: { minConnections: 1 },
    },
    { lazy: true },
  );
  try {
    // Two calls at once share one connect, which fails: nobody listens.
    const [a, b] = await Promise.all([
      failure(client.request(ops.echo())),
      failure(client.ping()),
    ]);
    assert.ok(a instanceof NodewireError && b instanceof NodewireError);
    assert.equal((a as NodewireError).code, "CONNECT_FAILED");
    assert.equal(a, b, "one connect, one error for both");
    // The node comes up; the next call connects and goes through.
    const node = await startTestNode({ runtime: network, clock, port });
    try {
      await clock.advance(60_000); // past the pool's reconnect backoff
      assert.equal(replyText(await client.request(ops.echo("up"))), "up");
      assert.equal(client.stats().nodes[0].healthy, true);
    } finally {
      await client.disconnect();
      await node.close();
    }
  } finally {
    await client.disconnect();
  }
});
