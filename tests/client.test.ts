import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Client } from "../src/client/client.ts";
import type { RetryEvent } from "../src/client/events.ts";
import type { Clock } from "../src/clock.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type {
  ConnectionConfig,
  LogEntry,
  Logger,
} from "../src/config/shapes.ts";
import {
  ClientClosedError,
  ConfigError,
  ConnectionLostError,
  NoHealthyNodesError,
  RemoteError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { ConnectFailedError } from "../src/errors.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { decodeReply, ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

const quietHealth = { intervalMs: 0 };

async function cluster(
  n: number,
  options: { runtime?: RuntimeAdapter; clock?: Clock } = {},
): Promise<TestNode[]> {
  return await Promise.all(
    Array.from({ length: n }, (_, i) =>
      startTestNode({
        nodeId: `n${i}`,
        runtime: options.runtime,
        clock: options.clock,
      })),
  );
}

async function closeAll(nodes: TestNode[]) {
  await Promise.all(nodes.map((n) => n.close()));
}

/**
 * Starts `n` nodes (on the config's runtime and clock) and a client of all
 * of them, runs `body`, then disconnects and stops the nodes.
 */
async function withClient(
  n: number,
  config: Omit<Partial<ConnectionConfig>, "runtime"> & {
    runtime?: RuntimeAdapter;
  },
  body: (client: Client, nodes: TestNode[]) => Promise<void>,
): Promise<void> {
  const nodes = await cluster(n, {
    runtime: config.runtime,
    clock: config.clock,
  });
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    ...config,
  });
  try {
    await body(client, nodes);
  } finally {
    await client.disconnect();
    await closeAll(nodes);
  }
}

/** Addresses with nothing listening on them, all different. */
async function deadAddresses(count: number): Promise<string[]> {
  // All up at once, then closed: a port closed and reopened could come back
  // the same, and a host given twice is a ConfigError.
  const up = [];
  for (let i = 0; i < count; i++) up.push(await startTestNode());
  await Promise.all(up.map((n) => n.close()));
  return up.map((n) => n.address);
}

test("Property 1: Connection Establishment", async () => {
  const nodes = await cluster(3);
  const dead = await deadAddresses(2);
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(nodes, { minLength: 1 }),
        fc.subarray(dead),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom("round-robin", "least-in-flight") as fc.Arbitrary<
          "round-robin" | "least-in-flight"
        >,
        fc.integer({ min: 200, max: 5000 }),
        async (live, down, min, extra, loadBalancing, timeoutMs) => {
          const hosts = [...live.map((n) => n.address), ...down];
          const config: ConnectionConfig = {
            hosts: hosts.sort(),
            timeoutMs,
            loadBalancing,
            poolConfig: { minConnections: min, maxConnections: min + extra },
            healthConfig: quietHealth,
          };
          const client = await Client.connect(config);
          try {
            const open = client.stats().nodes.reduce(
              (sum, n) => sum + n.pool.open,
              0,
            );
            assert.ok(open >= 1, "at least one connection is established");
            const healthy = client.stats().nodes.filter((n) => n.healthy);
            assert.equal(healthy.length, live.length);
            const reply = decodeReply(
              await client.request(ops.echo("x"), { idempotent: true }),
            );
            assert.ok(live.some((n) => n.nodeId === reply.nodeId));
          } finally {
            await client.disconnect();
          }
        },
      ),
      { numRuns: 12 },
    );
  } finally {
    await closeAll(nodes);
  }
});

test("connect names every host and why when none can be reached", async () => {
  const dead = await deadAddresses(2);
  await assert.rejects(
    Client.connect({ hosts: dead, healthConfig: quietHealth }),
    (e: unknown) => {
      assert.ok(e instanceof ConnectFailedError);
      assert.equal(e.code, "CONNECT_FAILED");
      assert.equal(e.failures.length, 2);
      for (const address of dead) assert.match(e.message, new RegExp(address));
      assert.match(e.message, /refused/);
      return true;
    },
  );
});

test("a bad configuration is refused before any socket is opened", async () => {
  await assert.rejects(
    Client.connect({ hosts: ["127.0.0.1:0"] }),
    (e: unknown) => e instanceof ConfigError && e.field === "hosts[0]",
  );
});

