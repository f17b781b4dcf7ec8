// disconnect({ timeoutMs }) settles within its timeout, on the client's
// clock, whatever is still in flight. A hedged request that got its answer
// from the hedge left its first attempt out on a slow node; the disconnect
// found nothing in flight, closed the pools (the busy connection left the
// pool's list to close once idle) and, its grace over, destroyed the
// connections the pools listed: none. So it waited for the slow reply
// (100 ms later), or for the attempt's own deadline when the node never
// answered. All on the virtual clock, which moves only to the timeout and
// a little past it: never to the slow reply.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Client } from "../src/client/client.ts";
import type { BatchResult } from "../src/client/batch.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import type { RequestMessage } from "../src/diagnostics/channels.ts";
import { ClientClosedError, ConnectionLostError } from "../src/errors.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import type { ProxyFaults } from "../testing/proxy.ts";
import type { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { startTwoNodes } from "./support/hedge_scene.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** The disconnect's grace, in ms. */
const TIMEOUT_MS = 5;
/** How far past its timeout a disconnect may settle, in virtual ms. */
const SLACK_MS = 1;
/** Far below the slow node's 100 ms. */
const LIMIT_MS = TIMEOUT_MS + SLACK_MS;

/** A slow node (its reply comes 100 ms late) and one that never answers. */
const SLOW: ProxyFaults = { latencyMs: 100 };
const SILENT: ProxyFaults = { stall: true };

/**
 * Two nodes, `n0` behind a fault proxy with `faults`, `n1` direct; one
 * connection each, round-robin (the first request goes to `n0`), health
 * checks off, on one virtual clock and memory network. `body` runs with
 * escapes watched; then `disconnectsInTime` is asserted on, and whatever
 * it found, everything is closed without a hang.
 */
async function scene(
  faults: ProxyFaults,
  config: Partial<ConnectionConfig>,
  body: (s: { client: Client; clock: VirtualClock }) => Promise<void>,
): Promise<void> {
  const { client, clock, slow: proxy, nodes } = await startTwoNodes(config, [
    "n0",
    "n1",
  ]);
  const watch = watchEscapes();
  try {
    await clock.advance(0);
    await proxy.setFaults(faults);
    await body({ client, clock });
  } finally {
    // Before the fix the disconnect was still waiting: it is let finish
    // (the slow reply, the attempt's deadline) so the process can exit.
    const late = client.disconnect({ timeoutMs: TIMEOUT_MS });
    let over = false;
    late.then(() => (over = true), () => (over = true));
    for (let i = 0; i < 200 && !over; i++) await clock.advance(100);
    await proxy.clearFaults();
    await late;
    await proxy.close();
    for (const node of nodes) await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
}

/**
 * Disconnects `client` with a grace of TIMEOUT_MS and moves `clock` one ms
 * at a time until it settles, LIMIT_MS at most: returns how long it took,
 * or fails the test (before the fix it was still pending: a bounded wait,
 * not a hang).
 */
async function disconnectsInTime(
  client: Client,
  clock: VirtualClock,
): Promise<number> {
  const started = clock.now();
  let settledAt: number | undefined;
  client.disconnect({ timeoutMs: TIMEOUT_MS }).then(
    () => (settledAt = clock.now()),
  );
  for (let ms = 0; ms <= LIMIT_MS && settledAt === undefined; ms++) {
    await clock.advance(ms === 0 ? 0 : 1);
    for (let i = 0; i < 3 && settledAt === undefined; i++) await tickEnds();
  }
  assert.ok(
    settledAt !== undefined,
    `disconnect({ timeoutMs: ${TIMEOUT_MS} }) still pending after ` +
      `${clock.now() - started} ms`,
  );
  const took = settledAt - started;
  assert.ok(took <= LIMIT_MS, `settled after ${took} ms`);
  return took;
}

/** Moves `clock` until `promise` settled (20 ms at most); its outcome. */
async function settledOn<T>(
  clock: VirtualClock,
  promise: Promise<T>,
): Promise<{ value?: T; error?: unknown; pending?: true }> {
  let outcome: { value?: T; error?: unknown; pending?: true } = {
    pending: true,
  };
  promise.then(
    (value) => (outcome = { value }),
    (error) => (outcome = { error }),
  );
  for (let i = 0; i < 20 && outcome.pending; i++) {
    await clock.advance(1);
    await tickEnds();
  }
  return outcome;
}

for (const [name, faults] of [["slow", SLOW], ["silent", SILENT]] as const) {
  test(`a hedged request answered by the hedge, its first attempt on a ${name} node: disconnect settles within its timeout and the losing attempt gives its node back`, async () => {
    await scene(
      faults,
      { hedging: { delayMs: 10 } },
      async ({ client, clock }) => {
        // What each attempt that failed ended with.
        const failed: RequestMessage[] = [];
        const heard = (message: unknown) =>
          failed.push(message as RequestMessage);
        subscribe("nodewire:request:error", heard);
        try {
          const reply = await settledOn(
            clock,
            client.request(ops.echo("x"), { idempotent: true }),
          );
          assert.ok(reply.value !== undefined, String(reply.error));
          assert.equal(decodeReply(reply.value).nodeId, "n1");
          assert.equal(client.stats().hedges, 1);
          // The first attempt is still out on n0.
          assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [1, 0]);
          await disconnectsInTime(client, clock);
          assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
          assert.equal(client.stats().inFlight, 0);
          // The losing attempt failed, typed (its connection destroyed by
          // the disconnect), and settled nothing.
          assert.equal(failed.length, 1);
          assert.equal(failed[0].hedge, false);
          assert.equal(failed[0].settles, false);
          assert.ok(failed[0].error instanceof ConnectionLostError);
          assert.match(
            failed[0].error.message,
            /disconnect closed the connection, still in use 5 ms after/,
          );
        } finally {
          unsubscribe("nodewire:request:error", heard);
        }
      },
    );
  });

  test(`a hedged requestMany answered by the hedges, the first attempts on a ${name} node: disconnect settles within its timeout`, async () => {
    await scene(
      faults,
      { hedging: { delayMs: 10 } },
      async ({ client, clock }) => {
        // Round-robin from n0: one request alone, so the batch's go there too.
        const batch = await settledOn(
          clock,
          client.requestMany([ops.echo("a"), ops.echo("b")], {
            idempotent: true,
          }),
        );
        assert.ok(batch.value !== undefined, String(batch.error));
        assert.ok(batch.value.every((r: BatchResult) => r.ok));
        assert.ok(client.stats().nodes[0].inFlight > 0);
        await disconnectsInTime(client, clock);
        assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
      },
    );
  });
}

test("a request (not hedged) on a node that never answers: disconnect settles within its timeout, the request fails with a ClientClosedError", async () => {
  await scene(SILENT, {}, async ({ client, clock }) => {
    let outcome: unknown = "pending";
    client.request(ops.echo("x")).then(
      () => (outcome = "replied"),
      (error) => (outcome = error),
    );
    await clock.advance(1);
    assert.equal(client.stats().inFlight, 1, "the request is out");
    await disconnectsInTime(client, clock);
    await tickEnds();
    assert.ok(outcome instanceof ClientClosedError, String(outcome));
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
  });
});

test("a requestMany on a node that never answers: disconnect settles within its timeout, every item fails with a ClientClosedError", async () => {
  await scene(SILENT, {}, async ({ client, clock }) => {
    let results: BatchResult[] | undefined;
    client.requestMany([ops.echo("a"), ops.echo("b")]).then(
      (r) => (results = r),
    );
    await clock.advance(1);
    assert.equal(client.stats().inFlight, 2, "the batch is out");
    await disconnectsInTime(client, clock);
    await tickEnds();
    assert.ok(results !== undefined, "requestMany still pending");
    for (const result of results) {
      assert.ok(!result.ok);
      assert.ok(
        result.error instanceof ClientClosedError,
        String(result.error),
      );
    }
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
  });
});
