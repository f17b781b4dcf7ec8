// Live membership (issue #14, point 5): nodes added to and removed from a
// running client, and host names resolved afresh on every connect so that a
// node that moved is found again. Every test runs on the virtual clock over
// the in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { NodeMembershipEvent } from "../src/cluster/events.ts";
import {
  ClientClosedError,
  ConfigError,
  ConnectionLostError,
  PoolClosedError,
  RemoteError,
} from "../src/errors.ts";
import type { LogEntry } from "../src/config/shapes.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ConnectOptions, RuntimeAdapter } from "../src/runtime/types.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { memoryScene as scene } from "./support/memory_scene.ts";
import { failure } from "./support/fault_checks.ts";

/** Lets pending promise callbacks run (no time passes). */
async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/** Who answered each reply. */
function answeredBy(replies: Uint8Array[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const reply of replies) {
    const id = decodeReply(reply).nodeId;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

// --- addNode -----------------------------------------------------------------

test("a node added under load joins the balancer once connected and takes requests", async () => {
  await scene(2, {}, async ({ client, clock, spare }) => {
    const n2 = await spare("n2");
    // Load: requests held by the two nodes for 50 ms.
    const held = Array.from(
      { length: 16 },
      () => client.request(ops.sleep(50), { idempotent: true }),
    );
    const result = await client.addNode(n2.address);
    assert.equal(result.ok, true, String(result.error));
    assert.equal(result.healthy, true);
    assert.equal(result.address, n2.address);
    assert.equal(result.nodeId, "n2");
    // The newcomer is idle: a load-aware balancer sends it the new work.
    const replies = await Promise.all(
      Array.from({ length: 12 }, () => client.request(ops.echo("x"))),
    );
    assert.ok((answeredBy(replies).get("n2") ?? 0) > 0);
    await clock.advance(50);
    const heldReplies = await Promise.all(held);
    assert.equal(heldReplies.length, 16);
    const stats = client.stats();
    assert.deepEqual(
      stats.nodes.map((n) => [n.address, n.healthy, n.inFlight]),
      [
        [stats.nodes[0].address, true, 0],
        [stats.nodes[1].address, true, 0],
        [n2.address, true, 0],
      ],
    );
    assert.equal(stats.nodes[2].nodeId, "n2");
    const checks = await client.healthCheckAllNodes();
    assert.deepEqual(checks.map((c) => [c.nodeId, c.ok]), [
      ["n0", true],
      ["n1", true],
      ["n2", true],
    ]);
  });
});

test("an added node that does not answer yet stays out of rotation until its health checks pass", async () => {
  await scene(
    1,
    { healthConfig: { intervalMs: 0, healthyThreshold: 2 } },
    async ({ client, spare }) => {
      // A free port: start a node there and stop it.
      const probe = await spare("probe");
      const address = probe.address;
      const port = probe.port;
      await probe.close();
      const result = await client.addNode(address);
      assert.equal(result.ok, false);
      assert.equal(result.healthy, false);
      assert.ok(result.error instanceof Error);
      // Nothing is sent to it meanwhile.
      const replies = await Promise.all(
        Array.from({ length: 6 }, () => client.request(ops.echo("x"))),
      );
      assert.deepEqual([...answeredBy(replies)], [["n0", 6]]);
      assert.equal(client.stats().nodes[1].healthy, false);
      // It comes up; the health checks bring it in.
      await spare("late", port);
      await client.healthCheckAllNodes();
      assert.equal(client.stats().nodes[1].healthy, false);
      await client.healthCheckAllNodes();
      assert.equal(client.stats().nodes[1].healthy, true);
      const later = await Promise.all(
        Array.from({ length: 6 }, () => client.request(ops.echo("x"))),
      );
      assert.ok((answeredBy(later).get("late") ?? 0) > 0);
    },
  );
});

test("pool events of an added node reach listeners subscribed before, after nodeAdded", async () => {
  await scene(1, {}, async ({ client, clock, spare }) => {
    const n1 = await spare("n1");
    const seen: string[] = [];
    const added: NodeMembershipEvent[] = [];
    client.addEventListener("connectionCreated", (e) => {
      // The first node's pool fills up meanwhile: only the newcomer's count.
      if (e.detail.address === n1.address) {
        seen.push(`created ${e.detail.address}`);
      }
    });
    client.addEventListener("nodeAdded", (e) => {
      added.push(e);
      seen.push(`added ${e.detail.address}`);
    });
    client.addEventListener("nodeHealthChanged", (e) => {
      seen.push(`${e.detail.healthy ? "up" : "down"} ${e.detail.address}`);
    });
    await clock.advance(7);
    await client.addNode(n1.address);
    // Its first connection alone; the rest of its pool fills up later.
    assert.deepEqual(seen.slice(0, 3), [
      `added ${n1.address}`,
      `created ${n1.address}`,
      `up ${n1.address}`,
    ]);
    assert.equal(added.length, 1);
    assert.equal(added[0].type, "nodeAdded");
    assert.equal(added[0].at, clock.now());
    assert.deepEqual(added[0].detail, {
      address: n1.address,
      nodeId: undefined,
    });
  });
});

// --- removeNode --------------------------------------------------------------

test("removing a node: requests in flight on it finish, nothing new goes there, its sockets close", async () => {
  await scene(2, {}, async ({ client, nodes, clock }) => {
    const [n0, n1] = nodes;
    const held = Array.from(
      { length: 10 },
      () => client.request(ops.sleep(100, "held")),
    );
    await settle();
    const onN1 = client.stats().nodes[1].inFlight;
    assert.ok(onN1 > 0, "some requests are in flight on n1");
    const events: string[] = [];
    client.addEventListener("poolClosed", (e) => {
      events.push(`poolClosed ${e.detail.address}`);
    });
    client.addEventListener("nodeRemoved", (e) => {
      assert.equal(e.at, clock.now());
      assert.deepEqual(e.detail, { address: n1.address, nodeId: "n1" });
      events.push(`nodeRemoved ${e.detail.address}`);
    });
    let gone = false;
    const removal = client.removeNode(n1.address).then(() => (gone = true));
    // Out of the registry and the balancer at once.
    assert.deepEqual(client.stats().nodes.map((n) => n.address), [n0.address]);
    assert.equal(client.manager.node(n1.address), undefined);
    const fresh = await Promise.all(
      Array.from({ length: 8 }, () => client.request(ops.echo("new"))),
    );
    assert.deepEqual([...answeredBy(fresh)], [["n0", 8]]);
    await settle();
    assert.equal(gone, false, "it waits for its requests in flight");
    assert.ok(n1.stats.open > 0);
    await clock.advance(100);
    const replies = await Promise.all(held);
    assert.equal(answeredBy(replies).get("n1"), onN1);
    await removal;
    assert.equal(gone, true);
    assert.deepEqual(events, [
      `poolClosed ${n1.address}`,
      `nodeRemoved ${n1.address}`,
    ]);
    await settle();
    assert.equal(n1.stats.open, 0, "its sockets are closed");
    assert.equal(client.stats().inFlight, 0);
    assert.deepEqual(
      (await client.healthCheckAllNodes()).map((c) => c.address),
      [n0.address],
    );
  });
});

test("a connection lent for exclusive use on a removed node closes when returned", async () => {
  await scene(2, {}, async ({ client, nodes }) => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    let lentTo!: string;
    let ready!: () => void;
    const lent = new Promise<void>((resolve) => (ready = resolve));
    const work = client.withConnection(async (connection) => {
      lentTo = connection.nodeId!;
      ready();
      await hold;
      return decodeReply(await connection.sendRequest(ops.echo("mine")));
    });
    await lent;
    const node = nodes.find((n) => n.nodeId === lentTo)!;
    let gone = false;
    const removal = client.removeNode(node.address).then(() => (gone = true));
    await settle();
    assert.equal(gone, false);
    // The holder keeps working on it until it gives it back.
    release();
    assert.equal((await work).nodeId, lentTo);
    await removal;
    await settle();
    assert.equal(node.stats.open, 0);
  });
});

test("a withConnection callback that awaits its own node's removal: after timeoutMs its connection is destroyed and both settle", async () => {
  await scene(2, { timeoutMs: 500 }, async ({ client, nodes, clock }) => {
    let removed = false;
    let held!: Promise<unknown>;
    let ready!: () => void;
    const lent = new Promise<void>((resolve) => (ready = resolve));
    const work = client.withConnection(async (connection) => {
      const node = nodes.find((n) => n.nodeId === connection.nodeId)!;
      held = failure(
        connection.sendRequest(ops.sleep(60_000), { timeoutMs: 60_000 }),
      );
      ready();
      await client.removeNode(node.address);
      removed = true;
      return node;
    });
    await lent;
    await settle();
    await clock.advance(499);
    await settle();
    assert.equal(removed, false, "the holder has the grace to finish");
    await clock.advance(1);
    await settle(50);
    const inTime = removed;
    if (!inTime) {
      // Deadlocked: end it through disconnect's grace, so that the test
      // fails here rather than hangs in the scene's own disconnect.
      const closing = client.disconnect({ timeoutMs: 1 });
      await clock.advance(1);
      await closing;
    }
    assert.equal(inTime, true, "the removal ends after timeoutMs");
    const node = await work;
    const error = await held;
    assert.ok(error instanceof ConnectionLostError, String(error));
    assert.match(
      error.message,
      new RegExp(`${node.address} was removed from the client.*500 ms`),
    );
    assert.equal(client.manager.node(node.address), undefined);
    assert.equal(client.stats().inFlight, 0);
    await settle();
    assert.equal(node.stats.open, 0, "its sockets are closed");
    // The client goes on with the other node.
    const other = nodes.find((n) => n !== node)!;
    assert.equal(
      decodeReply(await client.request(ops.echo("x"))).nodeId,
      other.nodeId,
    );
  });
});

test("a request on a removed node cut off after timeoutMs is not counted against the nodes (no ejection spent on it)", async () => {
  await scene(
    3,
    {
      timeoutMs: 500,
      // One ejection at a time, after a single failure.
      outlierEjection: { consecutiveFailures: 1, maxEjectedShare: 0.34 },
    },
    async ({ client, clock }) => {
      const errors: unknown[] = [];
      const held = Array.from(
        { length: 3 },
        () =>
          client.request(ops.sleep(60_000), { timeoutMs: 60_000, retry: false })
            .catch((error) => errors.push(error)),
      );
      await settle();
      const busy = client.stats().nodes[0];
      assert.equal(busy.inFlight, 1);
      const removal = client.removeNode(busy.address);
      await clock.advance(500);
      await removal;
      await settle();
      assert.equal(errors.length, 1, "only the removed node's request ended");
      assert.ok(errors[0] instanceof ConnectionLostError, String(errors[0]));
      assert.match(errors[0].message, /was removed from the client/);
      // The ejection the removed node's loss would have spent is still
      // there for a node that fails.
      const unavailable = await failure(
        client.request(ops.fail(RemoteErrorCode.Unavailable, false), {
          retry: false,
        }),
      );
      const ejected = client.stats().nodes.filter((n) => !n.healthy).length;
      await clock.advance(60_000);
      await Promise.all(held);
      assert.ok(unavailable instanceof RemoteError, String(unavailable));
      assert.equal(ejected, 1, "the failing node is ejected");
    },
  );
});

test("requests waiting for a connection of a removed node are retried on another node", async () => {
  await scene(
    2,
    {
      poolConfig: { minConnections: 1, maxConnections: 1 },
    },
    async ({ client, nodes, clock }) => {
      const [n0, n1] = nodes;
      // With n0 out of rotation every request goes to n1, whose single
      // connection is lent away: the requests queue in its pool.
      client.manager.markNodeUnhealthy(n0.address, "test");
      const connection = await client.manager.node(n1.address)!.pool
        .getConnection();
      const waiting = Array.from(
        { length: 3 },
        () => client.request(ops.echo("w")),
      );
      await settle();
      assert.equal(client.stats().nodes[1].pool.waiting, 3);
      client.manager.markNodeHealthy(n0.address, "test");
      const removal = client.removeNode(n1.address);
      await clock.advance(1000); // the retries' backoff
      const replies = await Promise.all(waiting);
      assert.deepEqual([...answeredBy(replies)], [["n0", 3]]);
      assert.equal(client.manager.node(n1.address), undefined);
      connection.close();
      await removal;
    },
  );
});

test("the last node cannot be removed", async () => {
  await scene(2, {}, async ({ client, nodes }) => {
    await client.removeNode(nodes[0].address);
    const error = await failure(client.removeNode(nodes[1].address));
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.field, "address");
    assert.match(error.message, /last node/);
    // Still serving.
    assert.equal(decodeReply(await client.request(ops.echo("x"))).nodeId, "n1");
  });
});

