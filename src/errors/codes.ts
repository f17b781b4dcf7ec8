/**
 * Every error code the SDK uses, and the tables that classify them. A new
 * code is added here once: to {@linkcode ErrorCode} and to whichever
 * tables it belongs in, beside the codes it resembles.
 *
 * @module
 */

/**
 * The codes of a {@linkcode ConnectionError}: its subclasses' codes and
 * the adapters' catch-alls (`CONNECTION_FAILED` for a socket error with no
 * better name, `LISTEN_FAILED` for a listener that could not bind,
 * `TLS_UNSUPPORTED` for a transport that cannot carry TLS).
 *
 * @example
 * ```ts
 * import { Client, ConnectFailedError, ConnectionError } from "@nodewire/client";
 * try {
 *   await Client.connect({ hosts: ["127.0.0.1:7000", "db.invalid:7000"] });
 * } catch (error) {
 *   if (!(error instanceof ConnectFailedError)) throw error;
 *   for (const { error: failure } of error.failures) {
 *     if (!(failure instanceof ConnectionError)) continue;
 *     switch (failure.code) {
 *       case "CONNECTION_REFUSED":
 *         console.log(`${failure.address}: nothing listens there`);
 *         break;
 *       case "HOST_NOT_FOUND":
 *         console.log(`${failure.address}: no such host`);
 *         break;
 *       default:
 *         console.log(`${failure.address}: ${failure.message}`);
 *     }
 *   }
 * }
 * ```
 */
export type ConnectionErrorCode =
  | "CONNECTION_REFUSED"
  | "CONNECT_TIMEOUT"
  | "HOST_NOT_FOUND"
  | "CONNECTION_LOST"
  | "CONNECTION_CLOSED"
  | "CONNECTION_FAILED"
  | "LISTEN_FAILED"
  | "TLS_UNSUPPORTED";

/**
 * Every `code` a {@linkcode NodewireError} can carry. Each error class has
 * one literal code (a few share a class), so `error.code` names the
 * failure; test the class with `instanceof` to read its own fields.
 *
 * @example Handling errors by code
 * ```ts
 * import { type Client, NodewireError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload, { timeoutMs: 250 });
 * } catch (error) {
 *   if (!(error instanceof NodewireError)) throw error;
 *   switch (error.code) {
 *     case "REQUEST_TIMEOUT":
 *       console.log("slow node:", error.message);
 *       break;
 *     case "AUTH_FAILED":
 *       console.log("check the username and password");
 *       break;
 *     case "NO_HEALTHY_NODES":
 *       console.log("every node is down");
 *       break;
 *     default:
 *       throw error;
 *   }
 * }
 * ```
 */
export type ErrorCode =
  | ConnectionErrorCode
  | "CONFIG_INVALID"
  | "INVALID_ARGUMENT"
  | "PROTOCOL_ERROR"
  | "CONNECT_FAILED"
  | "NODE_UNHEALTHY"
  | "REQUEST_TIMEOUT"
  | "ABORTED"
  | "REMOTE_ERROR"
  | "NO_HEALTHY_NODES"
  | "CLIENT_CLOSED"
  | "RETRIES_EXHAUSTED"
  | "DATAGRAM_TOO_LARGE"
  | "POOL_TIMEOUT"
  | "POOL_CLOSED"
  | "POOL_CLEARED"
  | "POOL_MISUSE"
  | "TLS_FAILED"
  | "NEGOTIATION_FAILED"
  | "AUTH_FAILED"
  | "SASLPREP_FAILED";

