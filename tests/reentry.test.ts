// Callers that race the client or re-enter it: a call in the same tick as
// a change to its node, a call from a listener that the client's own work
// dispatches from inside another call, a core object or a test node asked
// to start and stop at once. Every test runs on the virtual clock over the
// in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { ConnectionManager } from "../src/cluster/manager.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { memoryScene } from "./support/memory_scene.ts";
import { type NodeConnection, setup } from "./support/pool_scene.ts";

const ONE_IDLE = { poolConfig: { minConnections: 1, maxConnections: 1 } };

test("a ping in flight when its node is removed finishes, as a request does", async () => {
  const config = { ...ONE_IDLE, loadBalancing: "round-robin" as const };
  await memoryScene(2, config, async ({ client, clock }) => {
    await clock.advance(1);
    // Strictly in turn: the next ping goes to the node this one did not.
    const first = client.ping();
    await clock.advance(1);
    const [a, b] = client.manager.nodes.map((node) => node.address);
    const removed = (await first).address === a ? b : a;
    const ping = client.ping();
    // Same tick: the ping has its node and its connection already.
    const removal = client.removeNode(removed);
    await clock.advance(1);
    const result = await ping;
    assert.equal(result.address, removed, "the ping went to the removed node");
    await removal;
    assert.equal(client.stats().inFlight, 0);
  });
});

test("a ping in flight when its node turns unhealthy finishes, as a request does", async () => {
  await memoryScene(1, ONE_IDLE, async ({ client, clock }) => {
    await clock.advance(1);
    const address = client.manager.nodes[0].address;
    const ping = client.ping();
    // Clears the pool: its idle connections close, busy ones finish first.
    assert.ok(client.manager.markNodeUnhealthy(address, "test"));
    await clock.advance(1);
    assert.equal((await ping).address, address);
    assert.equal(client.stats().inFlight, 0);
  });
});

test("a disconnect() from a listener its own shutdown wakes gets the same promise, and the client shuts down once", async () => {
  const log: string[] = [];
  const logger = (entry: { event?: string }) => {
    if (entry.event === "disconnected") log.push(entry.event);
  };
  await memoryScene(2, { logger }, async ({ client, clock }) => {
    const again: Promise<void>[] = [];
    // Closing the idle connections is the shutdown's first step when
    // nothing is in flight: their events come from inside disconnect().
    client.addEventListener("connectionClosed", () => {
      again.push(client.disconnect({ timeoutMs: 0 }));
    });
    const first = client.disconnect();
    for (let i = 0; i < 10; i++) await clock.advance(10);
    await first;
    assert.ok(again.length > 0, "the listener ran");
    for (const promise of again) assert.equal(promise, first);
    assert.deepEqual(log, ["disconnected"]);
  });
});

test("a request from a listener that a lazy client's first connect wakes waits for that connect, and starts no other", async () => {
  const log: string[] = [];
  const logger = (entry: { event?: string }) => {
    if (entry.event === "connected") log.push(entry.event);
  };
  await memoryScene(2, { logger }, async ({ client, clock }) => {
    const inner: Promise<Uint8Array>[] = [];
    // The connect's own checkouts dispatch this from inside the first call.
    client.addEventListener("checkoutStarted", () => {
      if (inner.length < 2) inner.push(client.request(ops.echo("inner")));
    });
    const first = client.request(ops.echo("first"));
    for (let i = 0; i < 10; i++) await clock.advance(10);
    await first;
    assert.equal(inner.length, 2, "the listener ran");
    await Promise.all(inner);
    assert.deepEqual(log, ["connected"]);
  }, { lazy: true });
});

test("a health check asked for by a listener that a sweep's checkout wakes shares that sweep", async () => {
  await memoryScene(2, {}, async ({ client, clock }) => {
    // Lazy: no connection yet, so each check's checkout starts, and its
    // event is dispatched from inside the call.
    const inner: Promise<unknown>[] = [];
    client.addEventListener("checkoutStarted", () => {
      if (inner.length < 2) inner.push(client.healthCheckAllNodes());
    });
    const first = client.healthCheckAllNodes();
    for (let i = 0; i < 10; i++) await clock.advance(10);
    const results = await first;
    assert.deepEqual(results.map((r) => r.ok), [true, true]);
    assert.ok(inner.length > 0, "the listener ran");
    for (const promise of inner) assert.equal(promise, first);
  }, { lazy: true });
});

test("removing a node again from a listener that its removal wakes gets the same wait", async () => {
  await memoryScene(3, {}, async ({ client, clock }) => {
    const target = client.manager.nodes[0].address;
    const again: Promise<void>[] = [];
    // Clearing its pool is the removal's first step: from inside the call.
    client.addEventListener("poolCleared", (e) => {
      if (e.detail.address === target) again.push(client.removeNode(target));
    });
    const first = client.removeNode(target);
    for (let i = 0; i < 10; i++) await clock.advance(10);
    await first;
    assert.equal(again.length, 1, "the listener ran");
    await again[0];
    assert.equal(client.stats().nodes.length, 2);
  });
});

