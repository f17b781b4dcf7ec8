import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { systemClock } from "../src/clock.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  AuthenticationError,
  ConnectionLostError,
  RequestTimeoutError,
} from "../src/errors.ts";
import {
  createHandshake,
  handshakeResult,
} from "../src/handshake/handshake.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { Secret } from "../src/secret.ts";
import { udpTransport } from "../src/handshake/udp.ts";
import { countChannels, CountingClock } from "./support/counting.ts";
import { eventually } from "./support/fault_harness.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { runtimeGlobals as g } from "./helpers.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

/** Uses UDP every way there is, disconnects, and counts what is left. */
async function exercise() {
  const clock = new CountingClock(systemClock);
  const adapter = countChannels(await getAdapter());
  const node = await startTestNode({
    runtime: adapter,
    protocols: ["udp"],
    udpPort: 0,
  });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: adapter,
    clock,
    healthConfig: { intervalMs: 20, timeoutMs: 500 },
    poolConfig: { minConnections: 2, maxConnections: 4 },
  });
  await Promise.all(
    Array.from(
      { length: 100 },
      (_, i) => client.request(i % 10 === 0 ? ops.sleep(5) : ops.echo("x")),
    ),
  );
  await client.withConnection((c) => c.ping());
  await client.healthCheckAllNodes();
  // A reply that comes after its request gave up.
  await assert.rejects(
    client.request(ops.sleep(100), { timeoutMs: 10, retry: false }),
    (e: unknown) =>
      e instanceof RequestTimeoutError && e.code === "REQUEST_TIMEOUT" &&
      /timed out after 10 ms$/.test(e.message),
  );
  const sessions = node.udpSessions;
  const datagrams = adapter.openDatagrams;
  const late = client.request(ops.sleep(20)).catch(() => {});
  await client.disconnect({ timeoutMs: 1000 });
  await late;
  await eventually(() => node.udpSessions === 0);
  const tokensLeft = node.udpSessions;
  await node.close();
  await eventually(() =>
    adapter.openChannels === 0 && adapter.openDatagrams === 0
  );
  return {
    sessions,
    datagrams,
    tokensLeft,
    openDatagrams: adapter.openDatagrams,
    openChannels: adapter.openChannels,
    timers: clock.liveTimers,
  };
}

test("after disconnect over UDP no datagram socket, stream or timer is left, and the node forgot every token", async () => {
  const r = await exercise();
  assert.ok(r.sessions >= 2, `UDP sessions were opened (${r.sessions})`);
  assert.ok(
    r.datagrams >= r.sessions + 1,
    `one socket per connection plus the node's (${r.datagrams})`,
  );
  assert.equal(r.tokensLeft, 0, "tokens die with their TCP connections");
  assert.equal(r.openDatagrams, 0, "every datagram socket closed");
  assert.equal(r.openChannels, 0, "every stream closed");
  assert.equal(r.timers, 0, "every timer fired or was cleared");
});

test("a connection destroyed mid-request fails it and closes its UDP socket", async () => {
  const adapter = countChannels(await getAdapter());
  const nodeClock = new VirtualClock();
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    clock: nodeClock,
  });
  const connection = await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: node.port,
    handshake: createHandshake({
      transports: { udp: udpTransport({ adapter }) },
    }),
  });
  try {
    assert.equal(handshakeResult(connection)?.protocol, "udp");
    assert.equal(adapter.openDatagrams, 1);
    const pending = assert.rejects(
      connection.sendRequest(ops.sleep(1000)),
      (e: unknown) =>
        e instanceof ConnectionLostError && e.code === "CONNECTION_LOST" &&
        /^connection to 127\.0\.0\.1:\d+ lost: destroyed by this client$/
          .test(e.message),
    );
    await eventually(() => nodeClock.pendingTimers === 1);
    connection.destroy();
    await pending;
    await eventually(() => adapter.openDatagrams === 0);
    assert.equal(adapter.openDatagrams, 0);
    assert.equal(connection.timerArmed, false);
    await eventually(() => node.udpSessions === 0);
    assert.equal(node.udpSessions, 0, "the node saw the stream close");
  } finally {
    await node.close();
  }
});

test("a UDP handshake that fails authentication leaves no datagram socket behind", async () => {
  const adapter = countChannels(await getAdapter());
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    credentials: { alice: "correct horse" },
  });
  try {
    await assert.rejects(
      Connection.connect({
        adapter,
        hostname: "127.0.0.1",
        port: node.port,
        handshake: createHandshake({
          username: "alice",
          password: new Secret("wrong"),
          transports: { udp: udpTransport({ adapter }) },
        }),
      }),
      (e: unknown) =>
        e instanceof AuthenticationError && e.code === "AUTH_FAILED" &&
        /as "alice" failed: the node rejected the credentials/.test(e.message),
    );
    assert.equal(node.stats.authFailures, 1, "it got as far as SCRAM");
    await eventually(() =>
      adapter.openDatagrams === 0 && node.udpSessions === 0
    );
    assert.equal(adapter.openDatagrams, 0);
    assert.equal(node.udpSessions, 0);
  } finally {
    await node.close();
  }
});

test("after disconnect over UDP the runtime's UDP handles are back where they started", async (t) => {
  const info = g.process?.getActiveResourcesInfo;
  if (g.Bun || info === undefined) {
    // Bun reports no active resources; the counts above cover it.
    t.diagnostic("no getActiveResourcesInfo to compare");
    assert.deepEqual(info?.() ?? [], []);
    return;
  }
  const udpHandles = () => info().filter((r) => /udp/i.test(r)).length;
  const before = udpHandles();
  const r = await exercise();
  assert.ok(r.datagrams > 0);
  await eventually(() => udpHandles() <= before);
  assert.ok(udpHandles() <= before, `${before} before, ${udpHandles()} after`);
});

if (g.Deno) {
  // Deno's op and resource sanitizers do not cover node:test tests; this
  // one has both on, so a receive left pending or a socket left open fails.
  g.Deno.test({
    name: "Deno sanitizers: UDP leaves no op or resource behind",
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const r = await exercise();
      assert.equal(r.openDatagrams, 0);
      assert.equal(r.timers, 0);
    },
  });
}
