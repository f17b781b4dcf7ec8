// The fault matrix, part 3: a node's life and the client's own end. Each
// test is one row and checks that every request settles once, in time and
// typed; that nothing escapes to the process; that retries happen only
// where safe; that the client recovers; and that nothing leaks.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ClientClosedError,
  ConnectionLostError,
  type NodewireError,
} from "../src/errors.ts";
import { eventually } from "./support/fault_harness.ts";
import { startScene } from "./support/fault_scene.ts";
import { ops } from "../testing/ops.ts";
import { assertClean, send } from "./helpers.ts";

const mixed = (i: number) => i % 4 < 2;

test("row: a node restarted on the same port — in-flight work lost typed, idempotent retried, old connections evicted", async () => {
  const s = await startScene({
    mode: "loopback",
    nodes: 1,
    proxied: false,
    config: {
      poolConfig: { minConnections: 2, maxConnections: 4 },
      retryConfig: { initialBackoffMs: 50, maxRetries: 5 },
      healthConfig: { intervalMs: 0, unhealthyThreshold: 1000 },
      // Requests take no node out here.
      outlierEjection: false,
    },
  });
  const node = s.nodes[0];
  const pool = s.client.manager.nodes[0].pool;
  assert.ok(await eventually(() => pool.stats().open === 2));
  const oldIds = new Set(pool.connections().map((c) => c.id));
  const port = node.port;

  // A crash with requests in flight, back 150 ms later.
  const inflight = Array.from(
    { length: 8 },
    (_, i) => send(s, `crash-${i}`, { idempotent: mixed(i), sleepMs: 300 }),
  );
  await s.pass(50);
  await node.stop();
  await s.pass(150);
  await node.start();
  assert.equal(node.port, port);
  await Promise.all(inflight.map((t) => t.done));
  const lost = inflight.filter((t) => !t.ok);
  assert.equal(lost.length, 4, "the non-idempotent ones");
  for (const t of lost) {
    assert.ok(t.error instanceof ConnectionLostError && t.error.sent);
  }
  assert.ok(inflight.filter((_, i) => mixed(i)).every((t) => t.ok));
  assert.ok(s.retries.length >= 4);
  assert.ok(await eventually(() => pool.stats().open >= 2), "refilled");
  assert.ok(
    pool.connections().every((c) => !oldIds.has(c.id)),
    "every connection from before the restart was evicted",
  );

  // A graceful restart: what is in flight finishes first.
  const draining = Array.from(
    { length: 4 },
    (_, i) => send(s, `drain-${i}`, { sleepMs: 500 }),
  );
  // Long enough for the requests to reach the node: one still on its way
  // when the node closes would be lost, graceful or not.
  await s.pass(150);
  const beforeDrain = new Set(pool.connections().map((c) => c.id));
  await node.stop({ graceful: true });
  await Promise.all(draining.map((t) => t.done));
  assert.ok(draining.every((t) => t.ok), "drained, nothing lost");
  await node.start();
  const after = Array.from({ length: 8 }, (_, i) => send(s, `after-${i}`));
  await Promise.all(after.map((t) => t.done));
  assert.ok(after.every((t) => t.ok));
  assert.ok(await eventually(() => pool.stats().open >= 2));
  assert.ok(pool.connections().every((c) => !beforeDrain.has(c.id)));
  s.tracker.assertSettled(3000);
  assertClean(await s.finish());
});

test("row: disconnect() with requests in flight and waiters queued — all settle by the grace period, typed, nothing left", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 1,
    config: {
      timeoutMs: 5000,
      poolConfig: {
        minConnections: 1,
        maxConnections: 2,
        connectionTimeoutMs: 10_000,
      },
    },
  });
  const pool = s.client.manager.nodes[0].pool;
  // Shared requests in flight: one ends within the grace period, one not.
  const quick = send(s, "quick", { sleepMs: 300 });
  const slow = send(s, "slow", { sleepMs: 60_000, timeoutMs: 120_000 });
  // Both connections lent out for long exclusive work.
  const long = (label: string) =>
    s.tracker.track(
      label,
      s.client.withConnection((c) =>
        c.sendRequest(ops.sleep(60_000), { timeoutMs: 120_000 })
      ),
    );
  const lent = [long("lent 1"), long("lent 2")];
  await s.pass(0);
  assert.equal(pool.stats().inUse, 2);
  // Callers that must wait: shared requests and one more exclusive.
  const queued = Array.from({ length: 3 }, (_, i) => send(s, `queued-${i}`));
  const queuedExclusive = long("queued exclusive");
  await s.pass(0);
  assert.equal(pool.stats().waiting, 4);

  const started = s.clock.now();
  const closing = s.tracker.track(
    "disconnect",
    s.client.disconnect({ timeoutMs: 1000 }),
  );
  const refused = send(s, "after disconnect");
  await s.pass(0);
  assert.ok(
    refused.error instanceof ClientClosedError,
    "new work refused at once",
  );
  assert.equal(refused.settledAt, started);

  await s.run(closing.done);
  assert.ok(closing.ok);
  assert.equal(
    closing.settledAt! - started,
    1000,
    "waited the grace period, no more",
  );
  assert.ok(quick.ok, "in flight and done within the grace period");
  assert.ok(slow.error instanceof ClientClosedError, String(slow.error));
  for (const t of lent) {
    assert.equal((t.error as NodewireError).code, "CONNECTION_LOST");
    assert.ok((t.error as Error).cause instanceof ClientClosedError);
  }
  for (const t of [...queued, queuedExclusive]) {
    assert.ok(t.error instanceof ClientClosedError, `${t.label}: ${t.error}`);
    assert.ok(t.settledAt! - started <= 1000);
  }
  assert.equal(s.retries.length, 0, "nothing is retried once closing");
  // Calling it again returns the same promise; requests stay refused.
  assert.equal(s.client.disconnect(), s.client.disconnect());
  s.tracker.assertSettled(1000 + 300);
  assertClean(await s.finish());
});
