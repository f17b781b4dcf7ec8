/**
 * The diagnostics messages of connections opening, failing, closing, and
 * of nodes' health.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Connection } from "../connection/connection.ts";
import { channels } from "../diagnostics/channels.ts";
import { handshakeResult } from "../handshake/handshake.ts";
import type { ManagedNode } from "./node.ts";

/**
 * Opening a connection to `node`, started at `started`, failed with
 * `error`; returns it, to be thrown on.
 */
export function openFailed(
  clientId: number,
  node: ManagedNode,
  clock: Clock,
  started: number,
  error: unknown,
): unknown {
  if (!channels.connectionOpen.hasSubscribers) return error;
  channels.connectionOpen.publish({
    clientId,
    address: node.address,
    connectionId: undefined,
    nodeId: undefined,
    protocol: undefined,
    encrypted: false,
    durationMs: clock.now() - started,
    error: error instanceof Error ? error : new Error(String(error)),
  });
  return error;
}

/**
 * `connection` to `node` is open: published now, and its close when it
 * comes (whoever subscribed by then hears it).
 */
export function opened(
  clientId: number,
  node: ManagedNode,
  clock: Clock,
  started: number,
  connection: Connection,
): void {
  const openedAt = clock.now();
  if (channels.connectionOpen.hasSubscribers) {
    channels.connectionOpen.publish({
      clientId,
      address: node.address,
      connectionId: connection.id,
      nodeId: connection.nodeId,
      protocol: handshakeResult(connection)?.protocol,
      encrypted: connection.encrypted,
      durationMs: openedAt - started,
      error: undefined,
    });
  }
  connection.closed.then((error) => {
    if (!channels.connectionClose.hasSubscribers) return;
    channels.connectionClose.publish({
      clientId,
      address: node.address,
      connectionId: connection.id,
      nodeId: connection.nodeId,
      durationMs: clock.now() - openedAt,
      error,
    });
  });
}

/** `node`'s health changed: published, if anyone listens. */
export function healthChanged(
  clientId: number,
  node: ManagedNode,
  reason: string,
): void {
  if (!channels.nodeHealth.hasSubscribers) return;
  channels.nodeHealth.publish({
    clientId,
    address: node.address,
    nodeId: node.nodeId,
    healthy: node.health.isHealthy,
    reason,
  });
}
