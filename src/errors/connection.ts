/**
 * Errors about reaching or keeping a connection to a node. The runtime
 * adapters translate each runtime's own socket errors into these.
 *
 * @module
 */

import {
  badCode,
  clipped,
  fieldOf,
  flagOf,
  itemsOf,
  listed,
  NodewireError,
  type NodewireErrorOptions,
  optionsOf,
  textOf,
  withRetryable,
} from "./base.ts";
import { CONNECTION_ERROR_CODES, type ConnectionErrorCode } from "./codes.ts";

/**
 * Where a connection error comes from: a host and a port.
 *
 * @example
 * ```ts
 * import { type Endpoint, formatAddress } from "@nodewire/client/core";
 * import { ConnectionRefusedError } from "@nodewire/client";
 * const node: Endpoint = { hostname: "::1", port: 7000 };
 * const error = new ConnectionRefusedError(node);
 * console.log(formatAddress(node), error.address); // "[::1]:7000" "[::1]:7000"
 * ```
 */
export interface Endpoint {
  /** Host name or IP address. */
  hostname: string;
  /** TCP or UDP port. */
  port: number;
}

/**
 * Formats an endpoint as `host:port`, bracketing IPv6 literals.
 *
 * @example
 * ```ts
 * import { formatAddress } from "@nodewire/client/core";
 * formatAddress({ hostname: "::1", port: 7000 }); // "[::1]:7000"
 * ```
 */
