/**
 * The manager's events that a Client re-dispatches as its own: health,
 * protocol and membership changes; a node added later gets the pool-event
 * listeners the client already forwards. Wired once, at construction.
 *
 * @module
 */

import type { ConnectionManager } from "../cluster/manager.ts";
import {
  NodeHealthEvent,
  NodeMembershipEvent,
  ProtocolSelectedEvent,
} from "../cluster/events.ts";
import type { PoolEvent, PoolEventName } from "../pool/events.ts";

/**
 * Re-dispatches `manager`'s events through `dispatch`, and adds the
 * listeners in `forwarding` (pool event name to forwarder) to the pool of
 * every node added from now on, before its first connection.
 */
export function forwardManagerEvents(
  manager: ConnectionManager,
  dispatch: (
    event: NodeHealthEvent | ProtocolSelectedEvent | NodeMembershipEvent,
  ) => void,
  forwarding: ReadonlyMap<PoolEventName, (e: PoolEvent) => void>,
): void {
  manager.addEventListener(
    "nodeHealthChanged",
    (e) => dispatch(new NodeHealthEvent(e.detail, e.at)),
  );
  manager.addEventListener(
    "protocolSelected",
    (e) => dispatch(new ProtocolSelectedEvent(e.detail, e.at)),
  );
  manager.addEventListener("nodeAdded", (e) => {
    // Before its first connection: listeners hear all of its pool.
    const pool = manager.node(e.detail.address)?.pool;
    for (const [type, forward] of forwarding) {
      pool?.addEventListener(type, forward);
    }
    dispatch(new NodeMembershipEvent("nodeAdded", e.detail, e.at));
  });
  manager.addEventListener(
    "nodeRemoved",
    (e) => dispatch(new NodeMembershipEvent("nodeRemoved", e.detail, e.at)),
  );
}
