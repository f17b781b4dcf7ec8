/**
 * Starts the three-node cluster of bench/slow_node.ts and bench/tail.ts in
 * two child processes of the running runtime (bench/slow_node_cluster.ts):
 * the "pair" of healthy nodes and the "third" node with its degraded
 * variants, so that the nodes never share the clients' thread.
 *
 * @module
 */

import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { SlowNodeCluster } from "./slow_node_cluster.ts";
import { spawnReporting, stopChild } from "./scale/child.ts";

export { stopChild };

const CLUSTER = fileURLToPath(
  new URL("./slow_node_cluster.ts", import.meta.url),
);

/** A running cluster child and the addresses it printed. */
export interface ClusterChild {
  readonly child: ChildProcess;
  readonly cluster: SlowNodeCluster;
}

/** Starts bench/slow_node_cluster.ts with `role`; resolves once it listens. */
export async function startChild(
  role: "pair" | "third",
): Promise<ClusterChild> {
  const { child, report } = await spawnReporting(CLUSTER, [role], role);
  return { child, cluster: report as SlowNodeCluster };
}