// Each code once, as a key: the compiler says when a code of the unions
// above is missing here, or one here is none of theirs.
const CONNECTION_CODE_KEYS: Record<ConnectionErrorCode, true> = {
  CONNECTION_REFUSED: true,
  CONNECT_TIMEOUT: true,
  HOST_NOT_FOUND: true,
  CONNECTION_LOST: true,
  CONNECTION_CLOSED: true,
  CONNECTION_FAILED: true,
  LISTEN_FAILED: true,
  TLS_UNSUPPORTED: true,
};
const ERROR_CODE_KEYS: Record<ErrorCode, true> = {
  ...CONNECTION_CODE_KEYS,
  CONFIG_INVALID: true,
  INVALID_ARGUMENT: true,
  PROTOCOL_ERROR: true,
  CONNECT_FAILED: true,
  NODE_UNHEALTHY: true,
  REQUEST_TIMEOUT: true,
  ABORTED: true,
  REMOTE_ERROR: true,
  NO_HEALTHY_NODES: true,
  CLIENT_CLOSED: true,
  RETRIES_EXHAUSTED: true,
  DATAGRAM_TOO_LARGE: true,
  POOL_TIMEOUT: true,
  POOL_CLOSED: true,
  POOL_CLEARED: true,
  POOL_MISUSE: true,
  TLS_FAILED: true,
  NEGOTIATION_FAILED: true,
  AUTH_FAILED: true,
  SASLPREP_FAILED: true,
};

/** Every {@linkcode ErrorCode}: what an error's constructor accepts. */
export const ERROR_CODES: ReadonlySet<unknown> = new Set(
  Object.keys(ERROR_CODE_KEYS),
);

/** Every {@linkcode ConnectionErrorCode}, in the order the union lists them. */
export const CONNECTION_ERROR_CODES: ReadonlySet<unknown> = new Set(
  Object.keys(CONNECTION_CODE_KEYS),
);

/**
 * Codes of errors raised before the request could have left the client:
 * retrying them can never execute the request twice. `CONNECTION_FAILED`
 * is one: the runtime adapters' catch-all reaches a request only from a
 * connect that failed (an unreachable host, say), since a stream that
 * breaks later fails its requests with `CONNECTION_LOST`.
 *
 * @example
 * ```ts
 * import { NEVER_SENT_CODES } from "@nodewire/client/core";
 * NEVER_SENT_CODES.has("CONNECTION_REFUSED"); // true
 * ```
 */
export const NEVER_SENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "CONNECTION_REFUSED",
  "CONNECT_TIMEOUT",
  "HOST_NOT_FOUND",
  "CONNECTION_FAILED",
  "CONNECTION_CLOSED",
  "POOL_TIMEOUT",
  "POOL_CLEARED",
  "NO_HEALTHY_NODES",
]);

/**
 * Codes never retried, whatever their `retryable` flag says: retrying
 * cannot fix them (bad config, bad credentials, a peer that breaks the
 * protocol), the caller asked to stop, or a retry loop already gave up.
 *
 * @example
 * ```ts
 * import { NEVER_RETRIED_CODES } from "@nodewire/client/core";
 * NEVER_RETRIED_CODES.has("AUTH_FAILED"); // true
 * ```
 */
export const NEVER_RETRIED_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "CONFIG_INVALID",
  "INVALID_ARGUMENT",
  "PROTOCOL_ERROR",
  "ABORTED",
  "CLIENT_CLOSED",
  "AUTH_FAILED",
  "SASLPREP_FAILED",
  "RETRIES_EXHAUSTED",
  "POOL_CLOSED",
  "POOL_MISUSE",
]);

/**
 * Codes that say nothing about the node's health: the node answered (a
 * remote error, even a failed login), the caller gave up, the client itself
 * is the bottleneck (a pool wait) or misconfigured or misused (a bad
 * argument is refused before any node sees it), or the request met a
 * connection the client had already closed (whatever closed it was counted
 * then).
 *
 * @example
 * ```ts
 * import { NOT_THE_NODES_FAULT } from "@nodewire/client/core";
 * NOT_THE_NODES_FAULT.has("REMOTE_ERROR"); // true
 * ```
 */
export const NOT_THE_NODES_FAULT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "REMOTE_ERROR",
  "CONNECTION_CLOSED",
  "AUTH_FAILED",
  "SASLPREP_FAILED",
  "ABORTED",
  "CLIENT_CLOSED",
  "CONFIG_INVALID",
  "INVALID_ARGUMENT",
  "POOL_TIMEOUT",
  "POOL_CLOSED",
  "POOL_CLEARED",
  "POOL_MISUSE",
  "NO_HEALTHY_NODES",
  "RETRIES_EXHAUSTED",
  // The request was too large to send over UDP; the node never saw it.
  "DATAGRAM_TOO_LARGE",
]);