test("a manager connected twice at once runs one health loop, and close() leaves no timer", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ nodeId: "n0", runtime: network, clock });
  const manager = new ConnectionManager(
    resolveConfig({
      hosts: [node.address],
      runtime: network,
      clock,
      healthConfig: { intervalMs: 1000 },
    }),
    network,
  );
  try {
    const both = Promise.all([manager.connect(), manager.connect()]);
    for (let i = 0; i < 5; i++) await clock.advance(1);
    await both;
    for (let i = 0; i < 3; i++) await clock.advance(1000);
    const closed = manager.close();
    for (let i = 0; i < 5; i++) await clock.advance(1);
    await closed;
    assert.equal(clock.pendingTimers, 0);
  } finally {
    await manager.close();
    await node.close();
  }
});

test("disconnect() ends the requests of a node removed twice (removed, added again, removed again) while both still drain", async () => {
  await memoryScene(1, { retryConfig: { maxRetries: 0 } }, async (scene) => {
    const { client, clock, network } = scene;
    const extra = await scene.spare("n9");
    const slow = () =>
      client.request(ops.sleep(1000, "s")).then(() => "ok", (e) => e.code);
    const calls: Promise<string>[] = [];
    for (const _ of [1, 2]) {
      await client.addNode(extra.address);
      await clock.advance(1);
      // Some of these land on the extra node, which then drains them.
      for (let i = 0; i < 6; i++) calls.push(slow());
      await clock.advance(1);
      client.removeNode(extra.address).catch(() => {});
      await clock.advance(1);
    }
    let done = false;
    const disconnect = client.disconnect({ timeoutMs: 10 }).then(() => {
      done = true;
    });
    for (let i = 0; i < 10; i++) await clock.advance(5);
    assert.ok(done, "disconnect ended within its grace");
    assert.equal(client.stats().inFlight, 0);
    assert.equal(network.openChannels, 0, "every socket closed");
    await disconnect;
    for (const outcome of await Promise.all(calls)) {
      assert.ok(outcome === "ok" || outcome === "CLIENT_CLOSED", outcome);
    }
  });
});

test("a test node closed while it starts again is closed when close() resolves", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ nodeId: "n0", runtime: network });
  await node.stop();
  const starting = node.start();
  await node.close();
  await starting;
  assert.equal(node.running, false);
  await assert.rejects(
    network.connect({ hostname: "127.0.0.1", port: node.port }),
    { code: "CONNECTION_REFUSED" },
  );
});

test("a getConnection() from a checkedIn listener queues behind the shared waiter already waiting: the waiter is served first, at once", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const conn = await pool.getConnection();
  const order: string[] = [];
  const shared = pool.acquireShared({ timeoutMs: 1000 }).then((c) => {
    order.push("shared waiter");
    return c;
  });
  let again: Promise<unknown> | undefined;
  pool.addEventListener("checkedIn", () => {
    again ??= pool.getConnection({ timeoutMs: 1000 }).then((c) => {
      order.push("listener");
      return c;
    });
  });
  await clock.advance(1);
  assert.equal(pool.stats().waiting, 1);
  pool.returnConnection(conn);
  await clock.advance(1);
  assert.deepEqual(order, ["shared waiter", "listener"]);
  assert.equal(await shared, conn);
  pool.returnConnection(await again as typeof conn);
  await pool.close();
});

test("a clear() from a connectionCreated listener drops the connection being opened as stale: it does not join the cleared pool", async () => {
  const { clock, pool, node } = setup({ maxConnections: 2 });
  const log: string[] = [];
  for (const type of ["connectionReady", "connectionClosed"] as const) {
    pool.addEventListener(type, (e) => {
      const detail = e.detail as { connectionId: number; reason?: string };
      log.push(`${type} ${detail.connectionId} ${detail.reason ?? ""}`.trim());
    });
  }
  let cleared = false;
  pool.addEventListener("connectionCreated", () => {
    if (cleared) return;
    cleared = true;
    pool.clear(new Error("node unhealthy"));
  });
  const first = pool.acquireShared({ timeoutMs: 1000 }).catch((e) => e);
  await clock.advance(1);
  assert.match(String(await first), /was cleared/);
  assert.deepEqual(log, ["connectionClosed 1 stale"]);
  assert.equal(pool.stats().open, 0);
  assert.equal(node.connections[0].closeCalls, 1);
  // The pool stays usable: the next caller gets a fresh connection.
  const next = await pool.acquireShared({ timeoutMs: 1000 });
  assert.equal(next.id, 2);
  await pool.close();
});