test("requests spread across every healthy node", async () => {
  await withClient(3, {
    healthConfig: quietHealth,
    poolConfig: { minConnections: 1 },
  }, async (client) => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 90; i++) {
      const { nodeId } = decodeReply(await client.request(ops.echo()));
      seen.set(nodeId, (seen.get(nodeId) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ["n0", "n1", "n2"]);
    for (const count of seen.values()) assert.equal(count, 30);
  });
});

test("an unhealthy node gets no requests; with none healthy the client fails fast", async () => {
  await withClient(3, {
    healthConfig: quietHealth,
    poolConfig: { minConnections: 1 },
  }, async (client, nodes) => {
    const changes: boolean[] = [];
    client.addEventListener(
      "nodeHealthChanged",
      (e) => changes.push(e.detail.healthy),
    );
    assert.equal(client.manager.markNodeUnhealthy(nodes[1].address), true);
    assert.equal(client.manager.markNodeUnhealthy(nodes[1].address), false);
    for (let i = 0; i < 30; i++) {
      const { nodeId } = decodeReply(await client.request(ops.echo()));
      assert.notEqual(nodeId, "n1");
    }
    client.manager.markNodeUnhealthy(nodes[0].address);
    client.manager.markNodeUnhealthy(nodes[2].address);
    await assert.rejects(
      client.request(ops.echo()),
      (e: unknown) =>
        e instanceof NoHealthyNodesError && e.code === "NO_HEALTHY_NODES" &&
        /no healthy node among 3: /.test(e.message) &&
        nodes.every((n) => e.message.includes(n.address)),
    );
    client.manager.markNodeHealthy(nodes[1].address);
    assert.equal(decodeReply(await client.request(ops.echo())).nodeId, "n1");
    assert.deepEqual(changes, [false, false, false, true]);
  });
});

test("with tryAll, a cluster with no healthy node is still tried", async () => {
  await withClient(2, {
    healthConfig: quietHealth,
    whenNoHealthyNodes: "tryAll",
    poolConfig: { minConnections: 0 },
  }, async (client, nodes) => {
    for (const n of nodes) client.manager.markNodeUnhealthy(n.address);
    const ids = new Set<string>();
    for (let i = 0; i < 4; i++) {
      ids.add(decodeReply(await client.request(ops.echo())).nodeId);
    }
    assert.deepEqual([...ids].sort(), ["n0", "n1"]);
  });
});

test("a request that never left is retried on a different node", async () => {
  await withClient(2, {
    healthConfig: quietHealth,
    poolConfig: { minConnections: 0 },
    retryConfig: { initialBackoffMs: 1 },
  }, async (client, nodes) => {
    // Node 0 dies, but the client still believes in it. Once its socket's
    // close has been seen, a request to it can only fail before it is sent.
    await nodes[0].stop();
    for (let i = 0; i < 100 && client.stats().nodes[0].pool.open > 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(client.stats().nodes[0].pool.open, 0);
    const retries: RetryEvent[] = [];
    client.addEventListener("retry", (e) => retries.push(e));
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(decodeReply(await client.request(ops.echo())).nodeId);
      client.manager.markNodeHealthy(nodes[0].address);
    }
    assert.deepEqual(ids, ["n1", "n1", "n1", "n1"]);
    assert.ok(retries.length >= 1);
    for (const r of retries) assert.equal(r.detail.address, nodes[0].address);
    assert.ok(client.stats().retries >= 1);
  });
});

test("a request that may have reached the node is retried only when idempotent", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  await withClient(2, {
    runtime: network,
    clock,
    healthConfig: quietHealth,
    poolConfig: { minConnections: 1 },
    retryConfig: { initialBackoffMs: 10 },
  }, async (client) => {
    const plain = client.request(ops.sleep(100)).catch((e) => e);
    const idempotent = client.request(ops.sleep(100, "again"), {
      idempotent: true,
    }).catch((e) => e);
    await clock.advance(1);
    network.breakAll("cable cut");
    await clock.advance(10);
    await clock.advance(100);
    const plainError = await plain;
    assert.ok(plainError instanceof ConnectionLostError, String(plainError));
    assert.equal(plainError.sent, true);
    assert.equal(replyText(await idempotent), "again");
  });
});

