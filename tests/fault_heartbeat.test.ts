import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { resolvePoolConfig } from "../src/config/resolve.ts";
import {
  ConfigError,
  ConnectionLostError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import type { PoolEventDetailMap } from "../src/pool/events.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { countChannels, CountingClock } from "./support/counting.ts";
import { drive, watchEscapes } from "./support/fault_harness.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { startFaultProxy } from "../testing/proxy.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

// ------------------------------------------------------------ the pool alone

function fakePool(
  config: Parameters<typeof resolvePoolConfig>[0],
  heartbeat: (conn: FakeConnection) => Promise<unknown>,
) {
  const clock = new VirtualClock();
  const pool = new ConnectionPool<FakeConnection>({
    address: "127.0.0.1:7000",
    config: { maxLifetimeMs: 0, idleTimeoutMs: 0, ...config },
    clock,
    factory: () => Promise.resolve(new FakeConnection()),
    heartbeat,
  });
  return { clock, pool };
}

test("heartbeatIntervalMs is a pool setting: 30 s by default, validated, 0 switches it off", () => {
  assert.equal(resolvePoolConfig({}).heartbeatIntervalMs, 30_000);
  assert.equal(
    resolvePoolConfig({ heartbeatIntervalMs: 0 }).heartbeatIntervalMs,
    0,
  );
  assert.throws(
    () => resolvePoolConfig({ heartbeatIntervalMs: -1 }),
    (e: unknown) =>
      e instanceof ConfigError && e.field === "poolConfig.heartbeatIntervalMs",
  );
});

test("an idle connection is pinged every interval, a busy or lent one is not", async () => {
  const pinged: Array<[number, number]> = [];
  const { clock, pool } = fakePool(
    { minConnections: 0, maxConnections: 3, heartbeatIntervalMs: 1000 },
    (conn) => {
      pinged.push([conn.id, clock.now()]);
      return Promise.resolve();
    },
  );
  const idle = await pool.getConnection();
  const busy = await pool.getConnection();
  const lent = await pool.getConnection();
  pool.returnConnection(idle);
  pool.returnConnection(busy);
  busy.inFlight = 1;
  await clock.advance(2500);
  assert.deepEqual(pinged, [[idle.id, 1000], [idle.id, 2000]]);
  busy.inFlight = 0;
  pool.returnConnection(lent);
  await clock.advance(1000);
  assert.deepEqual(
    pinged.slice(2).map(([id]) => id).sort(),
    [idle.id, busy.id, lent.id].sort(),
    "each idle connection once more; the returned one a full interval after its return",
  );
  await pool.close();
  assert.equal(clock.pendingTimers, 0);
});

test("a connection whose heartbeat fails is destroyed with that error and replaced", async () => {
  let failNext = true;
  const { clock, pool } = fakePool(
    { minConnections: 1, maxConnections: 1, heartbeatIntervalMs: 500 },
    () =>
      failNext
        ? Promise.reject(
          new ConnectionLostError({ hostname: "h", port: 1 }, "no pong"),
        )
        : Promise.resolve(),
  );
  const closed: PoolEventDetailMap["connectionClosed"][] = [];
  pool.addEventListener("connectionClosed", (e) => closed.push(e.detail));
  pool.start();
  await clock.advance(0);
  const [first] = pool.connections();
  await clock.advance(500);
  assert.equal(closed.length, 1);
  assert.equal(closed[0].connectionId, first.id);
  assert.equal(closed[0].reason, "error");
  assert.match(String(closed[0].error), /no pong/);
  assert.ok(first.destroyedWith instanceof ConnectionLostError);
  failNext = false;
  await clock.advance(0);
  const [second] = pool.connections();
  assert.notEqual(second.id, first.id, "replaced to keep the minimum");
  await pool.close();
});

test("heartbeats do not keep connections above the minimum from idling out", async () => {
  let pings = 0;
  const { clock, pool } = fakePool(
    {
      minConnections: 1,
      maxConnections: 2,
      heartbeatIntervalMs: 100,
      idleTimeoutMs: 1000,
    },
    () => {
      pings++;
      return Promise.resolve();
    },
  );
  const a = await pool.getConnection();
  const b = await pool.getConnection();
  pool.returnConnection(a);
  pool.returnConnection(b);
  await clock.advance(999);
  assert.equal(pool.stats().open, 2);
  assert.ok(pings >= 10, `pinged while idle (${pings})`);
  await clock.advance(1);
  assert.equal(pool.stats().open, 1, "idle time counts from the last real use");
  await pool.close();
});

test("without a heartbeat hook, or with interval 0, nothing is pinged and no timer is armed for it", async () => {
  let pings = 0;
  const { clock, pool } = fakePool(
    { minConnections: 1, heartbeatIntervalMs: 0 },
    () => Promise.resolve(pings++),
  );
  pool.start();
  await clock.advance(100_000);
  assert.equal(pings, 0);
  assert.equal(clock.pendingTimers, 0);
  await pool.close();
});

// ------------------------------------------------------ through a real client

async function halfOpenSetup(heartbeatIntervalMs: number) {
  const clock = new VirtualClock();
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network, clock, nodeId: "hb" });
  const proxy = await startFaultProxy({
    target: node,
    runtime: network,
    clock,
  });
  const counting = new CountingClock(clock);
  const adapter = countChannels(network);
  const client = await Client.connect({
    hosts: [proxy.address],
    runtime: adapter,
    clock: counting,
    timeoutMs: 5000,
    requestTimeoutMs: 800,
    poolConfig: { minConnections: 1, maxConnections: 2, heartbeatIntervalMs },
    // The health loop would find the silence too; switched off so that
    // only the heartbeat is at work.
    healthConfig: { intervalMs: 0, timeoutMs: 300 },
  });
  const pool = client.manager.nodes[0].pool;
  const checkedOut: Array<{ id: number; at: number }> = [];
  const closed: Array<{ id: number; at: number; error: unknown }> = [];
  pool.addEventListener(
    "checkedOut",
    (e) => checkedOut.push({ id: e.detail.connectionId, at: clock.now() }),
  );
  pool.addEventListener(
    "connectionClosed",
    (e) =>
      closed.push({
        id: e.detail.connectionId,
        at: clock.now(),
        error: e.detail.error,
      }),
  );
  return {
    clock,
    network,
    node,
    proxy,
    counting,
    adapter,
    client,
    pool,
    checkedOut,
    closed,
  };
}