export function formatAddress(endpoint: Endpoint): string {
  // An error must never fail to be built: a hostname an adapter could
  // not read is shown as what it is.
  const hostname = textOf(fieldOf(endpoint, "hostname"));
  const port = textOf(fieldOf(endpoint, "port"));
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/**
 * Base class of errors about reaching or keeping a connection to a node.
 *
 * @example
 * ```ts
 * import { type Client, ConnectionError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload, { retry: false });
 * } catch (error) {
 *   if (!(error instanceof ConnectionError)) throw error;
 *   console.log(`${error.address}: ${error.code}`, error.retryable ? "(safe to retry)" : "");
 * }
 * ```
 */
export class ConnectionError extends NodewireError {
  /** Which connection failure this is. */
  declare readonly code: ConnectionErrorCode;
  /** `host:port` of the node, `[v6]:port` for IPv6. */
  readonly address: string;

  /**
   * Creates a connection error for an endpoint. Retryable by default.
   *
   * @throws {InvalidArgumentError} for a `code` that is not one of
   *   {@linkcode ConnectionErrorCode}'s strings.
   */
  constructor(
    code: ConnectionErrorCode,
    message: string,
    endpoint: Endpoint,
    options: NodewireErrorOptions = {},
  ) {
    if (!CONNECTION_ERROR_CODES.has(code)) {
      throw badCode(
        new.target,
        code,
        `one of the codes ConnectionErrorCode lists: ${
          [...CONNECTION_ERROR_CODES].join(", ")
        }`,
      );
    }
    super(code, message, withRetryable(options, true));
    this.address = formatAddress(endpoint);
  }
}

/**
 * The node actively refused the connection (nothing listens on the port).
 *
 * @example
 * ```ts
 * import { ConnectionRefusedError } from "@nodewire/client";
 * import { Connection } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * try {
 *   await Connection.connect({ adapter: await getAdapter(), hostname: "127.0.0.1", port: 7000 });
 * } catch (error) {
 *   if (error instanceof ConnectionRefusedError) console.log(`nothing listens on ${error.address}`);
 *   else throw error;
 * }
 * ```
 */
export class ConnectionRefusedError extends ConnectionError {
  /** Always `"CONNECTION_REFUSED"`. */
  declare readonly code: "CONNECTION_REFUSED";
  /** Creates the error for an endpoint. */
  constructor(endpoint: Endpoint, options: NodewireErrorOptions = {}) {
    super(
      "CONNECTION_REFUSED",
      `connection to ${formatAddress(endpoint)} refused`,
      endpoint,
      options,
    );
  }
}

/**
 * Connecting (TCP, the HELLO exchange and the handshake) took longer than
 * allowed.
 *
 * @example
 * ```ts
 * import { ConnectTimeoutError } from "@nodewire/client";
 * import { Connection } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * try {
 *   await Connection.connect({
 *     adapter: await getAdapter(),
 *     hostname: "10.0.0.7",
 *     port: 7000,
 *     timeoutMs: 2000,
 *   });
 * } catch (error) {
 *   if (error instanceof ConnectTimeoutError) {
 *     console.log(`${error.address} did not answer within ${error.timeoutMs} ms`);
 *   } else throw error;
 * }
 * ```
 */
export class ConnectTimeoutError extends ConnectionError {
  /** Always `"CONNECT_TIMEOUT"`. */
  declare readonly code: "CONNECT_TIMEOUT";
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  /** Creates the error for an endpoint and the limit that passed. */
  constructor(
    endpoint: Endpoint,
    timeoutMs: number,
    options: NodewireErrorOptions = {},
  ) {
    super(
      "CONNECT_TIMEOUT",
      `connecting to ${formatAddress(endpoint)} timed out after ${
        textOf(timeoutMs)
      } ms`,
      endpoint,
      options,
    );
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The host name could not be resolved. Retryable, since DNS failures are
 * often transient and another node may resolve.
 *
 * @example
 * ```ts
 * import { Client, ConnectFailedError, HostNotFoundError } from "@nodewire/client";
 * try {
 *   await Client.connect({ hosts: ["db-1.internal:7000", "db-2.internal:7000"] });
 * } catch (error) {
 *   if (!(error instanceof ConnectFailedError)) throw error;
 *   for (const { error: failure } of error.failures) {
 *     if (failure instanceof HostNotFoundError) console.log(`check DNS for ${failure.address}`);
 *   }
 * }
 * ```
 */
export class HostNotFoundError extends ConnectionError {
  /** Always `"HOST_NOT_FOUND"`. */
  declare readonly code: "HOST_NOT_FOUND";
  /** Creates the error for an endpoint. */
  constructor(endpoint: Endpoint, options: NodewireErrorOptions = {}) {
    super(
      "HOST_NOT_FOUND",
      `host ${textOf(fieldOf(endpoint, "hostname"))} could not be resolved`,
      endpoint,
      options,
    );
  }
}

/**
 * An open connection was lost: reset or closed by the peer, or closed by
 * the client after a protocol violation. `sent` says whether the request it
 * failed had already been written, in which case it may have reached the
 * node and is retried only when idempotent.
 *
 * @example
 * ```ts
 * import { type Client, ConnectionLostError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload); // not idempotent: not retried once sent
 * } catch (error) {
 *   if (!(error instanceof ConnectionLostError)) throw error;
 *   console.log(
 *     error.sent
 *       ? `${error.address} went away; the request may have run there`
 *       : `${error.address} went away before the request left`,
 *   );
 * }
 * ```
 */
export class ConnectionLostError extends ConnectionError {
  /** Always `"CONNECTION_LOST"`. */
  declare readonly code: "CONNECTION_LOST";
  /** Whether the failed request had been written to the socket. */
  readonly sent: boolean;
  /** How the connection was lost, as the message says after "lost:". */
  readonly reason: string;

  /**
   * Creates the error; `reason` says how the connection was lost.
   * Retryable by default: the connection's requests pass `retryable: false`
   * for a written request that is not safe to repeat.
   */
  constructor(
    endpoint: Endpoint,
    reason: string,
    options: NodewireErrorOptions & { sent?: boolean } = {},
  ) {
    const read = optionsOf(options);
    super(
      "CONNECTION_LOST",
      `connection to ${formatAddress(endpoint)} lost: ${textOf(reason)}`,
      endpoint,
      read,
    );
    this.sent = flagOf(read.sent) ?? true;
    this.reason = reason;
  }
}

/**
 * The operation was attempted on a connection that is closing or already
 * closed.
 *
 * @example
 * ```ts
 * import { ConnectionClosedError } from "@nodewire/client";
 * import type { Connection } from "@nodewire/client/core";
 * declare const connection: Connection;
 * const closed = connection.close(); // lets requests in flight finish
 * try {
 *   await connection.sendRequest(new Uint8Array([1]));
 * } catch (error) {
 *   if (error instanceof ConnectionClosedError) {
 *     console.log(`the connection to ${error.address} is closing; use another`);
 *   } else throw error;
 * }
 * await closed;
 * ```
 */
export class ConnectionClosedError extends ConnectionError {
  /** Always `"CONNECTION_CLOSED"`. */
  declare readonly code: "CONNECTION_CLOSED";
  /** Creates the error for an endpoint. */
  constructor(endpoint: Endpoint, options: NodewireErrorOptions = {}) {
    super(
      "CONNECTION_CLOSED",
      `connection to ${formatAddress(endpoint)} is closed`,
      endpoint,
      options,
    );
  }
}

/**
 * No node could be reached when the client connected. `failures` holds
 * every host and why it failed; the message names the first ten (each
 * reason cut at 200 characters), so that it stays readable in a log
 * whatever the number of hosts.
 *
 * @example
 * ```ts
 * import { Client, ConnectFailedError } from "@nodewire/client";
 * try {
 *   await Client.connect({ hosts: ["127.0.0.1:7000", "127.0.0.1:7001"] });
 * } catch (error) {
 *   if (!(error instanceof ConnectFailedError)) throw error;
 *   for (const { address, error: why } of error.failures) {
 *     console.log(`${address}: ${why.message}`);
 *   }
 * }
 * ```
 */
export class ConnectFailedError extends NodewireError {
  /** Always `"CONNECT_FAILED"`. */
  declare readonly code: "CONNECT_FAILED";
  /** Each host and the error it failed with. */
  readonly failures: readonly { address: string; error: Error }[];

  /** Creates the error from the failure of every host. */
  constructor(
    failures: readonly { address: string; error: Error }[],
    options: NodewireErrorOptions = {},
  ) {
    const items = itemsOf(failures);
    super(
      "CONNECT_FAILED",
      "could not connect to any node: " +
        (items === undefined ? textOf(failures) : listFailures(items)),
      { cause: fieldOf(items?.[0], "error"), ...withRetryable(options, true) },
    );
    this.failures = failures;
  }
}

function listFailures(failures: readonly unknown[]): string {
  const named = failures.slice(0, 10).map((failure) => {
    const why = textOf(fieldOf(fieldOf(failure, "error"), "message"));
    return `${textOf(fieldOf(failure, "address"))} (${clipped(why, 200)})`;
  });
  return listed(named, failures.length);
}

/**
 * A node turned unhealthy; its pool was cleared with this as the reason,
 * so requests that were waiting for it fail with a
 * {@linkcode PoolClosedError} whose `cause` is this error.
 *
 * @example Telling why a pool wait failed
 * ```ts
 * import { type Client, NodeUnhealthyError, PoolClosedError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload, { retry: false });
 * } catch (error) {
 *   if (error instanceof PoolClosedError && error.cause instanceof NodeUnhealthyError) {
 *     console.log(`${error.cause.address} went down: ${error.cause.message}`);
 *   } else throw error;
 * }
 * ```
 */
export class NodeUnhealthyError extends NodewireError {
  /** Always `"NODE_UNHEALTHY"`. */
  declare readonly code: "NODE_UNHEALTHY";
  /** `host:port` of the node. */
  readonly address: string;

  /** Creates the error for a node and the reason it was marked down. */
  constructor(address: string, reason: string) {
    super(
      "NODE_UNHEALTHY",
      `node ${textOf(address)} is unhealthy: ${textOf(reason)}`,
    );
    this.address = address;
  }
}
