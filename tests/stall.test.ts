// A client against nodes that stop reading: on real loopback sockets the
// kernel's buffers fill, writes back up, and nothing is answered. A test
// whose premise is that frames stay held until the node reads again runs
// on the memory network, where a node that stopped reading takes in
// nothing at all, whatever the machine's load.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { Connection } from "../src/connection/connection.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { type DeafNode, deafNode } from "./support/deaf_node.ts";
import { closeDriven, settle } from "./support/fault_checks.ts";
import { within } from "./support/within.ts";

test("disconnect() cancelling requests stuck on nodes that stopped reading does not count them against the nodes: no ejection, no health event, no run of failures", async () => {
  const adapter = await getAdapter();
  const nodes: DeafNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await deafNode(adapter));
  const clock = new VirtualClock();
  const logged: string[] = [];
  const client = await within(
    5000,
    "connect",
    Client.connect({
      hosts: nodes.map((n) => n.address),
      protocols: ["tcp"],
      runtime: adapter,
      clock,
      poolConfig: { minConnections: 1, maxConnections: 1 },
      healthConfig: { intervalMs: 0 },
      logger: (entry) => {
        if (entry.level !== "debug") logged.push(entry.message);
      },
    }),
  );
  const changes: string[] = [];
  client.addEventListener("nodeHealthChanged", (event) => {
    changes.push(`${event.detail.address}: ${event.detail.reason}`);
  });
  try {
    for (const node of nodes) node.stop();
    // 256 KiB each, 20 a node: more than loopback's buffers hold, so
    // each socket backs up and the last requests are still held back.
    const payload = new Uint8Array(256 * 1024);
    const outcomes = Array.from(
      { length: 60 },
      () => client.request(payload).then(() => "ok", (e) => e.code),
    );
    const disconnected = client.disconnect({ timeoutMs: 50 });
    await clock.advance(50);
    await within(5000, "disconnect", disconnected);
    assert.deepEqual(
      new Set(await within(5000, "requests", Promise.all(outcomes))),
      new Set(["CLIENT_CLOSED"]),
    );
    // Before: the first node picked was ejected ("5 requests in a row
    // failed, the last with: ... disconnect cancelled the request"),
    // logged as unhealthy and announced by nodeHealthChanged.
    assert.deepEqual(changes, []);
    assert.deepEqual(logged.filter((m) => /unhealthy|eject/.test(m)), []);
    for (const node of client.stats().nodes) {
      assert.equal(node.healthy, true, node.address);
      assert.equal(node.consecutiveFailures, 0, node.address);
      assert.equal(node.inFlight, 0, node.address);
    }
  } finally {
    await client.disconnect({ timeoutMs: 1 }).catch(() => {});
    for (const node of nodes) await node.close();
  }
});

test("a frame held back by a congested socket is not sent once its caller has its outcome (a hedged request another attempt answered): the node never reads it, its sink gets AbortedError 'not sent'", async () => {
  const adapter = await getAdapter();
  const node = await deafNode(adapter);
  const connection = await within(
    5000,
    "connect",
    Connection.connect({
      adapter,
      hostname: "127.0.0.1",
      port: Number(node.address.split(":")[1]),
      clock: new VirtualClock(),
    }),
  );
  try {
    node.stop();
    // 1 MiB payloads until the socket's queue is past its mark, so that
    // the writer holds the next frames back (64 MiB at most).
    const big: Promise<unknown>[] = [];
    for (let i = 0; i < 64 && connection.bufferedAmount < 1 << 20; i++) {
      big.push(connection.sendRequest(new Uint8Array(1 << 20)));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.ok(connection.bufferedAmount >= 1 << 20, "the socket backed up");
    const outcomes: string[] = [];
    const unwanted = {
      done: false,
      onReply: () => outcomes.push("reply"),
      onError: (error: Error) =>
        outcomes.push(`${error.name}: ${error.message}`),
    };
    connection.submitRequest(new Uint8Array(7), undefined, unwanted);
    const wanted = connection.sendRequest(new Uint8Array(9));
    // Another attempt answered meanwhile: the caller may reuse the payload.
    unwanted.done = true;
    node.hear();
    await within(5000, "the held request", wanted);
    await within(5000, "the large requests", Promise.all(big));
    // Before: the frame went out once the socket drained, and the node
    // ran it (the sink got its reply).
    assert.deepEqual(outcomes, [
      "AbortedError: not sent: the request had its outcome",
    ]);
    assert.equal(node.lengths.includes(7), false, "the node never read it");
    assert.equal(node.lengths.includes(9), true);
    assert.equal(connection.inFlight, 0);
  } finally {
    connection.destroy();
    await node.close();
  }
});

test("hedged requests whose first attempts are held behind a node that stopped reading: the hedges answer, and once the node reads again it never gets the held attempts", async () => {
  // On the memory network a node that stopped reading takes in nothing
  // more until it reads again. On loopback the kernel could (its buffers
  // grow under load): the socket drained, and the first attempts went
  // out before their hedges answered.
  const network = createMemoryNetwork();
  const stalled = await deafNode(network);
  const other = await deafNode(network);
  const clock = new VirtualClock();
  const client = await within(
    5000,
    "connect",
    Client.connect({
      hosts: [stalled.address, other.address],
      protocols: ["tcp"],
      runtime: network,
      clock,
      loadBalancing: "round-robin",
      hedging: { delayMs: 5 },
      poolConfig: { minConnections: 1, maxConnections: 1 },
      healthConfig: { intervalMs: 0 },
    }),
  );
  try {
    stalled.stop();
    const conn = client.manager.node(stalled.address)!.pool.connections()[0];
    // A 1 MiB payload reaches the pipe's mark: the first on the stalled
    // node (round-robin: the first request or the second) congests its
    // connection, which holds every frame after it.
    const calls: Promise<Uint8Array>[] = [];
    for (let i = 0; i < 2 && conn.bufferedAmount < 1 << 20; i++) {
      calls.push(client.request(new Uint8Array(1 << 20), { idempotent: true }));
      await settle(clock);
    }
    assert.ok(conn.bufferedAmount >= 1 << 20, "the connection backed up");
    const queued = conn.bufferedAmount;
    const inFlight = conn.inFlight;
    for (let i = 0; i < 10; i++) {
      calls.push(client.request(new Uint8Array(7), { idempotent: true }));
    }
    await settle(clock);
    // Every other first attempt is on the stalled node, held by its
    // connection: in flight there, and not a byte more for the channel.
    assert.equal(conn.inFlight, inFlight + 5, "five first attempts held");
    assert.equal(conn.bufferedAmount, queued, "none of them written");
    // The hedges go to the other node, which answers every request.
    await clock.advance(5);
    await within(5000, "the requests", Promise.all(calls));
    stalled.hear();
    await settle(clock);
    assert.equal(conn.inFlight, 0);
    // Before: five 7-byte requests reached the node once it read again,
    // after their callers had their replies.
    assert.deepEqual(stalled.lengths.filter((n) => n === 7), []);
    assert.equal(other.lengths.filter((n) => n === 7).length, 10);
  } finally {
    await closeDriven(client, clock);
    await stalled.close();
    await other.close();
  }
});
