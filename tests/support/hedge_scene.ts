// Two nodes on the in-memory network and a virtual clock, the first behind
// a fault proxy that answers 200 ms late (100 ms each way), and a
// round-robin client (hedging after 10 ms in `hedgeScene`): a request's main
// attempt goes to the slow node and its hedge to the other, which wins.
import { Client } from "../../src/client/client.ts";
import type { ConnectionConfig } from "../../src/config/shapes.ts";
import { createMemoryNetwork } from "../../src/runtime/memory.ts";
import { startTestNode, type TestNode } from "../../testing/node.ts";
import { type FaultProxy, startFaultProxy } from "../../testing/proxy.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";

export interface HedgeScene {
  client: Client;
  clock: VirtualClock;
  slow: FaultProxy;
  /** The node behind `slow`: what it received. */
  behind: TestNode;
  fast: TestNode;
}

/** The scene with a client that hedges after 10 ms unless `config` says otherwise. */
export function hedgeScene(
  config: Partial<ConnectionConfig>,
  body: (s: HedgeScene) => Promise<void>,
): Promise<void> {
  return twoNodeScene({ hedging: { delayMs: 10 }, ...config }, body);
}

/**
 * Two test nodes on a fresh memory network and virtual clock, the first
 * behind a fault proxy (no fault yet), and a round-robin client over them
 * (one connection each, health checks off) laid over with `config`.
 */
export async function startTwoNodes(
  config: Partial<ConnectionConfig>,
  nodeIds: readonly [string, string] = ["h0", "h1"],
) {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes = await Promise.all(
    nodeIds.map((nodeId) => startTestNode({ nodeId, runtime: network, clock })),
  );
  const slow = await startFaultProxy({
    target: nodes[0],
    runtime: network,
    clock,
  });
  const client = await Client.connect({
    hosts: [slow.address, nodes[1].address],
    runtime: network,
    clock,
    loadBalancing: "round-robin",
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1, maxConnections: 1 },
    ...config,
  });
  return { client, clock, slow, nodes };
}

/** The two nodes, the slow proxy and a client configured by `config` alone. */
export async function twoNodeScene(
  config: Partial<ConnectionConfig>,
  body: (s: HedgeScene) => Promise<void>,
): Promise<void> {
  const { client, clock, slow, nodes } = await startTwoNodes(config);
  // Only now: the handshake went through at full speed.
  await slow.setFaults({ latencyMs: 100 });
  try {
    await body({ client, clock, slow, behind: nodes[0], fast: nodes[1] });
  } finally {
    await client.disconnect({ timeoutMs: 1 });
    await slow.close();
    await Promise.all(nodes.map((n) => n.close()));
  }
}
