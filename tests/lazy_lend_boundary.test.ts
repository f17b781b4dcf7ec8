// A lazy client's first connect that ends exactly as a call's timeoutMs
// runs out leaves that call no time: a request fails at once, never sent,
// and withConnection fails at once too, as when the limit passed during
// the connect, instead of backing off and checking out again. Real timers
// fire late; here the client's fire 1 ms late on the virtual clock, so the
// connect can end at the limit before the limit's timer has fired.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { Clock } from "../src/clock.ts";
import { PoolTimeoutError, RequestTimeoutError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { startFaultProxy } from "../testing/proxy.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

/** `clock`'s time, with every timer firing 1 ms after it is due. */
function lateTimers(clock: VirtualClock): Clock {
  return {
    now: () => clock.now(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms + 1),
    clearTimeout: (handle) => clock.clearTimeout(handle),
  };
}

/** What one call on a fresh lazy client did, and when. */
interface Outcome {
  error: unknown;
  at: number;
  retries: number;
}

/**
 * A fresh lazy client whose first connect takes `CONNECT_MS` (100 ms of
 * latency each way), given to `call`; the clock moves 1 ms at a time
 * until the call settles.
 */
async function firstCall(
  call: (client: Client) => Promise<unknown>,
): Promise<Outcome> {
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
      clock: lateTimers(clock),
      healthConfig: { intervalMs: 0 },
      retryConfig: { maxRetries: 2, initialBackoffMs: 10, jitter: false },
      poolConfig: { minConnections: 1, maxConnections: 1 },
    },
    { lazy: true },
  );
  let retries = 0;
  client.addEventListener("retry", () => retries++);
  try {
    let at: number | undefined;
    const settled = call(client).then(
      () => undefined,
      (error: unknown) => error,
    ).finally(() => (at = clock.now()));
    for (let i = 0; i < 2000 && at === undefined; i++) await clock.advance(1);
    return { error: await settled, at: at!, retries };
  } finally {
    await client.disconnect();
    await proxy.close();
    await node.close();
  }
}

/** How long the first connect takes behind the proxy. */
const CONNECT_MS = 400;

test("the first connect takes CONNECT_MS (what the boundary tests rely on)", async () => {
  const outcome = await firstCall((client) =>
    client.withConnection(() => Promise.resolve())
  );
  assert.equal(outcome.error, undefined);
  assert.equal(outcome.at, CONNECT_MS);
});

test("a lazy request whose first connect ends exactly at its timeoutMs fails at once, never sent", async () => {
  const outcome = await firstCall((client) =>
    client.request(ops.echo("x"), { timeoutMs: CONNECT_MS })
  );
  assert.ok(
    outcome.error instanceof RequestTimeoutError,
    String(outcome.error),
  );
  assert.equal(outcome.error.sent, false);
  assert.equal(outcome.at, CONNECT_MS);
  assert.equal(outcome.retries, 0);
});

test("a lazy withConnection whose first connect ends exactly at its timeoutMs fails at once with PoolTimeoutError, as a request does (it backed off and checked out again)", async () => {
  let lent = false;
  const outcome = await firstCall((client) =>
    client.withConnection(() => {
      lent = true;
      return Promise.resolve();
    }, { timeoutMs: CONNECT_MS })
  );
  assert.ok(outcome.error instanceof PoolTimeoutError, String(outcome.error));
  assert.equal(outcome.error.limit, "timeoutMs");
  assert.match(outcome.error.message, new RegExp(`within ${CONNECT_MS} ms`));
  assert.equal(outcome.at, CONNECT_MS);
  assert.equal(outcome.retries, 0);
  assert.equal(lent, false);
});

test("a lazy withConnection whose first connect ends 1 ms before its timeoutMs gets its connection", async () => {
  let lentAt: number | undefined;
  const outcome = await firstCall((client) =>
    client.withConnection(() => {
      lentAt = CONNECT_MS;
      return Promise.resolve();
    }, { timeoutMs: CONNECT_MS + 1 })
  );
  assert.equal(outcome.error, undefined);
  assert.equal(lentAt, CONNECT_MS);
  assert.equal(outcome.at, CONNECT_MS);
  assert.equal(outcome.retries, 0);
});

test("a lazy request whose first connect ends 1 ms before its timeoutMs is sent", async () => {
  const outcome = await firstCall((client) =>
    client.request(ops.echo("x"), { timeoutMs: CONNECT_MS + 1 })
  );
  // Sent with 1 ms left, behind 100 ms each way: it times out, sent.
  assert.ok(
    outcome.error instanceof RequestTimeoutError,
    String(outcome.error),
  );
  assert.equal(outcome.error.sent, true);
});
