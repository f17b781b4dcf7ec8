import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type Balancer,
  createBalancer,
  HealthyNodeSet,
} from "../src/cluster/balancer.ts";
import { Client } from "../src/client/client.ts";
import { systemClock } from "../src/clock.ts";
import { sleep } from "../src/client/sleep.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { Connection } from "../src/connection/connection.ts";
import { RequestTimeoutError } from "../src/errors.ts";
import { ConnectionManager } from "../src/cluster/manager.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { CountingClock } from "./support/counting.ts";
import { startTestNode } from "../testing/node.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { startBlackHole } from "../bench/scale/black_hole.ts";

/**
 * Requests held in flight at once by the big tests. 100,000 as the issue
 * asks; SCALE_REQUESTS overrides it (a slow CI runner may use 20,000).
 */
const REQUESTS = Number(envVar("SCALE_REQUESTS") ?? 100_000);
/**
 * Requests failed together by one deadline. 20,000 by default: on Deno,
 * Client.request's failure path is quadratic in the number failing at once
 * (see bench/scale/mass_failure.ts); at 100,000 that test alone takes about
 * a minute there. SCALE_TIMEOUT_REQUESTS=100000 runs the full size.
 */
const TIMEOUT_REQUESTS = Number(envVar("SCALE_TIMEOUT_REQUESTS") ?? 20_000);
const N = REQUESTS.toLocaleString("en-US");
const CONNECTIONS = 8;

function envVar(name: string): string | undefined {
  const g = globalThis as {
    Deno?: { env: { get(n: string): string | undefined } };
    process?: { env: Record<string, string | undefined> };
  };
  return g.Deno ? g.Deno.env.get(name) : g.process?.env[name];
}

/** Polls `done` on the real clock, at most `limitMs`; false on time out. */
async function waitUntil(done: () => boolean, limitMs: number) {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > limitMs) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** A 4-byte tag, so each reply can be checked against its request. */
function tag(i: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, i);
  return bytes;
}

// --- requests in flight ------------------------------------------------------

test(`${N} requests in flight over ${CONNECTIONS} loopback connections complete, with one timer per connection`, async (t) => {
  // The node holds every request on its own virtual clock until the test
  // lets go, so all of them are in flight at once; the client runs on the
  // real clock with every request's timeout armed, and counts its timers.
  const nodeClock = new VirtualClock();
  const node = await startTestNode({ clock: nodeClock });
  const clock = new CountingClock(systemClock);
  const client = await Client.connect({
    hosts: [node.address],
    clock,
    requestTimeoutMs: 120_000,
    poolConfig: { minConnections: CONNECTIONS, maxConnections: CONNECTIONS },
    healthConfig: { intervalMs: 0 },
  });
  const pool = client.manager.nodes[0].pool;
  try {
    assert.ok(
      await waitUntil(() => pool.stats().open === CONNECTIONS, 10_000),
      "the pool opened its connections",
    );
    const peak = async (count: number) => {
      const replies = Array.from(
        { length: count },
        (_, i) => client.request(ops.sleep(1, tag(i)), { retry: false }),
      );
      const held = await waitUntil(
        () => nodeClock.pendingTimers === count,
        120_000,
      );
      assert.ok(held, `the node holds all ${count} requests`);
      const seen = {
        inFlight: client.stats().inFlight,
        timers: clock.liveTimers,
        armed: pool.connections().filter((c) => c.timerArmed).length,
        perConnection: pool.connections().map((c) => c.inFlight),
      };
      await nodeClock.advance(1);
      const results = await Promise.all(replies);
      results.forEach((reply, i) => {
        const data = decodeReply(reply).data;
        assert.equal(
          new DataView(data.buffer, data.byteOffset).getUint32(0),
          i,
        );
      });
      return seen;
    };

    const small = await peak(1_000);
    const big = await peak(REQUESTS);
    t.diagnostic(
      `live timers at peak: ${small.timers} with 1,000 in flight, ` +
        `${big.timers} with ${N} in flight`,
    );
    assert.equal(big.inFlight, REQUESTS);
    assert.equal(big.armed, CONNECTIONS, "every connection's deadline armed");
    assert.equal(
      big.perConnection.reduce((a, b) => a + b, 0),
      REQUESTS,
      "spread over the connections",
    );
    assert.ok(
      Math.max(...big.perConnection) - Math.min(...big.perConnection) <= 1,
      `evenly: ${big.perConnection.join(", ")}`,
    );
    // One deadline timer per connection and one maintenance timer for the
    // pool, whatever the number of requests.
    assert.ok(
      big.timers <= CONNECTIONS + 1,
      `${big.timers} timers for ${CONNECTIONS} connections`,
    );
    assert.equal(big.timers, small.timers, "100x the requests, same timers");
    assert.equal(client.stats().succeeded, 1_000 + REQUESTS);
  } finally {
    await client.disconnect();
    await node.close();
  }
  assert.equal(clock.liveTimers, 0, "no timer left after disconnect");
});