test("a node's own error is not retried unless the node says so", async () => {
  await withClient(1, {
    healthConfig: quietHealth,
    poolConfig: { minConnections: 1 },
    retryConfig: { initialBackoffMs: 1, maxRetries: 2 },
  }, async (client) => {
    await assert.rejects(
      client.request(ops.fail(RemoteErrorCode.NotFound, false)),
      (e: unknown) =>
        e instanceof RemoteError && e.code === "REMOTE_ERROR" &&
        e.remoteCode === RemoteErrorCode.NotFound &&
        /node n0 answered error 3: failed on request/.test(e.message),
    );
    assert.equal(client.stats().retries, 0);
    await assert.rejects(
      client.request(ops.fail(RemoteErrorCode.Overloaded, true)),
      (e: unknown) =>
        e instanceof RetriesExhaustedError && e.attempts === 3 &&
        e.cause instanceof RemoteError,
    );
    assert.equal(client.stats().retries, 2);
  });
});

test("a stopped node is found by the health loop and brought back after it returns", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  await withClient(2, {
    runtime: network,
    clock,
    healthConfig: {
      intervalMs: 1000,
      timeoutMs: 200,
      unhealthyThreshold: 2,
      healthyThreshold: 2,
    },
    poolConfig: { minConnections: 1 },
  }, async (client, nodes) => {
    const changes: string[] = [];
    client.addEventListener("nodeHealthChanged", (e) => {
      const d = e.detail;
      changes.push(
        `${d.address === nodes[0].address ? "n0" : "n1"}:${d.healthy}`,
      );
    });
    await nodes[0].stop();
    await clock.advance(1000);
    assert.equal(
      client.stats().nodes[0].healthy,
      true,
      "one failure is not enough",
    );
    await clock.advance(1000);
    assert.equal(client.stats().nodes[0].healthy, false);
    for (let i = 0; i < 10; i++) {
      assert.equal(decodeReply(await client.request(ops.echo())).nodeId, "n1");
    }
    await nodes[0].start();
    await clock.advance(1000);
    assert.equal(
      client.stats().nodes[0].healthy,
      false,
      "one success is not enough",
    );
    await clock.advance(1000);
    assert.equal(client.stats().nodes[0].healthy, true);
    assert.deepEqual(changes, ["n0:false", "n0:true"]);
    const results = await client.healthCheckAllNodes();
    assert.deepEqual(results.map((r) => r.ok), [true, true]);
    assert.ok(results.every((r) => typeof r.latencyMs === "number"));
  });
});

test("Property 6: Graceful Shutdown", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 25 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 50, max: 250 }),
      async (sleeps, nodeCount, minConnections, graceMs) => {
        const network = createMemoryNetwork();
        const clock = new VirtualClock();
        const nodes = await cluster(nodeCount, { runtime: network, clock });
        const client = await Client.connect({
          hosts: nodes.map((n) => n.address),
          runtime: network,
          clock,
          healthConfig: { intervalMs: 100 },
          poolConfig: { minConnections, maxConnections: 4 },
          requestTimeoutMs: 10_000,
        });
        const outcomes = sleeps.map((ms) =>
          client.request(ops.sleep(ms, String(ms))).then(
            (r) => ({ ok: true as const, text: replyText(r), ms }),
            (error) => ({ ok: false as const, error, ms }),
          )
        );
        await clock.advance(1);
        const done = client.disconnect({ timeoutMs: graceMs });
        assert.equal(client.disconnect({ timeoutMs: graceMs }), done);
        await assert.rejects(
          client.request(ops.echo()),
          (e: unknown) =>
            e instanceof ClientClosedError && e.code === "CLIENT_CLOSED" &&
            /the client is closed/.test(e.message),
        );
        await clock.advance(graceMs + 10);
        await done;
        // Requests were sent at t=0 and disconnect began at t=1, so the
        // grace period ends at t=1+graceMs; a reply due exactly then may
        // land on either side.
        for (const o of await Promise.all(outcomes)) {
          if (o.ms <= graceMs) {
            assert.ok(
              o.ok,
              `a ${o.ms} ms request within the grace period finished`,
            );
          } else if (o.ms > graceMs + 1) {
            assert.ok(
              !o.ok,
              `a ${o.ms} ms request past the grace period was cancelled`,
            );
          }
          if (!o.ok) {
            assert.ok(o.error instanceof ClientClosedError, String(o.error));
          }
        }
        const stats = client.stats();
        assert.equal(stats.inFlight, 0);
        for (const n of stats.nodes) {
          assert.equal(n.pool.open, 0);
          assert.equal(n.pool.waiting, 0);
          assert.equal(n.pool.closed, true);
        }
        assert.equal(network.openChannels, 0, "every socket is closed");
        // Only the nodes' own sleep timers may remain; the client has none.
        await clock.advance(1000);
        assert.equal(clock.pendingTimers, 0);
        await closeAll(nodes);
      },
    ),
    { numRuns: 40 },
  );
});

