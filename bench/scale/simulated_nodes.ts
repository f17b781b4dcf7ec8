/**
 * 10 to 10,000 simulated nodes on the in-memory network with a virtual
 * clock: how long a full health sweep takes, and what choosing a node
 * costs per request as the cluster grows.
 *
 *   node_modules/.bin/deno run -A --v8-flags=--expose-gc bench/scale/simulated_nodes.ts
 *   node_modules/.bin/bun bench/scale/simulated_nodes.ts
 *   node --expose-gc --import tsx bench/scale/simulated_nodes.ts
 *
 * Every node is a reference node listening on the memory network, so a
 * sweep's pings cost the client's work and the node's, and no socket or
 * real delay. Measured per cluster size:
 * - connect: Client.connect (one connection per node) until it resolves;
 * - sweep: healthCheckAllNodes() over every node, 16 checks at a time
 *   (the default), wall time, median of several;
 * - pick: ConnectionManager.pickNode() in a tight loop, ns per call, for
 *   both strategies, sizes alternating round by round;
 * - request: Client.request() on the memory network with 64 and with 1
 *   in flight, µs per request (node choice, pool, connection, codec, and
 *   the node's side too). With more nodes than requests in flight no two
 *   requests share a connection's write, and each touches colder state.
 * Target: a pick among 10,000 nodes costs at most 2x a pick among 10.
 * BENCH_QUICK=1 shrinks it. Results go to bench/results/scale-<runtime>.json
 * (section "simulatedNodes").
 *
 * @module
 */

import { Client } from "../../src/client/client.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import type { LoadBalancing } from "../../src/config/shapes.ts";
import { ConnectionManager } from "../../src/cluster/manager.ts";
import { createMemoryNetwork } from "../../src/runtime/memory.ts";
import { startTestNode, type TestNode } from "../../testing/node.ts";
import { ops } from "../../testing/ops.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";
import {
  fixed,
  int,
  median,
  now,
  printTable,
  QUICK,
  runtimeLabel,
} from "../harness.ts";
import { saveSection } from "./results.ts";

const SWEEP_SIZES = QUICK ? [10, 1_000] : [10, 100, 1_000, 10_000];
const PICK_SIZES = [10, 100, 1_000, 10_000];
const STRATEGIES: LoadBalancing[] = ["round-robin", "least-in-flight"];
const PICKS = QUICK ? 200_000 : 2_000_000;
const PICK_ROUNDS = QUICK ? 3 : 9;
const SWEEPS = QUICK ? 2 : 5;
const REQUESTS = QUICK ? 5_000 : 50_000;
const PAYLOAD = ops.echo(new Uint8Array(16));