test(`${TIMEOUT_REQUESTS.toLocaleString("en-US")} requests in flight over ${CONNECTIONS} connections all time out on one timer per connection`, async () => {
  // A node that never answers, on the memory network and a virtual clock:
  // the deadlines, not the replies, have to end every request.
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const hole = await startBlackHole(network);
  const client = await Client.connect({
    hosts: [hole.address],
    runtime: network,
    clock,
    requestTimeoutMs: 1_000,
    poolConfig: { minConnections: CONNECTIONS, maxConnections: CONNECTIONS },
    healthConfig: { intervalMs: 0 },
  });
  const pool = client.manager.nodes[0].pool;
  try {
    for (let i = 0; i < 100 && pool.stats().open < CONNECTIONS; i++) {
      await clock.advance(0);
    }
    assert.equal(pool.stats().open, CONNECTIONS);
    const timersBefore = clock.pendingTimers;
    let timedOut = 0;
    let other: unknown;
    const count = (e: unknown) => {
      if (e instanceof RequestTimeoutError) timedOut++;
      else other ??= e;
    };
    const payload = ops.echo("x");
    const settled = Array.from(
      { length: TIMEOUT_REQUESTS },
      () => client.request(payload, { retry: false }).then(() => {}, count),
    );
    await clock.advance(999);
    assert.equal(
      hole.requests,
      TIMEOUT_REQUESTS,
      "every request reached the node",
    );
    assert.equal(client.stats().inFlight, TIMEOUT_REQUESTS);
    assert.equal(timedOut, 0, "nothing expires early");
    // One deadline timer per connection (armed now) on top of what was
    // pending before the requests.
    assert.ok(
      clock.pendingTimers <= timersBefore + CONNECTIONS,
      `${clock.pendingTimers} timers (${timersBefore} before the requests)`,
    );
    await clock.advance(1);
    await Promise.all(settled);
    assert.equal(other, undefined);
    assert.equal(
      timedOut,
      TIMEOUT_REQUESTS,
      "every request timed out at its deadline",
    );
    assert.equal(client.stats().inFlight, 0);
  } finally {
    await client.disconnect();
    await hole.close();
  }
});

// --- node choice -------------------------------------------------------------

/** A node set that counts every read a balancer makes of it. */
class CountingSet<N> extends HealthyNodeSet<N> {
  reads = 0;
  override at(position: number): N | undefined {
    this.reads++;
    return super.at(position);
  }
  override indexOf(node: N): number {
    this.reads++;
    return super.indexOf(node);
  }
  override has(node: N): boolean {
    this.reads++;
    return super.has(node);
  }
  override slotAt(position: number): number {
    this.reads++;
    return super.slotAt(position);
  }
}

