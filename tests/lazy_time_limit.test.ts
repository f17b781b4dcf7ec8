// A lazy client's call waits for the first connect, then makes its
// attempt: `timeoutMs` (withConnection's default limit too) bounds the two
// together, as it does for ping(). A hedge, as a retry, has its whole
// `timeoutMs`; a checkout whose limit ran out during the connect is
// published as every failed checkout is.

import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Client } from "../src/client/client.ts";
import {
  type CheckoutMessage,
  DIAGNOSTICS_CHANNELS,
  type RequestMessage,
} from "../src/diagnostics/channels.ts";
import {
  PoolTimeoutError,
  RequestTimeoutError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { startFaultProxy } from "../testing/proxy.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

/**
 * A lazy client behind 100 ms of latency each way (its first connect
 * takes some hundreds of ms), on a virtual clock, given to `body`; its
 * pool waits `connectionTimeoutMs` (the default's 5000) for a connection.
 */
async function lazyBehindLatency(
  maxRetries: number,
  body: (client: Client, clock: VirtualClock) => Promise<void>,
  connectionTimeoutMs = 5000,
): Promise<void> {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  const proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: node.port },
    runtime: network,
    clock,
    faults: { latencyMs: 100 },
  });
  const client = await Client.connect(
    {
      hosts: [proxy.address],
      runtime: network,
      clock,
      healthConfig: { intervalMs: 0 },
      retryConfig: { maxRetries, initialBackoffMs: 10, jitter: false },
      poolConfig: { minConnections: 1, maxConnections: 1, connectionTimeoutMs },
    },
    { lazy: true },
  );
  try {
    await body(client, clock);
  } finally {
    await client.disconnect();
    await proxy.close();
    await node.close();
  }
}

test("a lazy client's withConnection spends its timeoutMs on the connect and the checkout together", async () => {
  await lazyBehindLatency(0, async (client, clock) => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    try {
      void client.withConnection(() => held);
      let failedAt: number | undefined;
      const second = client.withConnection(() => Promise.resolve(), {
        timeoutMs: 1000,
      }).catch((error) => {
        failedAt = clock.now();
        return error;
      });
      for (let i = 0; i < 30 && failedAt === undefined; i++) {
        await clock.advance(50);
      }
      const error = await second;
      assert.ok(error instanceof RetriesExhaustedError, String(error));
      assert.ok(error.cause instanceof PoolTimeoutError, String(error.cause));
      assert.ok(failedAt! <= 1000, `failed at ${failedAt} ms, after 1000`);
      // The limit it was given, which the connect and the checkout shared.
      assert.equal(error.cause.timeoutMs, 1000);
      assert.equal(error.cause.limit, "timeoutMs");
    } finally {
      release();
    }
  });
});

test("a lazy client's withConnection with no timeoutMs spends connectionTimeoutMs on the connect and the checkout together: it took the connect and then a whole connectionTimeoutMs", async () => {
  await lazyBehindLatency(0, async (client, clock) => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    try {
      void client.withConnection(() => held);
      let failedAt: number | undefined;
      const second = client.withConnection(() => Promise.resolve())
        .catch((error) => {
          failedAt = clock.now();
          return error;
        });
      for (let i = 0; i < 40 && failedAt === undefined; i++) {
        await clock.advance(50);
      }
      const error = await second;
      assert.ok(error instanceof RetriesExhaustedError, String(error));
      assert.ok(error.cause instanceof PoolTimeoutError, String(error.cause));
      assert.ok(failedAt! <= 1000, `failed at ${failedAt} ms, after 1000`);
      // Named as the limit it is: not "the call's timeoutMs", nor the part
      // of it the connect left.
      assert.equal(error.cause.timeoutMs, 1000);
      assert.equal(error.cause.limit, "connectionTimeoutMs");
    } finally {
      release();
    }
  }, 1000);
});

test("a lazy client's first request spends its timeoutMs on the connect and the attempt together: it took up to twice timeoutMs", async () => {
  await lazyBehindLatency(0, async (client, clock) => {
    let failedAt: number | undefined;
    // The node answers only after a minute: the attempt can only time out.
    const request = client.request(ops.sleep(60_000), { timeoutMs: 1000 })
      .catch((error) => {
        failedAt = clock.now();
        return error;
      });
    for (let i = 0; i < 60 && failedAt === undefined; i++) {
      await clock.advance(50);
    }
    const error = await request;
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.ok(failedAt! <= 1000, `failed at ${failedAt} ms, after 1000`);
  });
});