test("removing a node while it is being removed waits for the same removal", async () => {
  await scene(2, {}, async ({ client, nodes, clock }) => {
    const held = client.request(ops.sleep(10), { retry: false });
    await settle();
    const busy = client.stats().nodes.findIndex((n) => n.inFlight > 0);
    const address = nodes[busy].address;
    let removed = 0;
    client.addEventListener("nodeRemoved", () => removed++);
    const first = client.removeNode(address);
    const second = client.removeNode(address);
    await clock.advance(10);
    await held;
    await Promise.all([first, second]);
    assert.equal(removed, 1);
    // Once gone, it is unknown.
    assert.ok(await failure(client.removeNode(address)) instanceof ConfigError);
  });
});

// --- slots -------------------------------------------------------------------

test("a slot freed by a removed node is reused without mixing in-flight counts", async () => {
  await scene(2, {}, async ({ client, nodes, clock, spare }) => {
    const held = Array.from(
      { length: 6 },
      () => client.request(ops.sleep(20), { retry: false }),
    );
    await settle();
    const onN1 = client.stats().nodes[1].inFlight;
    assert.ok(onN1 > 0);
    const removal = client.removeNode(nodes[1].address);
    const n2 = await spare("n2");
    // n2 takes n1's slot; n1's requests in flight are not n2's.
    await client.addNode(n2.address);
    assert.equal(client.stats().nodes[1].inFlight, 0);
    await clock.advance(20);
    await Promise.all(held);
    await removal;
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
    const replies = await Promise.all(
      Array.from({ length: 4 }, () => client.request(ops.echo("x"))),
    );
    assert.deepEqual([...answeredBy(replies)].sort(), [["n0", 2], ["n2", 2]]);
  });
});