test("a getConnection() from a checkedIn listener while an exclusive caller waits: the returned connection goes to the waiter, and the listener's caller waits its turn; it is never lent twice", async () => {
  const { clock, pool } = setup({ maxConnections: 1 });
  const conn = await pool.getConnection();
  const holders: string[] = [];
  const waiter = pool.getConnection({ timeoutMs: 1000 }).then((c) => {
    holders.push("waiter");
    return c;
  });
  let again: Promise<unknown> | undefined;
  pool.addEventListener("checkedIn", () => {
    again ??= pool.getConnection({ timeoutMs: 1000 }).then((c) => {
      holders.push("listener");
      return c;
    }, (e) => e);
  });
  await clock.advance(1);
  pool.returnConnection(conn);
  await clock.advance(1);
  assert.deepEqual(holders, ["waiter"], "lent once, to the oldest waiter");
  assert.equal(pool.stats().inUse, 1);
  assert.equal(pool.stats().waiting, 1);
  pool.returnConnection(await waiter);
  await clock.advance(1);
  assert.deepEqual(holders, ["waiter", "listener"]);
  pool.returnConnection(await again as typeof conn);
  await pool.close();
});

test("exclusive callers are served in the order they asked, and no connection is lent to two at once, whatever the returns, the loads and the listeners that ask again from checkedIn", async () => {
  type Step = { k: string; i?: number; t?: number; v?: string | number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.constant({ k: "get" }),
    fc.constant({ k: "share" }),
    fc.record({ k: fc.constant("return"), i: fc.nat(5) }),
    fc.record({
      k: fc.constant("advance"),
      t: fc.integer({ min: 0, max: 50 }),
    }),
    fc.record({
      k: fc.constant("reenter"),
      v: fc.constantFrom("get", "share"),
    }),
    fc.record({ k: fc.constant("load"), i: fc.nat(3), v: fc.nat(3) }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { maxLength: 40 }),
      fc.integer({ min: 1, max: 3 }),
      async (steps, max) => {
        const { clock, pool, node } = setup({
          maxConnections: max,
          connectionTimeoutMs: 1_000_000,
          multiplexThreshold: 2,
        });
        const served: number[] = [];
        const lent: NodeConnection[] = [];
        const twice: string[] = [];
        let asked = 0;
        let reenter = "none";
        const ask = (exclusive: boolean) => {
          const id = asked++;
          const call = exclusive ? pool.getConnection() : pool.acquireShared();
          call.then((conn) => {
            if (!exclusive) return;
            if (lent.includes(conn)) twice.push(`connection ${conn.id}`);
            served.push(id);
            lent.push(conn);
          }, () => {});
        };
        pool.addEventListener("checkedIn", () => {
          if (reenter === "none") return;
          const again = reenter;
          reenter = "none";
          ask(again === "get");
        });
        for (const s of steps) {
          if (s.k === "get" || s.k === "share") ask(s.k === "get");
          else if (s.k === "return") {
            const conn = lent.splice(s.i! % Math.max(1, lent.length), 1)[0];
            if (conn) pool.returnConnection(conn);
          } else if (s.k === "advance") await clock.advance(s.t!);
          else if (s.k === "reenter") reenter = s.v as string;
          else {
            const conn = node.connections[s.i! % node.connections.length];
            if (conn) conn.inFlight = s.v as number;
          }
        }
        await clock.advance(0);
        assert.deepEqual(twice, []);
        assert.deepEqual(served, [...served].sort((a, b) => a - b));
        for (const conn of node.connections) conn.inFlight = 0;
        for (let round = 0; round < 5; round++) {
          await clock.advance(0);
          for (const conn of lent.splice(0)) pool.returnConnection(conn);
        }
        await pool.close();
      },
    ),
    { numRuns: 100 },
  );
});

for (const call of ["acquireShared", "getConnection"] as const) {
  test(`a call to ${call}() whose pick drops a dead connection, whose connectionClosed listener closes the pool, is refused as by a closed pool, not queued for ever`, async () => {
    const { clock, pool } = setup({ maxConnections: 1 });
    const first = await pool.acquireShared({ timeoutMs: 1000 });
    // Dead, but its `closed` has not settled: the next pick finds it so
    // and drops it, which tells connectionClosed's listeners at once.
    first.isOpen = false;
    pool.addEventListener("connectionClosed", () => void pool.close());
    let outcome = "pending";
    pool[call]({ timeoutMs: 50 }).then(
      () => outcome = "resolved",
      (error) => outcome = `rejected: ${error.name} ${error.message}`,
    );
    await clock.advance(100);
    assert.equal(pool.isClosed, true);
    assert.match(outcome, /^rejected: .*closed/);
    assert.equal(pool.stats().waiting, 0);
  });
}
