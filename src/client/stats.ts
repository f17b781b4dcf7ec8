/**
 * What `Client.stats()` returns: the client's counters and each node's
 * state, as plain data.
 *
 * @module
 */

import type { ManagedNode } from "../cluster/node.ts";
import type { PoolStats } from "../pool/types.ts";
import type { ProtocolType } from "../protocol_type.ts";

/**
 * A node's state, from `Client.stats()`.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * for (const node of client.stats().nodes) {
 *   console.log(node.address, node.healthy ? "up" : "down", node.latencyMs, node.pool.inUse);
 * }
 * ```
 */
export interface NodeStats {
  /** `host:port`. */
  address: string;
  /** The node's id, once known. */
  nodeId: string | undefined;
  /** The protocol negotiated with it, once a connection was made. */
  protocol: ProtocolType | undefined;
  /** Whether requests go to it. */
  healthy: boolean;
  /** Consecutive failed checks or requests. */
  consecutiveFailures: number;
  /** Moving average of ping round trips, in ms. */
  latencyMs: number | undefined;
  /** Requests in flight to it through this client. */
  inFlight: number;
  /** The pool's counters. */
  pool: PoolStats;
}

/**
 * Counters of a client, from `Client.stats()`.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * const { succeeded, failed, retries, inFlight } = client.stats();
 * console.log(`${succeeded} ok, ${failed} failed, ${retries} retries, ${inFlight} in flight`);
 * ```
 */
export interface ClientStats {
  /** Requests that got a reply. */
  succeeded: number;
  /** Requests that failed for good. */
  failed: number;
  /** Retries made (attempts after the first). */
  retries: number;
  /** Hedged attempts sent (see `hedging` in the config). */
  hedges: number;
  /** Requests in flight now. */
  inFlight: number;
  /** Per node. */
  nodes: NodeStats[];
}

/** The state of `node`, for `Client.stats()`. */
export function nodeStats(node: ManagedNode): NodeStats {
  return {
    address: node.address,
    nodeId: node.nodeId,
    protocol: node.protocol,
    healthy: node.health.isHealthy,
    consecutiveFailures: node.health.consecutiveFailures,
    latencyMs: node.health.latencyMs,
    inFlight: node.inFlight,
    pool: node.pool.stats(),
  };
}