test("a lazy client's first request's retries have their full timeoutMs: only the first attempt pays for the connect", async () => {
  await lazyBehindLatency(1, async (client, clock) => {
    const retriedAt: number[] = [];
    client.addEventListener("retry", (e) => {
      retriedAt.push(clock.now() + e.detail.delayMs);
    });
    let failedAt: number | undefined;
    const request = client.request(ops.sleep(60_000), {
      timeoutMs: 1000,
      idempotent: true,
    }).catch((error) => {
      failedAt = clock.now();
      return error;
    });
    for (let i = 0; i < 120 && failedAt === undefined; i++) {
      await clock.advance(50);
    }
    const error = await request;
    assert.ok(error instanceof RetriesExhaustedError, String(error));
    assert.ok(error.cause instanceof RequestTimeoutError, String(error.cause));
    assert.equal(retriedAt.length, 1);
    assert.ok(retriedAt[0] <= 1000 + 10, `retried at ${retriedAt[0]} ms`);
    assert.ok(
      failedAt! - retriedAt[0] >= 1000,
      `the retry had ${failedAt! - retriedAt[0]} ms, not its full 1000`,
    );
  });
});

test("a lazy client's first requestMany spends its timeoutMs on the connect and each item's first attempt together, as request does; retries have their full timeoutMs", async () => {
  await lazyBehindLatency(1, async (client, clock) => {
    let failedAt: number | undefined;
    const retriedAt: number[] = [];
    client.addEventListener("retry", (e) => {
      retriedAt.push(clock.now() + e.detail.delayMs);
    });
    const batch = client.requestMany(
      [ops.sleep(60_000), ops.sleep(60_000)],
      { timeoutMs: 1000, idempotent: true },
    ).then((results) => {
      failedAt = clock.now();
      return results;
    });
    for (let i = 0; i < 120 && failedAt === undefined; i++) {
      await clock.advance(50);
    }
    const results = await batch;
    assert.equal(results.length, 2);
    for (const result of results) {
      assert.ok(!result.ok, "no reply came");
      assert.ok(
        result.error instanceof RetriesExhaustedError,
        String(result.error),
      );
    }
    assert.equal(retriedAt.length, 2);
    for (const at of retriedAt) {
      assert.ok(at <= 1000 + 10, `retried at ${at} ms`);
      assert.ok(
        failedAt! - at >= 1000,
        `a retry had ${failedAt! - at} ms, not its full 1000`,
      );
    }
  });
});

test("a hedge of a lazy client's first request has its full timeoutMs, as a retry has: it had only what the connect left of the first attempt's", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes = await Promise.all(
    [0, 1].map((i) =>
      startTestNode({ nodeId: `n${i}`, runtime: network, clock })
    ),
  );
  const proxies = await Promise.all(nodes.map((node) =>
    startFaultProxy({
      target: { hostname: "127.0.0.1", port: node.port },
      runtime: network,
      clock,
      faults: { latencyMs: 100 },
    })
  ));
  const client = await Client.connect(
    {
      hosts: proxies.map((proxy) => proxy.address),
      runtime: network,
      clock,
      loadBalancing: "round-robin",
      hedging: { delayMs: 50 },
      healthConfig: { intervalMs: 0 },
      retryConfig: { maxRetries: 0 },
      poolConfig: { minConnections: 1, maxConnections: 1 },
    },
    { lazy: true },
  );
  try {
    let outcome: { at: number; value: unknown } | undefined;
    // 700 ms at the node, 200 ms there and back: the hedge's reply comes
    // some 950 ms after the connect, past what the connect left of
    // 1000 ms, within a whole 1000 ms from the hedge's start.
    client.request(ops.sleep(700, "hedged"), {
      timeoutMs: 1000,
      idempotent: true,
    }).then(
      (value) => outcome = { at: clock.now(), value },
      (error) => outcome = { at: clock.now(), value: error },
    );
    // The node of the first attempt turns slow once that attempt is out:
    // only the hedge can answer.
    let connectedAt: number | undefined;
    for (let i = 0; i < 100 && connectedAt === undefined; i++) {
      await clock.advance(10);
      const busy = client.stats().nodes.findIndex((n) => n.inFlight > 0);
      if (busy >= 0) {
        connectedAt = clock.now();
        await proxies[busy].setFaults({ latencyMs: 60_000 });
      }
    }
    assert.ok(
      connectedAt !== undefined && connectedAt > 100 && connectedAt < 900,
      `connected at ${connectedAt} ms`,
    );
    for (let i = 0; i < 200 && outcome === undefined; i++) {
      await clock.advance(10);
    }
    assert.ok(outcome !== undefined, "the request never settled");
    assert.ok(
      outcome.value instanceof Uint8Array,
      `failed at ${outcome.at} ms: ${outcome.value}`,
    );
    assert.equal(replyText(outcome.value), "hedged");
    assert.ok(outcome.at > 1000, `answered at ${outcome.at} ms`);
    assert.equal(client.stats().hedges, 1);
  } finally {
    await client.disconnect({ timeoutMs: 1 });
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await Promise.all(nodes.map((node) => node.close()));
  }
});

