/**
 * What the logger tells about a client's nodes: connections opened, failed
 * (TLS, negotiation, authentication by name), lost and closed, pools
 * cleared, health, protocols, and the connect's outcome. Messages are made
 * of addresses, ids and error messages, which never hold a credential.
 *
 * @module
 */

import type { LogEntry, Logger } from "../config/shapes.ts";
import type { Connection } from "../connection/connection.ts";
import {
  AuthenticationError,
  messageOf,
  NegotiationError,
  TlsError,
} from "../errors.ts";
import { letGo, printable } from "../errors/base.ts";
import type { TypedEventTarget } from "../events.ts";
import { handshakeResult } from "../handshake/handshake.ts";
import type { PoolEventDetailMap } from "../pool/events.ts";
import type { ConnectionPool } from "../pool/pool.ts";
import type { ManagerEventMap } from "./events.ts";
import type { ManagedNode } from "./node.ts";

/**
 * A logger that cannot break the client: a logger that throws, or an
 * async one that rejects, loses that entry, nothing else.
 */
export function guardLogger(log: Logger): Logger {
  return (entry) => {
    try {
      // Typed void, but an async function is one too: its rejection
      // would be the process's unhandled rejection.
      letGo(log(entry) as unknown);
    } catch {
      // The caller's logger failed; the client carries on.
    }
  };
}

/**
 * Logs what happens to a node's pool: connections opened, failed, lost
 * and closed, and clears; none of these events is per request.
 */
export function logPoolEvents(
  logger: Logger,
  pool: ConnectionPool<Connection>,
): void {
  const log = guardLogger(logger);
  pool.addEventListener("connectionReady", (e) => {
    const d = e.detail;
    const connection = pool.connections().find((c) => c.id === d.connectionId);
    log({
      level: "debug",
      message: `connection #${d.connectionId} to ${d.address} open in ${
        Math.round(d.durationMs)
      } ms${connection ? describe(connection) : ""}`,
      event: "connectionOpened",
      address: d.address,
      connectionId: d.connectionId,
    });
  });
  pool.addEventListener("connectionFailed", (e) => log(openFailure(e.detail)));
  pool.addEventListener("connectionClosed", (e) => {
    const d = e.detail;
    const error = d.error;
    log({
      level: error ? "warn" : "debug",
      message: `connection #${d.connectionId} to ${d.address} ${
        error ? `lost: ${error.message}` : `closed (${d.reason})`
      }`,
      event: error ? "connectionLost" : "connectionClosed",
      address: d.address,
      connectionId: d.connectionId,
      error,
    });
  });
  pool.addEventListener("poolCleared", (e) => {
    const d = e.detail;
    log({
      level: "warn",
      message: `pool of ${d.address} cleared: ${messageOf(d.reason)}`,
      event: "poolCleared",
      address: d.address,
      error: d.reason instanceof Error ? d.reason : undefined,
    });
  });
}

/** Logs what a manager decides about its nodes: health and protocols. */
export function logManagerEvents(
  logger: Logger,
  manager: TypedEventTarget<ManagerEventMap>,
): void {
  const log = guardLogger(logger);
  manager.addEventListener("nodeHealthChanged", (e) => {
    const d = e.detail;
    log({
      level: d.healthy ? "info" : "warn",
      message: `node ${d.address} is ${d.healthy ? "healthy" : "unhealthy"}: ${
        printable(d.reason)
      }`,
      event: "nodeHealthChanged",
      address: d.address,
    });
  });
  manager.addEventListener("protocolSelected", (e) => {
    const d = e.detail;
    log({
      level: "info",
      message: `node ${d.address}${
        d.nodeId ? ` (${d.nodeId})` : ""
      } negotiated ${d.protocol}${d.previous ? `, was ${d.previous}` : ""}`,
      event: "protocolSelected",
      address: d.address,
    });
  });
}

/** How a connection was set up: transport and who it logged in as. */
function describe(connection: Connection): string {
  const result = handshakeResult(connection);
  const parts: string[] = [];
  if (result !== undefined) parts.push(`over ${result.protocol}`);
  else if (connection.encrypted) parts.push("over tls");
  if (result?.authenticated) parts.push(`authenticated as ${result.username}`);
  return parts.length > 0 ? ` (${parts.join(", ")})` : "";
}

/** A failed open, by what failed: the fatal kinds are errors, named. */
function openFailure(d: PoolEventDetailMap["connectionFailed"]): LogEntry {
  const error = d.error;
  const what = error instanceof AuthenticationError
    ? ["authenticationFailed", "authentication with"]
    : error instanceof TlsError
    ? ["tlsFailed", "TLS with"]
    : error instanceof NegotiationError
    ? ["negotiationFailed", "protocol negotiation with"]
    : undefined;
  if (what !== undefined) {
    return {
      level: "error",
      message: `${what[1]} ${d.address} failed: ${error.message}`,
      event: what[0],
      address: d.address,
      error,
    };
  }
  return {
    level: "warn",
    message: `connecting to ${d.address} failed (${d.consecutiveFailures} ${
      d.consecutiveFailures === 1 ? "time" : "times in a row"
    }; next try in ${d.backoffMs} ms): ${error.message}`,
    event: "connectionFailed",
    address: d.address,
    error,
  };
}

/** The client's last entry, once `disconnect()` finished. */
export function disconnected(): LogEntry {
  return { level: "info", message: "disconnected", event: "disconnected" };
}

/**
 * `manager.connect(signal)`, its outcome logged: how many nodes answered,
 * or why none did.
 */
export async function connectLogged(
  manager: {
    connect(signal?: AbortSignal): Promise<void>;
    nodes: readonly ManagedNode[];
  },
  logger: Logger | undefined,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await manager.connect(signal);
  } catch (error) {
    logConnectOutcome(logger, manager.nodes, error);
    throw error;
  }
  logConnectOutcome(logger, manager.nodes);
}

/** The outcome of `Client.connect`: how many nodes answered, or why none did. */
function logConnectOutcome(
  logger: Logger | undefined,
  nodes: readonly ManagedNode[],
  error?: unknown,
): void {
  if (logger === undefined) return;
  const log = guardLogger(logger);
  if (error !== undefined) {
    log({
      level: "error",
      message: `connect failed: ${messageOf(error)}`,
      event: "connectFailed",
      error: error instanceof Error ? error : undefined,
    });
    return;
  }
  const healthy = nodes.filter((n) => n.health.isHealthy).length;
  log({
    level: "info",
    message: `connected: ${healthy} of ${nodes.length} ${
      nodes.length === 1 ? "node" : "nodes"
    } healthy`,
    event: "connected",
  });
}