/** Distinct IP-literal hosts; the managers below never connect to them. */
function hosts(n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7000`,
  );
}

let sink = 0;

/**
 * ns per pickNode() call over `picks` calls. The picked node is compared,
 * not read: what a request then does with it is not the choice's cost.
 */
function timePicks(manager: ConnectionManager, picks: number): number {
  const first = manager.nodes[0];
  const start = now();
  for (let i = 0; i < picks; i++) if (manager.pickNode() === first) sink++;
  return ((now() - start) * 1e6) / picks;
}

/** Pick cost by strategy and size, sizes interleaved round by round. */
function pickCosts() {
  const network = createMemoryNetwork();
  const managers = STRATEGIES.flatMap((loadBalancing) =>
    PICK_SIZES.map((n) => ({
      loadBalancing,
      n,
      manager: new ConnectionManager(
        resolveConfig({
          hosts: hosts(n),
          loadBalancing,
          healthConfig: { intervalMs: 0 },
        }),
        network,
      ),
      ns: [] as number[],
    }))
  );
  for (const m of managers) timePicks(m.manager, PICKS / 10); // warm-up
  for (let r = 0; r < PICK_ROUNDS; r++) {
    const order = r % 2 === 0 ? managers : [...managers].reverse();
    for (const m of order) m.ns.push(timePicks(m.manager, PICKS));
  }
  return managers.map((m) => ({
    strategy: m.loadBalancing,
    nodes: m.n,
    nsPerPick: median(m.ns),
  }));
}

/** µs per Client.request with `inFlight` in flight over `count` requests. */
async function timeRequests(
  client: Client,
  count: number,
  inFlight: number,
): Promise<number> {
  let sent = 0;
  const lane = async () => {
    while (sent < count) {
      sent++;
      await client.request(PAYLOAD);
    }
  };
  const start = now();
  await Promise.all(Array.from({ length: inFlight }, lane));
  return ((now() - start) * 1000) / count;
}

async function cluster(n: number) {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes: TestNode[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(await startTestNode({ runtime: network, nodeId: `s${i}` }));
  }
  const start = now();
  const client = await Client.connect({
    hosts: nodes.map((node) => node.address),
    runtime: network,
    clock,
    poolConfig: { minConnections: 1, maxConnections: 1 },
    healthConfig: { intervalMs: 0 },
  });
  const connectMs = now() - start;
  const sweeps: number[] = [];
  for (let i = 0; i <= SWEEPS; i++) {
    const t = now();
    const results = await client.healthCheckAllNodes();
    const ms = now() - t;
    if (results.length !== n || !results.every((r) => r.ok)) {
      throw new Error(`sweep over ${n} nodes: not every check passed`);
    }
    if (i > 0) sweeps.push(ms); // the first one warms up
  }
  await timeRequests(client, REQUESTS / 10, 64);
  const usPerRequest = await timeRequests(client, REQUESTS, 64);
  const usPerRequestAlone = await timeRequests(client, REQUESTS / 5, 1);
  await client.disconnect();
  await Promise.all(nodes.map((node) => node.close()));
  const sweepMs = median(sweeps);
  return {
    nodes: n,
    connectMs,
    sweepMs,
    sweepUsPerNode: (sweepMs * 1000) / n,
    usPerRequest,
    usPerRequestAlone,
  };
}

async function main() {
  console.log(
    `${runtimeLabel()}: simulated nodes on the memory network${
      QUICK ? " (quick)" : ""
    }`,
  );
  const sweeps = [];
  for (const n of SWEEP_SIZES) sweeps.push(await cluster(n));
  printTable(
    [
      "nodes",
      "connect ms",
      "sweep ms",
      "sweep µs/node",
      "request µs (64)",
      "request µs (1)",
    ],
    sweeps.map((s) => [
      int(s.nodes),
      fixed(s.connectMs, 1),
      fixed(s.sweepMs, 1),
      fixed(s.sweepUsPerNode, 1),
      fixed(s.usPerRequest, 2),
      fixed(s.usPerRequestAlone, 2),
    ]),
  );
  console.log();
  const picks = pickCosts();
  const base = (strategy: string) =>
    picks.find((p) => p.strategy === strategy && p.nodes === 10)!.nsPerPick;
  printTable(
    ["strategy", "nodes", "ns/pick", "vs 10 nodes"],
    picks.map((p) => [
      p.strategy,
      int(p.nodes),
      fixed(p.nsPerPick, 1),
      `${fixed(p.nsPerPick / base(p.strategy), 2)}x`,
    ]),
  );
  for (const strategy of STRATEGIES) {
    const top = picks.find((p) =>
      p.strategy === strategy && p.nodes === 10_000
    )!;
    const ratio = top.nsPerPick / base(strategy);
    console.log(
      `target: ${strategy} pick among 10,000 <= 2x among 10: ` +
        `${fixed(ratio, 2)}x -> ${ratio <= 2 ? "met" : "MISSED"}`,
    );
  }
  const file = saveSection("simulatedNodes", { quick: QUICK, sweeps, picks });
  console.log(`written to ${file} (${sink > 0 ? "ok" : "?"})`);
  console.log(JSON.stringify({ bench: "simulatedNodes", sweeps, picks }));
}

await main();