/** Reads of the set and of node loads per pick, over `picks` picks. */
function workPerPick(
  strategy: "round-robin" | "least-in-flight",
  n: number,
  exclude: boolean,
  dense: boolean,
) {
  const nodes = Array.from({ length: n }, (_, i) => ({ id: i, load: i % 7 }));
  // Dense: loads by slot in a typed array, as the ConnectionManager keeps
  // them; otherwise read from each node object.
  const set = new CountingSet(nodes, dense ? { slotOf: (x) => x.id } : {});
  const byId = new Int32Array(nodes.map((x) => x.load));
  let loads = 0;
  let seed = 1;
  const balancer: Balancer<{ id: number; load: number }> = createBalancer(
    strategy,
    set,
    {
      inFlight: (node) => (loads++, node.load),
      loads: dense
        ? new Proxy(byId, {
          get: (target, key) => (loads++, Reflect.get(target, key)),
        })
        : undefined,
      random: () => ((seed = (seed * 48271) % 2147483647) / 2147483647),
    },
  );
  const picks = 1_000;
  // Per pick: what the balancer's constructor read to check them is not.
  set.reads = 0;
  loads = 0;
  let last = nodes[0];
  for (let i = 0; i < picks; i++) {
    last = balancer.pick(exclude ? last : undefined)!;
  }
  return { set: set.reads / picks, loads: loads / picks };
}

test("choosing a node reads the same few entries among 10,000 nodes as among 10", () => {
  for (const strategy of ["round-robin", "least-in-flight"] as const) {
    for (const exclude of [false, true]) {
      for (const dense of [false, true]) {
        const small = workPerPick(strategy, 10, exclude, dense);
        const big = workPerPick(strategy, 10_000, exclude, dense);
        const label = `${strategy}${exclude ? " with exclude" : ""}${
          dense ? ", dense loads" : ""
        }`;
        assert.deepEqual(big, small, label);
        assert.ok(big.set <= 5, `${label}: ${big.set} set reads per pick`);
        assert.ok(big.loads <= 2, `${label}: ${big.loads} loads per pick`);
      }
    }
  }
});

test("with 10,000 nodes and one healthy, every pick finds it without a scan", () => {
  const hosts = Array.from(
    { length: 10_000 },
    (_, i) => `10.0.${i >> 8}.${i & 255}:7000`,
  );
  const manager = new ConnectionManager(
    resolveConfig({ hosts, healthConfig: { intervalMs: 0 } }),
    createMemoryNetwork(),
  );
  for (const host of hosts.slice(1)) manager.markNodeUnhealthy(host, "test");
  assert.equal(manager.healthyCount, 1);
  for (let i = 0; i < 100; i++) {
    assert.equal(manager.pickNode().address, hosts[0]);
  }
  manager.markNodeHealthy(hosts[5_000]);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(manager.pickNode().address);
  assert.deepEqual([...seen].sort(), [hosts[0], hosts[5_000]].sort());
});

test("least-in-flight among 10,000 nodes reads the loads the manager keeps", () => {
  const hosts = Array.from(
    { length: 10_000 },
    (_, i) => `10.1.${i >> 8}.${i & 255}:7000`,
  );
  const manager = new ConnectionManager(
    resolveConfig({
      hosts,
      loadBalancing: "least-in-flight",
      healthConfig: { intervalMs: 0 },
    }),
    createMemoryNetwork(),
  );
  // Take all but three nodes out: 9,997 swap-removes from the healthy set,
  // whose slots must follow. Of the three, the most loaded never wins a
  // pair and the idle one wins whenever it is sampled (2 picks in 3).
  for (const node of manager.nodes) node.inFlight = 5;
  const [busiest, idle, other] = [hosts[1_234], hosts[5_678], hosts[9_999]];
  manager.node(busiest)!.inFlight = 9;
  manager.node(idle)!.inFlight = 0;
  for (const host of hosts) {
    if (host !== busiest && host !== idle && host !== other) {
      manager.markNodeUnhealthy(host, "test");
    }
  }
  manager.markNodeUnhealthy(busiest, "test");
  manager.markNodeHealthy(busiest); // back, at another position
  assert.equal(manager.healthyCount, 3);
  const counts = new Map<string, number>();
  for (let i = 0; i < 3_000; i++) {
    const address = manager.pickNode().address;
    counts.set(address, (counts.get(address) ?? 0) + 1);
  }
  assert.equal(counts.get(busiest), undefined, "the busiest never wins");
  const share = (counts.get(idle) ?? 0) / 3_000;
  assert.ok(share > 0.6 && share < 0.73, `the idle node won ${share}`);
});