test("adding more nodes than the loads array holds grows it; balancing still reads the right loads", async () => {
  await scene(1, {}, async ({ client, clock, spare }) => {
    // One configured host: room for 8 slots. Twelve more forces growth.
    for (let i = 1; i <= 12; i++) {
      const node = await spare(`m${i}`);
      assert.equal((await client.addNode(node.address)).healthy, true);
    }
    assert.equal(client.stats().nodes.length, 13);
    // 26 slow requests: least-in-flight spreads them two per node, which
    // only happens if each pick reads each node's own count.
    const held = Array.from(
      { length: 26 },
      () => client.request(ops.sleep(5), { retry: false }),
    );
    await settle();
    assert.deepEqual(
      client.stats().nodes.map((n) => n.inFlight),
      Array(13).fill(2),
    );
    await clock.advance(5);
    await Promise.all(held);
    assert.deepEqual(
      client.stats().nodes.map((n) => n.inFlight),
      Array(13).fill(0),
    );
  });
});

// --- input -------------------------------------------------------------------

test("addNode and removeNode refuse bad input with typed errors and change nothing", async () => {
  await scene(2, {}, async ({ client, nodes }) => {
    const before = client.stats().nodes.map((n) => n.address);
    const bad: [() => Promise<unknown>, string, RegExp?][] = [
      [() => client.addNode(42 as unknown as string), "host"],
      [() => client.addNode(undefined as unknown as string), "host"],
      [() => client.addNode("bad host!"), "host"],
      [() => client.addNode("db:99999"), "host", /1–65535/],
      [() => client.addNode(nodes[0].address), "host", /already/],
      [() => client.addNode(` ${nodes[1].address} `), "host", /already/],
      [
        () => client.addNode("nodewire://app:hunter2@db:7000"),
        "host",
        /connection string/,
      ],
      [() => client.addNode("tcp://db:7000"), "host", /no scheme/],
      [() => client.removeNode({} as unknown as string), "address"],
      [() => client.removeNode("elsewhere:7000"), "address", /not a node/],
      [() => client.removeNode("http://db:7000"), "address", /no scheme/],
      [() => client.removeNode("[::1"), "address"],
    ];
    for (const [call, field, message] of bad) {
      const error = await failure(call());
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.field, field);
      if (message) assert.match(error.message, message);
      assert.doesNotMatch(error.message, /hunter2/);
    }
    assert.deepEqual(client.stats().nodes.map((n) => n.address), before);
    // An address names the node whatever its spelling.
    const [host, port] = [nodes[1].hostname, nodes[1].port];
    await client.removeNode(` ${host}:${port}`);
    assert.deepEqual(client.stats().nodes.map((n) => n.address), [before[0]]);
  });
});

