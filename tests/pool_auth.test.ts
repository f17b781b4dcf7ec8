// Rejected credentials are learned once: one SCRAM exchange per node per
// connect, however many connections the pool wants, then one per backoff
// period at most, against reference nodes that require SCRAM-SHA-256. On
// the memory network and a virtual clock: time moves only between steps,
// so the real time the SCRAM arithmetic takes never counts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { PoolConfig } from "../src/config/shapes.ts";
import { AuthenticationError } from "../src/errors.ts";
import type { PoolEventDetailMap } from "../src/pool/events.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

const PASSWORD = "correct horse battery staple";

/** One macrotask: lets socket callbacks and settled promises run. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Waits (in real time, the virtual clock standing still) until no
 * connection is being opened and every SCRAM exchange the nodes saw has
 * ended, so that the next step starts from rest.
 */
async function quiet(
  pools: { stats(): { connecting: number } }[],
  nodes: TestNode[],
): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    await macrotask();
    const busy = pools.some((p) => p.stats().connecting > 0) ||
      nodes.some((n) =>
        n.stats.authAttempts !== n.stats.authFailures + n.stats.authSuccesses
      );
    if (!busy) {
      await macrotask();
      return;
    }
  }
  assert.fail("the SCRAM exchanges did not end");
}

for (
  const poolConfig of [
    {},
    { maxConnecting: 5 },
    { minConnections: 3, maxConnecting: 5 },
  ] as Partial<PoolConfig>[]
) {
  test(
    `one Client.connect with a wrong password makes one SCRAM attempt per node (poolConfig ${
      JSON.stringify(poolConfig)
    })`,
    async () => {
      const network = createMemoryNetwork();
      const clock = new VirtualClock();
      const nodes = await Promise.all(
        [0, 1].map(() =>
          startTestNode({
            runtime: network,
            clock,
            credentials: { alice: PASSWORD },
          })
        ),
      );
      try {
        await assert.rejects(
          Client.connect({
            hosts: nodes.map((n) => n.address),
            runtime: network,
            clock,
            username: "alice",
            password: "Tr0ub4dor&3-wrong",
            healthConfig: { intervalMs: 0 },
            poolConfig,
          }),
          (e: unknown) =>
            e instanceof AuthenticationError && e.code === "AUTH_FAILED" &&
            /as "alice" failed: the node rejected the credentials/.test(
              e.message,
            ),
        );
        await quiet([], nodes);
        for (const node of nodes) {
          assert.equal(node.stats.authAttempts, 1, node.address);
          assert.equal(node.stats.authFailures, 1, node.address);
        }
        await clock.advance(60_000);
        await quiet([], nodes);
        assert.deepEqual(nodes.map((n) => n.stats.authAttempts), [1, 1]);
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    },
  );
}

test("a node that rejects the credentials gets one attempt per backoff period from the health checks, none in between, and reports it", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const good = await startTestNode({
    runtime: network,
    clock,
    credentials: { alice: PASSWORD },
  });
  const bad = await startTestNode({
    runtime: network,
    clock,
    credentials: { alice: "another password" },
  });
  const client = await Client.connect({
    hosts: [good.address, bad.address],
    runtime: network,
    clock,
    username: "alice",
    password: PASSWORD,
    healthConfig: { intervalMs: 1000, timeoutMs: 500 },
    poolConfig: { minConnections: 3, maxConnecting: 5 },
  });
  const failures: PoolEventDetailMap["connectionFailed"][] = [];
  client.addEventListener("connectionFailed", (e) => {
    if (e.detail.address === bad.address) failures.push(e.detail);
  });
  const pools = client.manager.nodes.map((n) => n.pool);
  try {
    await quiet(pools, [good, bad]);
    assert.equal(bad.stats.authAttempts, 1, "one at connect");
    const badPool = client.manager.node(bad.address)!.pool;
    assert.equal(badPool.stats().blocked, true);
    const attempts: number[] = [0];
    let seen = 1;
    while (clock.now() < 20_000) {
      await clock.advance(100);
      await quiet(pools, [good, bad]);
      for (; seen < bad.stats.authAttempts; seen++) attempts.push(clock.now());
      if (clock.now() === 5500) {
        // Blocked until 5600: a health check fails at once with the node's
        // answer, and makes no attempt.
        const results = await client.healthCheckAllNodes();
        assert.ok(results[1].error instanceof AuthenticationError);
        assert.equal(results[0].ok, true);
        assert.equal(bad.stats.authAttempts, seen);
      }
    }
    // Sweeps run every 1000 ms. After the k-th failure the pool waits
    // min(100 * 2^(k-1), 5000) ms, so the first sweep after that makes the
    // next attempt: 0 → 100 ms → 1000, 200 → 2000, 400 → 3000, 800 → 4000,
    // 1600 → 6000, 3200 → 10000, 5000 → 15000, 5000 → 20000.
    assert.deepEqual(
      attempts,
      [0, 1000, 2000, 3000, 4000, 6000, 10_000, 15_000, 20_000],
    );
    assert.equal(bad.stats.authSuccesses, 0);
    assert.ok(failures.length > 0 && failures.every((f) => f.blocked));
    assert.deepEqual(
      failures.map((f) => f.backoffMs),
      [200, 400, 800, 1600, 3200, 5000, 5000, 5000],
    );
    assert.equal(client.stats().nodes[1].healthy, false);
    assert.equal(client.stats().nodes[1].pool.blocked, true);
    assert.equal(client.stats().nodes[1].pool.open, 0);
    // The good node served all along.
    assert.equal(replyText(await client.request(ops.echo("still"))), "still");
  } finally {
    const closing = client.disconnect();
    await clock.advance(10_000);
    await closing;
    await good.close();
    await bad.close();
  }
});