// --- health sweep ------------------------------------------------------------

/**
 * A client of `live` reference nodes and `silent` black holes on the
 * memory network and a virtual clock. Each ping first waits `latencyMs` of
 * virtual time, and the test sees how many run at once.
 */
async function sweepCluster(
  live: number,
  silent: number,
  maxConcurrentChecks: number,
  latencyMs: number,
) {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes = await Promise.all(
    Array.from(
      { length: live },
      (_, i) => startTestNode({ runtime: network, nodeId: `n${i}` }),
    ),
  );
  const holes = await Promise.all(
    Array.from({ length: silent }, () => startBlackHole(network)),
  );
  const checks = { active: 0, max: 0, total: 0 };
  const handshake = (connection: Connection) => {
    const ping = connection.ping.bind(connection);
    connection.ping = async (options) => {
      checks.total++;
      checks.max = Math.max(checks.max, ++checks.active);
      try {
        await sleep(clock, latencyMs);
        return await ping(options);
      } finally {
        checks.active--;
      }
    };
    return Promise.resolve();
  };
  const client = await Client.connect(
    {
      hosts: [...nodes, ...holes].map((n) => n.address),
      runtime: network,
      clock,
      poolConfig: { minConnections: 1, maxConnections: 1 },
      healthConfig: { intervalMs: 0, timeoutMs: 100, maxConcurrentChecks },
    },
    { connection: { handshake } },
  );
  /** Runs one sweep to its end; returns its results and virtual duration. */
  const sweep = async () => {
    const start = clock.now();
    let results: Awaited<ReturnType<Client["healthCheckAllNodes"]>> | undefined;
    client.healthCheckAllNodes().then((r) => (results = r));
    for (let i = 0; i < 10_000 && results === undefined; i++) {
      await clock.advance(1);
    }
    assert.ok(results, "the sweep ended");
    return { results, ms: clock.now() - start };
  };
  const close = async () => {
    await client.disconnect();
    await Promise.all(nodes.map((n) => n.close()));
    await Promise.all(holes.map((h) => h.close()));
  };
  return { client, checks, sweep, close };
}

test("a health sweep over 200 nodes keeps to maxConcurrentChecks and runs in waves", async () => {
  const cluster = await sweepCluster(200, 0, 10, 10);
  try {
    const { results, ms } = await cluster.sweep();
    assert.equal(results.length, 200);
    assert.ok(results.every((r) => r.ok && r.healthy));
    assert.equal(cluster.checks.total, 200);
    assert.equal(cluster.checks.max, 10, "never more than 10 checks at once");
    // 200 checks of 10 ms, 10 at a time: 20 waves, no idle gap between.
    assert.equal(ms, 200);
  } finally {
    await cluster.close();
  }
});

test("a health sweep runs every check at once when the bound allows it", async () => {
  const cluster = await sweepCluster(200, 0, 1_000, 10);
  try {
    const { results, ms } = await cluster.sweep();
    assert.equal(results.length, 200);
    assert.equal(cluster.checks.max, 200);
    assert.equal(ms, 10, "one wave");
  } finally {
    await cluster.close();
  }
});

test("silent nodes slow a bounded sweep by their timeout, not more", async () => {
  // 180 answering nodes, 20 that never answer a ping (timeout 100 ms).
  const cluster = await sweepCluster(180, 20, 20, 10);
  try {
    const { results, ms } = await cluster.sweep();
    assert.equal(results.length, 200);
    const failed = results.filter((r) => !r.ok);
    assert.equal(failed.length, 20);
    assert.ok(failed.every((r) => r.error instanceof RequestTimeoutError));
    assert.ok(cluster.checks.max <= 20);
    // The 20 silent nodes come last, so they form the last wave: 9 waves
    // of 10 ms, then one of 10 ms latency plus the 100 ms ping timeout.
    assert.equal(ms, 9 * 10 + (10 + 100));
  } finally {
    await cluster.close();
  }
});