test("disconnect fails callers waiting for a connection", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes = await cluster(1, { runtime: network, clock });
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    runtime: network,
    clock,
    healthConfig: quietHealth,
    poolConfig: { minConnections: 0, maxConnections: 1 },
  });
  const lent = client.withConnection(async () => {
    await clock.advance(0);
    return new Promise<void>(() => {}); // never finishes on its own
  }).catch((e) => e);
  await clock.advance(1);
  const waiting = client.withConnection(() => Promise.resolve("never")).catch(
    (e) => e,
  );
  await clock.advance(1);
  const done = client.disconnect({ timeoutMs: 50 });
  await clock.advance(60);
  await done;
  assert.ok((await waiting) instanceof ClientClosedError);
  assert.equal(network.openChannels, 0);
  void lent;
  await closeAll(nodes);
});

test("withConnection lends a connection for exclusive use and takes it back", async () => {
  const nodes = await cluster(1);
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    healthConfig: quietHealth,
    poolConfig: { minConnections: 0, maxConnections: 2 },
  });
  try {
    const result = await client.withConnection(async (connection) => {
      assert.equal(client.stats().nodes[0].pool.inUse, 1);
      return replyText(await connection.sendRequest(ops.echo("mine")));
    });
    assert.equal(result, "mine");
    assert.equal(client.stats().nodes[0].pool.inUse, 0);
    await assert.rejects(
      client.withConnection(() => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(client.stats().nodes[0].pool.inUse, 0);
  } finally {
    await client[Symbol.asyncDispose]();
    await closeAll(nodes);
  }
  assert.equal(client.closed, true);
});

test("ping reports the node and a round trip", async () => {
  await withClient(1, {
    healthConfig: quietHealth,
  }, async (client, nodes) => {
    const result = await client.ping();
    assert.equal(result.address, nodes[0].address);
    assert.equal(result.nodeId, "n0");
    assert.ok(result.latencyMs >= 0);
  });
});

test("pool events of every node are forwarded through the client once someone listens", async () => {
  await withClient(2, {
    healthConfig: quietHealth,
    poolConfig: { minConnections: 0, maxConnections: 2 },
  }, async (client) => {
    const seen: string[] = [];
    client.addEventListener("checkedOut", (e) => {
      const d = e.detail;
      seen.push(`${d.address}:${d.mode}`);
    });
    client.addEventListener("checkedOut", () => {}); // a second listener adds no second forwarder
    await client.withConnection(() => Promise.resolve());
    await client.request(ops.echo());
    assert.equal(seen.length, 2, seen.join(", "));
    assert.ok(seen.some((s) => s.endsWith(":exclusive")));
    assert.ok(seen.some((s) => s.endsWith(":shared")));
  });
});

test("the logger hook hears health changes and retries", async () => {
  const nodes = await cluster(2);
  const entries: LogEntry[] = [];
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    healthConfig: quietHealth,
    poolConfig: { minConnections: 0 },
    retryConfig: { initialBackoffMs: 1 },
    logger: (e) => entries.push(e),
  }).catch(() => undefined);
  assert.ok(client);
  try {
    client.manager.markNodeUnhealthy(nodes[0].address, "maintenance");
    // A retryable answer that says nothing against the node (Overloaded
    // would count against it and take it out after a few).
    await assert.rejects(
      client.request(ops.fail(100, true)),
      (e: unknown) =>
        e instanceof RetriesExhaustedError &&
        e.code === "RETRIES_EXHAUSTED" &&
        /gave up after 4 attempts: node n1 answered error 100/.test(e.message),
    );
    assert.ok(
      entries.some((e) =>
        e.level === "warn" && e.event === "nodeHealthChanged" &&
        e.address === nodes[0].address && /maintenance/.test(e.message)
      ),
    );
    assert.equal(entries.filter((e) => e.event === "retry").length, 3);
  } finally {
    await client.disconnect();
    await closeAll(nodes);
  }
  assert.throws(
    () =>
      resolveConfig({ hosts: ["a"], logger: "console" as unknown as Logger }),
    (e: unknown) => e instanceof ConfigError && e.field === "logger",
  );
});
