/**
 * A node as the manager holds it: its address, pool, health record, the
 * id and protocol learned from its connections, and its in-flight count.
 *
 * @module
 */

import type { HostAddress } from "../config/shapes.ts";
import type { Connection } from "../connection/connection.ts";
import type { ConnectionPool } from "../pool/pool.ts";
import type { ProtocolType } from "../protocol_type.ts";
import type { NodeHealth } from "./health.ts";

/**
 * One node as the manager sees it.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * for (const node of client.manager.nodes) {
 *   console.log(node.address, node.nodeId, node.health.isHealthy, node.pool.stats().open);
 * }
 * ```
 */
export interface ManagedNode {
  /** `host:port`, the node's key. */
  readonly address: string;
  /** Host and port. */
  readonly host: HostAddress;
  /** The node's pool. */
  readonly pool: ConnectionPool<Connection>;
  /** The node's health record. */
  readonly health: NodeHealth;
  /** Requests in flight to this node through the client. */
  inFlight: number;
  /**
   * The node's index in the manager's dense per-node arrays (loads,
   * latency estimates); fixed for the node's life.
   */
  readonly slot: number;
  /** The id the node gave in HELLO_OK, once a connection was made. */
  nodeId: string | undefined;
  /** The protocol negotiated with the node, once a connection was made. */
  protocol: ProtocolType | undefined;
}

/**
 * A node's record. Its in-flight count lives in the manager's dense array
 * of loads; the accessor for it sits on the prototype, one function for
 * every node, so the request path's `node.inFlight++` stays a monomorphic,
 * inlined call (accessors made per node in an object literal are distinct
 * functions, and a call site that meets several cannot be inlined).
 */
export class NodeRecord implements ManagedNode {
  readonly address: string;
  readonly pool: ConnectionPool<Connection>;
  nodeId: string | undefined = undefined;
  protocol: ProtocolType | undefined = undefined;
  // Not readonly: the manager moves a node's count when it grows the
  // array (live membership) and into a cell of its own when the node is
  // removed, so its slot can be reused while its last requests finish.
  #loads: Int32Array;
  #slot: number;

  constructor(
    readonly host: HostAddress,
    loads: Int32Array,
    slot: number,
    readonly health: NodeHealth,
    makePool: (node: NodeRecord) => ConnectionPool<Connection>,
  ) {
    this.address = host.address;
    this.#loads = loads;
    this.#slot = slot;
    this.pool = makePool(this);
  }

  /** The node's slot: its index in the manager's array of loads. */
  get slot(): number {
    return this.#slot;
  }

  /**
   * Moves the in-flight count to `loads[slot]`, keeping its value: to a
   * grown array, or to a cell of its own once the node has left the
   * registry (its requests in flight still count down there).
   */
  moveLoads(loads: Int32Array, slot: number): void {
    loads[slot] = this.#loads[this.#slot];
    this.#loads = loads;
    this.#slot = slot;
  }

  get inFlight(): number {
    return this.#loads[this.#slot];
  }

  set inFlight(value: number) {
    this.#loads[this.#slot] = value;
  }
}
