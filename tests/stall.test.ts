// A client against nodes on real loopback sockets that stop reading: the
// kernel's buffers fill, writes back up, and nothing is answered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { type DeafNode, deafNode } from "./support/deaf_node.ts";

/** Resolves with `promise`'s value, or fails the test after `ms` of real time. */
async function within<T>(ms: number, what: string, promise: Promise<T>) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: not done after ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

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
