/**
 * The messages a client publishes on its `diagnostics_channel` channels,
 * one shape per channel. Messages carry sizes, times, addresses and error
 * objects; never payload bytes and never credentials. Every message names
 * its client in `clientId` (the client's `id`), so a subscriber can tell
 * clients apart.
 *
 * @module
 */

import type { ProtocolType } from "../protocol_type.ts";

/**
 * One attempt of `Client.request`. The same object is published on
 * `nodewire:request:start` when the attempt starts, then on exactly one of
 * `nodewire:request:end` (the reply came: the request is done) or
 * `nodewire:request:error` (the attempt failed), with the outcome's fields
 * filled in; a subscriber may keep it between the two (in a `WeakMap`, say)
 * to pair them. A request is over with an `end` message, or an `error`
 * message whose `retrying` is false; with `retrying` true, a `start` with
 * the same `requestId` and `attempt + 1` follows after the backoff.
 *
 * When no node can be picked (none is healthy), or the request ends while
 * it waits between attempts (its signal aborted, the client disconnected),
 * the attempt is published as a `start` and an `error` with `address`
 * undefined: every request ends with a message, whatever stopped it.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import type { RequestMessage } from "@nodewire/client/core";
 * subscribe("nodewire:request:error", (message) => {
 *   const m = message as RequestMessage;
 *   console.log(`request ${m.clientId}/${m.requestId} attempt ${m.attempt} on ${m.address}: ${m.error}`);
 * });
 * ```
 */
export interface RequestMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The request's number within its client: the same for all its attempts. */
  readonly requestId: number;
  /** 0 for the first attempt, 1 for the first retry, and so on. */
  readonly attempt: number;
  /** The node the attempt went to, `host:port`; undefined when none was picked. */
  readonly address: string | undefined;
  /** Whether the caller said the request is safe to execute twice. */
  readonly idempotent: boolean;
  /** The request payload's size in bytes. */
  readonly payloadBytes: number;
  /** When the attempt started: ms on the client's clock. */
  readonly startedAt: number;
  /** The connection that carried the attempt, once it had one. */
  connectionId: number | undefined;
  /** How long the attempt waited for a pool connection, in ms, once it had one. */
  waitMs: number | undefined;
  /** `end` and `error`: how long the attempt took, in ms, its wait included. */
  durationMs: number | undefined;
  /** `end`: the reply's size in bytes. */
  replyBytes: number | undefined;
  /**
   * `error`: why the attempt failed. When `retrying` is false this is the
   * error the request fails with, which may wrap the attempt's own as its
   * `cause` (`RetriesExhaustedError`, `ClientClosedError`).
   */
  error: Error | undefined;
  /** `error`: whether the client retries the request after this attempt. */
  retrying: boolean;
}

/**
 * A connection the client asked its pool for, on `nodewire:pool:checkout`:
 * published when the checkout ended, with the connection or with the error
 * it failed with. Covers every checkout a client makes: one per request
 * attempt (`shared`), per `ping()`, and per `withConnection()` try
 * (`exclusive`).
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import type { CheckoutMessage } from "@nodewire/client/core";
 * subscribe("nodewire:pool:checkout", (message) => {
 *   const m = message as CheckoutMessage;
 *   if (m.waitMs > 100) console.log(`waited ${m.waitMs} ms for a connection to ${m.address}`);
 * });
 * ```
 */
export interface CheckoutMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The pool's node, `host:port`. */
  readonly address: string;
  /** Shared by many requests (multiplexed) or lent for exclusive use. */
  readonly mode: "shared" | "exclusive";
  /** The connection handed out; undefined when the checkout failed. */
  readonly connectionId: number | undefined;
  /** How long the caller waited, in ms (0 when one was ready). */
  readonly waitMs: number;
  /** Why the checkout failed (`PoolTimeoutError`, `PoolClosedError`, ...). */
  readonly error: Error | undefined;
}

/**
 * An attempt to open a connection ended, on `nodewire:connection:open`:
 * the connection is open (TCP or TLS, HELLO exchange and handshake done)
 * and `connectionId` is set, or the attempt failed and `error` says why.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import type { ConnectionOpenMessage } from "@nodewire/client/core";
 * subscribe("nodewire:connection:open", (message) => {
 *   const m = message as ConnectionOpenMessage;
 *   console.log(m.error ? `connect to ${m.address} failed` : `#${m.connectionId} ${m.protocol} in ${m.durationMs} ms`);
 * });
 * ```
 */
export interface ConnectionOpenMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The node, `host:port`. */
  readonly address: string;
  /** The new connection's id; undefined when opening failed. */
  readonly connectionId: number | undefined;
  /** The id the node gave in HELLO_OK, when it got that far. */
  readonly nodeId: string | undefined;
  /** The protocol negotiated, when the handshake negotiated one. */
  readonly protocol: ProtocolType | undefined;
  /** Whether the connection speaks TLS. */
  readonly encrypted: boolean;
  /** How long opening took or failed after, in ms. */
  readonly durationMs: number;
  /** Why opening failed (refused, timed out, TLS, negotiation, authentication). */
  readonly error: Error | undefined;
}

/**
 * A connection of the client closed, on `nodewire:connection:close`.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import type { ConnectionCloseMessage } from "@nodewire/client/core";
 * subscribe("nodewire:connection:close", (message) => {
 *   const m = message as ConnectionCloseMessage;
 *   if (m.error) console.log(`#${m.connectionId} to ${m.address} lost: ${m.error.message}`);
 * });
 * ```
 */
export interface ConnectionCloseMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The node, `host:port`. */
  readonly address: string;
  /** The connection's id. */
  readonly connectionId: number;
  /** The node's id. */
  readonly nodeId: string | undefined;
  /** How long the connection was open, in ms. */
  readonly durationMs: number;
  /** Set when it broke (lost, reset, heartbeat missed); undefined for a clean close. */
  readonly error: Error | undefined;
}

/**
 * A node turned healthy or unhealthy, on `nodewire:node:health`.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import type { NodeHealthMessage } from "@nodewire/client/core";
 * subscribe("nodewire:node:health", (message) => {
 *   const m = message as NodeHealthMessage;
 *   console.log(`${m.address} is ${m.healthy ? "up" : "down"}: ${m.reason}`);
 * });
 * ```
 */
export interface NodeHealthMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The node, `host:port`. */
  readonly address: string;
  /** The node's id, when known. */
  readonly nodeId: string | undefined;
  /** The new state. */
  readonly healthy: boolean;
  /** What caused the change. */
  readonly reason: string;
}

/**
 * Each channel's name and the message published on it.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import type { DiagnosticsMessages } from "@nodewire/client/core";
 * subscribe("nodewire:request:end", (message) => {
 *   const m = message as DiagnosticsMessages["nodewire:request:end"];
 *   console.log(m.durationMs);
 * });
 * ```
 */
export interface DiagnosticsMessages {
  /** An attempt of a request starts. */
  "nodewire:request:start": RequestMessage;
  /** An attempt got its reply: the request succeeded. */
  "nodewire:request:end": RequestMessage;
  /** An attempt failed; `retrying` says whether the request goes on. */
  "nodewire:request:error": RequestMessage;
  /** A connection opened, or failed to. */
  "nodewire:connection:open": ConnectionOpenMessage;
  /** A connection closed. */
  "nodewire:connection:close": ConnectionCloseMessage;
  /** A checkout from a node's pool ended. */
  "nodewire:pool:checkout": CheckoutMessage;
  /** A node turned healthy or unhealthy. */
  "nodewire:node:health": NodeHealthMessage;
}