test("a lazy client's withConnection whose limit runs out during the connect publishes its failed checkout, as every failed checkout does: it published none", async () => {
  const heard: CheckoutMessage[] = [];
  const listener = (message: unknown) =>
    void heard.push(message as CheckoutMessage);
  subscribe(DIAGNOSTICS_CHANNELS.poolCheckout, listener);
  try {
    await lazyBehindLatency(0, async (client, clock) => {
      const call = client.withConnection(() => Promise.resolve(), {
        timeoutMs: 50,
      }).catch((error) => error);
      await clock.advance(50);
      const error = await call;
      assert.ok(error instanceof PoolTimeoutError, String(error));
      const mine = heard.filter((m) => m.clientId === client.id);
      assert.deepEqual(
        mine.map((m) => [m.mode, m.connectionId, m.waitMs, m.error]),
        [["exclusive", undefined, 50, error]],
      );
      assert.equal(mine[0].address, error.address);
    });
  } finally {
    unsubscribe(DIAGNOSTICS_CHANNELS.poolCheckout, listener);
  }
});

/**
 * The request messages `client` publishes while `body` runs, as
 * [channel, attempt, address, settles, error] in the order heard.
 */
async function requestMessagesOf(
  body: (
    heard: (client: Client) => [string, number, unknown, boolean, unknown][],
  ) => Promise<void>,
): Promise<void> {
  const heard: [string, RequestMessage][] = [];
  const names = [
    DIAGNOSTICS_CHANNELS.requestStart,
    DIAGNOSTICS_CHANNELS.requestEnd,
    DIAGNOSTICS_CHANNELS.requestError,
  ];
  const listeners = names.map((name) => (message: unknown) =>
    // A copy: the message is one object, filled in as the attempt goes.
    void heard.push([name, { ...(message as RequestMessage) }])
  );
  names.forEach((name, i) => subscribe(name, listeners[i]));
  try {
    await body((client) =>
      heard.filter(([, m]) => m.clientId === client.id).map(([name, m]) => [
        name,
        m.attempt,
        m.address,
        m.settles,
        m.error,
      ])
    );
  } finally {
    names.forEach((name, i) => unsubscribe(name, listeners[i]));
  }
}

test("a lazy client's request whose timeoutMs runs out during the connect publishes a start and its error, as a request that reached no node does: it published nothing", async () => {
  await requestMessagesOf(async (heard) => {
    await lazyBehindLatency(0, async (client, clock) => {
      const call = client.request(ops.echo("first"), { timeoutMs: 50 })
        .catch((error) => error);
      await clock.advance(50);
      const error = await call;
      assert.ok(error instanceof RequestTimeoutError, String(error));
      assert.deepEqual(heard(client), [
        [DIAGNOSTICS_CHANNELS.requestStart, 0, undefined, false, undefined],
        [DIAGNOSTICS_CHANNELS.requestError, 0, undefined, true, error],
      ]);
    });
  });
});

test("a lazy client's requestMany whose timeoutMs runs out during the connect publishes a start and an error per item, as its items do once connected: it published nothing", async () => {
  await requestMessagesOf(async (heard) => {
    await lazyBehindLatency(0, async (client, clock) => {
      const call = client.requestMany(
        [ops.echo("a"), ops.echo("b")],
        { timeoutMs: 50 },
      );
      await clock.advance(50);
      const results = await call;
      const errors = results.map((r) => r.ok ? r.value : r.error);
      assert.ok(errors[0] instanceof RequestTimeoutError, String(errors[0]));
      assert.equal(errors[1], errors[0]);
      const start = DIAGNOSTICS_CHANNELS.requestStart;
      const failed = DIAGNOSTICS_CHANNELS.requestError;
      assert.deepEqual(heard(client), [
        [start, 0, undefined, false, undefined],
        [failed, 0, undefined, true, errors[0]],
        [start, 0, undefined, false, undefined],
        [failed, 0, undefined, true, errors[0]],
      ]);
    });
  });
});

test("a lazy client's request and requestMany whose timeoutMs runs out during the connect count in stats().failed, as requests that failed for good: they counted nowhere", async () => {
  await lazyBehindLatency(0, async (client, clock) => {
    const single = client.request(ops.echo("a"), { timeoutMs: 50 })
      .catch((error) => error);
    const many = client.requestMany([ops.echo("b"), ops.echo("c")], {
      timeoutMs: 50,
    });
    await clock.advance(50);
    assert.ok(await single instanceof RequestTimeoutError);
    assert.deepEqual((await many).map((r) => r.ok), [false, false]);
    const { failed, succeeded, inFlight } = client.stats();
    assert.deepEqual({ failed, succeeded, inFlight }, {
      failed: 3,
      succeeded: 0,
      inFlight: 0,
    });
  });
});
