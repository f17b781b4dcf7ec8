/**
 * The scene most client tests start from: `n` reference nodes (`n0`, `n1`,
 * ...) and a client of them, on one virtual clock over the in-memory
 * network, health checks off. The test drives time; the scene closes the
 * client and every node at the end, whatever the body did.
 *
 * @module
 */

import { Client } from "../../src/client/client.ts";
import type { ConnectionConfig } from "../../src/config/shapes.ts";
import { createMemoryNetwork } from "../../src/runtime/memory.ts";
import { startTestNode, type TestNode } from "../../testing/node.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";

/** What a scene's body gets. */
export interface MemoryScene {
  client: Client;
  nodes: TestNode[];
  clock: VirtualClock;
  network: ReturnType<typeof createMemoryNetwork>;
  /** Starts one more node on the scene's network (closed at the end). */
  spare(nodeId: string, port?: number): Promise<TestNode>;
}

/** How a scene is built beyond the client's config. */
export interface MemorySceneOptions {
  /** `Client.connect`'s `lazy`. */
  lazy?: boolean;
  /** Every node's `maxFrameSize`. */
  maxFrameSize?: number;
}

/** `n` nodes and a client of them on one virtual clock and memory network. */
export async function memoryScene(
  n: number,
  config: Partial<ConnectionConfig>,
  body: (s: MemoryScene) => Promise<void> | void,
  options: MemorySceneOptions = {},
): Promise<void> {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        startTestNode({
          nodeId: `n${i}`,
          runtime: network,
          clock,
          maxFrameSize: options.maxFrameSize,
        }),
    ),
  );
  const extra: TestNode[] = [];
  const spare = async (nodeId: string, port?: number) => {
    const node = await startTestNode({ nodeId, runtime: network, clock, port });
    extra.push(node);
    return node;
  };
  const client = await Client.connect({
    hosts: nodes.map((node) => node.address),
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    ...config,
  }, { lazy: options.lazy });
  try {
    await body({ client, nodes, clock, network, spare });
  } finally {
    await client.disconnect({ timeoutMs: 1 }).catch(() => {});
    await Promise.all([...nodes, ...extra].map((node) => node.close()));
  }
}