test("after disconnect, addNode and removeNode reject with ClientClosedError", async () => {
  await scene(2, {}, async ({ client, nodes, spare }) => {
    const n2 = await spare("n2");
    await client.disconnect();
    assert.ok(
      await failure(client.addNode(n2.address)) instanceof ClientClosedError,
    );
    assert.ok(
      await failure(client.removeNode(nodes[0].address)) instanceof
        ClientClosedError,
    );
    assert.ok(
      await failure(client.manager.addNode(n2.address)) instanceof
        ClientClosedError,
    );
  });
});

test("disconnect closes the pool of a node still draining after removeNode", async () => {
  await scene(2, {}, async ({ client, nodes, clock }) => {
    const held = failure(client.request(ops.sleep(1000), { retry: false }));
    await settle();
    const busy = client.stats().nodes.findIndex((n) => n.inFlight > 0);
    const removal = client.removeNode(nodes[busy].address);
    const closing = client.disconnect({ timeoutMs: 1 });
    await settle();
    await clock.advance(1);
    await closing;
    assert.ok((await held) instanceof ClientClosedError);
    await removal;
    await settle();
    assert.equal(nodes[busy].stats.open, 0);
  });
});

// --- host names resolved afresh ----------------------------------------------

/**
 * The memory network behind a tiny name service: a connect to a name in
 * `names` goes to the address it maps to now, as a DNS lookup would.
 */
