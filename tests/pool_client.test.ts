// A connection lent by Client.withConnection and Client.disconnect: the
// holder keeps its connection through the disconnect grace, it closes when
// returned, and a holder that never returns cannot hold shutdown past the
// grace. On the memory network and a virtual clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { Connection } from "../src/connection/connection.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { watch } from "./support/pool_scene.ts";
import { memoryScene } from "./support/memory_scene.ts";
import { settledWithin } from "./support/fault_checks.ts";
import { PoolTimeoutError } from "../src/errors.ts";

async function scene() {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1, maxConnections: 2 },
  });
  return { network, clock, node, client };
}

test("a connection lent by withConnection serves its holder through the disconnect grace, and closes when returned", async () => {
  const { network, clock, node, client } = await scene();
  let lent: Connection | undefined;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const work = watch(client.withConnection(async (connection) => {
    lent = connection;
    await gate;
    return replyText(await connection.sendRequest(ops.echo("still mine")));
  }));
  await clock.advance(0);
  assert.ok(lent);
  const disconnected = watch(client.disconnect({ timeoutMs: 1000 }));
  await clock.advance(500);
  assert.equal(disconnected.done, false);
  assert.equal(lent.isOpen, true, "not closed under its holder");
  release();
  await clock.advance(0);
  assert.equal(work.value, "still mine");
  await clock.advance(0);
  assert.equal(lent.isOpen, false, "closed once returned");
  assert.equal(disconnected.done, true);
  assert.equal(disconnected.error, undefined);
  assert.equal(clock.now(), 500, "without waiting out the grace");
  assert.equal(network.openChannels, 0);
  await node.close();
});

test("a holder that never returns its connection is cut off when the disconnect grace ends", async () => {
  const { network, clock, node, client } = await scene();
  let lent: Connection | undefined;
  const work = watch(client.withConnection((connection) => {
    lent = connection;
    return new Promise<never>(() => {}); // never settles
  }));
  await clock.advance(0);
  const disconnected = watch(client.disconnect({ timeoutMs: 100 }));
  await clock.advance(99);
  assert.equal(disconnected.done, false);
  assert.equal(lent?.isOpen, true);
  await clock.advance(1);
  await clock.advance(0);
  assert.equal(disconnected.done, true);
  assert.equal(disconnected.error, undefined);
  assert.equal(lent?.isOpen, false);
  assert.equal(work.done, false, "its own work is its own business");
  assert.equal(network.openChannels, 0);
  await node.close();
});

test("a health check that finds every connection of a node lent by withConnection is inconclusive: the node stays healthy and in rotation", async () => {
  await memoryScene(
    1,
    {
      poolConfig: { minConnections: 1, maxConnections: 1 },
      healthConfig: { intervalMs: 0, unhealthyThreshold: 1, timeoutMs: 100 },
    },
    async ({ client, clock }) => {
      const changes: boolean[] = [];
      client.addEventListener("nodeHealthChanged", (e) => {
        changes.push(e.detail.healthy);
      });
      let release!: () => void;
      const hold = new Promise<void>((resolve) => (release = resolve));
      let ready!: () => void;
      const lentOut = new Promise<void>((resolve) => (ready = resolve));
      const lent = client.withConnection(async () => {
        ready();
        await hold;
      });
      await lentOut;
      const sweep = client.healthCheckAllNodes();
      await clock.advance(100);
      const [result] = await sweep;
      release();
      await lent;
      assert.equal(result.ok, false);
      assert.ok(result.error instanceof PoolTimeoutError, String(result.error));
      assert.equal(
        result.healthy,
        true,
        "the application's own use is no failure of the node",
      );
      assert.deepEqual(changes, []);
      assert.equal(client.stats().nodes[0].healthy, true);
      assert.equal(client.stats().nodes[0].consecutiveFailures, 0);
      // Given back, the node is checked as always.
      assert.equal((await client.healthCheckAllNodes())[0].ok, true);
    },
  );
});

test("a connection lent straight from a node's pool (client.manager, /core) cannot hold disconnect past its grace: it is destroyed, and disconnect resolves", async () => {
  await memoryScene(1, {}, async ({ client, clock, nodes }) => {
    const pool = client.manager.nodes[0].pool;
    const held = await pool.getConnection();
    const closing = client.disconnect({ timeoutMs: 10 });
    const inTime = await settledWithin(clock, closing, 50);
    // Given back either way, so that a failure here cannot hang the test.
    pool.returnConnection(held);
    assert.equal(inTime, true, "disconnect resolved within its grace");
    assert.equal(held.isOpen, false, "the held connection was ended");
    await closing;
    await settledWithin(clock, Promise.resolve(), 1);
    assert.equal(nodes[0].stats.open, 0, "no socket left open");
  });
});
