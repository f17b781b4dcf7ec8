/**
 * The events a {@linkcode ConnectionManager} dispatches (and its Client
 * re-dispatches) and their payloads.
 *
 * @module
 */

import type { ProtocolType } from "../protocol_type.ts";

/**
 * Detail of a `nodeHealthChanged` event.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * client.addEventListener("nodeHealthChanged", (e) => {
 *   const { address, healthy, reason } = e.detail;
 *   console.log(`${address} is ${healthy ? "healthy" : "unhealthy"}: ${reason}`);
 * });
 * ```
 */
export interface NodeHealthChange {
  /** `host:port` of the node. */
  address: string;
  /** The node's id, when known. */
  nodeId: string | undefined;
  /** The new state. */
  healthy: boolean;
  /** What caused the change. */
  reason: string;
}

/**
 * Event dispatched by {@linkcode ConnectionManager} (and re-dispatched by
 * the Client) when a node turns healthy or unhealthy.
 *
 * @example
 * ```ts
 * import type { NodeHealthEvent } from "@nodewire/client";
 * const onChange = (e: NodeHealthEvent) => console.log(e.at, e.detail.address, e.detail.healthy);
 * ```
 */
export class NodeHealthEvent extends Event {
  /** What changed. */
  readonly detail: NodeHealthChange;
  /**
   * When the node's state changed: ms on the manager's clock (the config's
   * `clock`, `performance.now()` by default). Compare it with other
   * readings of that clock, not with `Date.now()`.
   */
  readonly at: number;

  /** Creates the event. */
  constructor(detail: NodeHealthChange, at: number) {
    super("nodeHealthChanged");
    this.detail = detail;
    this.at = at;
  }
}

/**
 * Detail of a `protocolSelected` event.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * client.addEventListener("protocolSelected", (e) => {
 *   const { address, protocol, previous } = e.detail;
 *   console.log(`${address}: ${previous ?? "none"} -> ${protocol}`);
 * });
 * ```
 */
export interface ProtocolSelection {
  /** `host:port` of the node. */
  address: string;
  /** The node's id. */
  nodeId: string | undefined;
  /** The protocol negotiated with the node. */
  protocol: ProtocolType;
  /** The protocol used before, `undefined` on the first connection. */
  previous: ProtocolType | undefined;
}

/**
 * Event dispatched by {@linkcode ConnectionManager} (and re-dispatched by
 * the Client) when the protocol negotiated with a node is first known or
 * changes.
 *
 * @example
 * ```ts
 * import type { ProtocolSelectedEvent } from "@nodewire/client";
 * const log = (e: ProtocolSelectedEvent) => console.log(e.detail.address, e.detail.protocol);
 * ```
 */
export class ProtocolSelectedEvent extends Event {
  /** Which node and which protocol. */
  readonly detail: ProtocolSelection;
  /**
   * When the connection that negotiated it was ready: ms on the manager's
   * clock (the config's `clock`, `performance.now()` by default). Compare
   * it with other readings of that clock, not with `Date.now()`.
   */
  readonly at: number;

  /** Creates the event. */
  constructor(detail: ProtocolSelection, at: number) {
    super("protocolSelected");
    this.detail = detail;
    this.at = at;
  }
}

/**
 * Detail of a `nodeAdded` or `nodeRemoved` event.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * client.addEventListener("nodeRemoved", (e) => {
 *   console.log(`${e.detail.address} (${e.detail.nodeId ?? "no id"}) left the cluster`);
 * });
 * ```
 */
export interface NodeMembershipChange {
  /** `host:port` of the node. */
  address: string;
  /**
   * The node's id, when known: never for `nodeAdded` (it is announced
   * before its first connection), the id it last gave for `nodeRemoved`.
   */
  nodeId: string | undefined;
}

/**
 * Event dispatched by {@linkcode ConnectionManager} (and re-dispatched by
 * the Client) when a node joins the cluster at run time (`nodeAdded`, as
 * `addNode` registers it, before its first connection) or has left it
 * (`nodeRemoved`, once `removeNode` has drained and closed its pool).
 *
 * @example
 * ```ts
 * import type { NodeMembershipEvent } from "@nodewire/client/core";
 * const log = (e: NodeMembershipEvent) => console.log(e.type, e.detail.address, e.at);
 * ```
 */
export class NodeMembershipEvent extends Event {
  /** Which node. */
  readonly detail: NodeMembershipChange;
  /**
   * When the node joined or was gone: ms on the manager's clock (the
   * config's `clock`, `performance.now()` by default).
   */
  readonly at: number;

  /** Creates the event; `type` is `"nodeAdded"` or `"nodeRemoved"`. */
  constructor(
    type: "nodeAdded" | "nodeRemoved",
    detail: NodeMembershipChange,
    at: number,
  ) {
    super(type);
    this.detail = detail;
    this.at = at;
  }
}

/**
 * The events of a {@linkcode ConnectionManager}, by name: what its
 * `addEventListener` accepts and what each listener receives.
 *
 * @example
 * ```ts
 * import type { ManagerEventMap } from "@nodewire/client/core";
 * const onHealth = (e: ManagerEventMap["nodeHealthChanged"]) => console.log(e.detail.healthy);
 * ```
 */
export interface ManagerEventMap {
  /** A node turned healthy or unhealthy. */
  nodeHealthChanged: NodeHealthEvent;
  /** The protocol negotiated with a node is first known, or changed. */
  protocolSelected: ProtocolSelectedEvent;
  /** A node was added at run time (`addNode`). */
  nodeAdded: NodeMembershipEvent;
  /** A node removed at run time (`removeNode`) is gone: its pool is closed. */
  nodeRemoved: NodeMembershipEvent;
}

// Typed as a record so that an event added to the map without being added
// here fails to compile.
const MANAGER_EVENTS: Record<keyof ManagerEventMap, true> = {
  nodeHealthChanged: true,
  protocolSelected: true,
  nodeAdded: true,
  nodeRemoved: true,
};

/** The names a manager dispatches, for its listeners' door. */
export const MANAGER_EVENT_NAMES: ReadonlySet<string> = new Set(
  Object.keys(MANAGER_EVENTS),
);