function withNames(
  network: RuntimeAdapter,
  names: Map<string, string>,
  asked: string[],
): RuntimeAdapter {
  return {
    ...network,
    name: network.name,
    listen: (options, onConnection) => network.listen(options, onConnection),
    connect(options: ConnectOptions) {
      asked.push(options.hostname);
      const ip = names.get(options.hostname) ?? options.hostname;
      return network.connect({ ...options, hostname: ip });
    },
  };
}

test("a node that moved to another address is found again under the same name", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const names = new Map([["db.moving", "10.0.0.1"]]);
  const asked: string[] = [];
  const old = await startTestNode({
    nodeId: "old",
    hostname: "10.0.0.1",
    port: 7000,
    runtime: network,
    clock,
  });
  let moved: TestNode | undefined;
  const client = await Client.connect({
    hosts: ["db.moving:7000"],
    runtime: withNames(network, names, asked),
    clock,
    healthConfig: { intervalMs: 0 },
  });
  try {
    assert.equal(
      decodeReply(await client.request(ops.echo("x"))).nodeId,
      "old",
    );
    // The node moves: it comes up elsewhere, the name follows, the old
    // address goes away.
    moved = await startTestNode({
      nodeId: "new",
      hostname: "10.0.0.2",
      port: 7000,
      runtime: network,
      clock,
    });
    names.set("db.moving", "10.0.0.2");
    await old.close();
    await settle();
    const [check] = await client.healthCheckAllNodes();
    assert.equal(check.ok, true, String(check.error));
    assert.equal(check.nodeId, "new");
    const reply = await client.request(ops.echo("x"), { idempotent: true });
    assert.equal(decodeReply(reply).nodeId, "new");
    const [node] = client.stats().nodes;
    assert.equal(node.address, "db.moving:7000");
    assert.equal(node.nodeId, "new");
    assert.equal(node.healthy, true);
    // Every connect asked for the name, never for an address it had learned.
    assert.ok(asked.length >= 2);
    assert.ok(asked.every((name) => name === "db.moving"), asked.join());
  } finally {
    await client.disconnect({ timeoutMs: 1 });
    await old.close();
    await moved?.close();
  }
});

test("removeNode clears the node's pool with a PoolClosedError (code POOL_CLOSED): poolCleared's reason, the log line's error and the cause of what its waiters get carry a code, not a plain Error", async () => {
  const logged: LogEntry[] = [];
  await scene(
    2,
    {
      poolConfig: { minConnections: 1, maxConnections: 1 },
      logger: (entry) => void logged.push(entry),
    },
    async ({ client, nodes }) => {
      const [, n1] = nodes;
      const pool = client.manager.node(n1.address)!.pool;
      const reasons: unknown[] = [];
      pool.addEventListener(
        "poolCleared",
        (e) => reasons.push(e.detail.reason),
      );
      // The pool's one connection lent away: the next checkout waits.
      const connection = await pool.getConnection();
      const waiting = pool.getConnection().then(
        () => assert.fail("expected the wait to fail"),
        (error: unknown) => error,
      );
      await settle();
      const removal = client.removeNode(n1.address);
      try {
        const error = await waiting;
        assert.equal(reasons.length, 1);
        const [reason] = reasons;
        assert.ok(reason instanceof PoolClosedError, String(reason));
        assert.equal(reason.code, "POOL_CLOSED");
        assert.equal(reason.address, n1.address);
        // The waiter's own error says the pool was cleared, retryably: it
        // was never sent, and goes elsewhere.
        assert.ok(error instanceof PoolClosedError, String(error));
        assert.equal(error.code, "POOL_CLEARED");
        assert.equal(error.retryable, true);
        assert.equal(error.cause, reason);
        const line = logged.find((entry) => entry.event === "poolCleared");
        assert.ok(line, "the clearing was logged");
        assert.equal(
          (line.error as PoolClosedError | undefined)?.code,
          "POOL_CLOSED",
        );
      } finally {
        // Given back, so the removal need not wait out its grace.
        connection.close();
        await removal;
      }
    },
  );
});