test("a half-open connection is found by the heartbeat within interval + timeout, and no request lands on it", async () => {
  const watch = watchEscapes();
  const s = await halfOpenSetup(1000);
  const [first] = s.pool.connections();
  await s.clock.advance(1000);
  assert.equal(s.node.stats.pings, 1, "the heartbeat reached the node");
  // The node goes silent: bytes are held in both directions.
  await s.proxy.setFaults({ stall: true });
  const silentAt = s.clock.now();
  await s.clock.advance(1000 + 300);
  const evicted = s.closed.find((c) => c.id === first.id);
  assert.ok(evicted, "the silent connection was evicted");
  assert.ok(
    evicted.at - silentAt <= 1000 + 300,
    `evicted ${evicted.at - silentAt} ms after going silent`,
  );
  assert.ok(evicted.error instanceof ConnectionLostError);
  assert.match(String(evicted.error), /heartbeat/);
  assert.ok(!s.pool.connections().includes(first), "not in the pool any more");
  // A request now waits for a fresh connection instead of landing on the
  // dead one; the network comes back and it succeeds.
  const reply = s.client.request(ops.echo("after"));
  await s.clock.advance(100);
  await s.proxy.setFaults({ stall: false });
  assert.equal(replyText(await drive(s.clock, reply)), "after");
  const after = s.checkedOut.filter((c) => c.at >= silentAt);
  assert.ok(after.length >= 1);
  assert.ok(
    after.every((c) => c.id !== first.id),
    "no request landed on the half-open connection",
  );
  await drive(s.clock, s.client.disconnect());
  await s.clock.advance(0);
  assert.equal(s.adapter.openChannels, 0);
  assert.equal(s.counting.liveTimers, 0);
  await s.proxy.close();
  await s.node.close();
  assert.deepEqual(await watch.stop(), []);
});

test("without the heartbeat the same half-open connection stays and the next request times out on it", async () => {
  const watch = watchEscapes();
  const s = await halfOpenSetup(0);
  const [first] = s.pool.connections();
  await s.clock.advance(1000);
  await s.proxy.setFaults({ stall: true });
  await s.clock.advance(1000 + 300);
  assert.ok(
    s.pool.connections().includes(first),
    "still pooled: nothing noticed",
  );
  const reply = s.client.request(ops.echo("lost"));
  const error = await drive(s.clock, reply.then(() => undefined, (e) => e));
  assert.ok(error instanceof RequestTimeoutError, String(error));
  assert.equal(
    s.checkedOut.at(-1)?.id,
    first.id,
    "it landed on the dead connection",
  );
  await s.proxy.setFaults({ stall: false });
  await drive(s.clock, s.client.disconnect());
  await s.clock.advance(0);
  assert.equal(s.adapter.openChannels, 0);
  assert.equal(s.counting.liveTimers, 0);
  await s.proxy.close();
  await s.node.close();
  assert.deepEqual(await watch.stop(), []);
});
