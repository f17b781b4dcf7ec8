/**
 * The events a {@linkcode ConnectionPool} dispatches and their payloads.
 *
 * @module
 */

import type { PoolConfig } from "../config/shapes.ts";

/**
 * Why the pool let go of a connection.
 *
 * @example
 * ```ts
 * import type { Connection, ConnectionPool } from "@nodewire/client/core";
 * declare const pool: ConnectionPool<Connection>;
 * pool.addEventListener("connectionClosed", (e) => {
 *   if (e.detail.reason === "error") console.warn(`#${e.detail.connectionId} broke: ${e.detail.error?.message}`);
 * });
 * ```
 */
export type ConnectionClosedReason =
  /** Idle longer than `idleTimeoutMs` while the pool had more than `minConnections`. */
  | "idle"
  /** Older than `maxLifetimeMs` (± jitter); closed once it had nothing in flight. */
  | "lifetime"
  /** It broke or closed without the pool asking (its `closed` settled, or `isOpen` turned false). */
  | "error"
  /** It belonged to the pool before `clear()`. */
  | "stale"
  /** The pool was closed. */
  | "poolClosed";

/**
 * Why a checkout (`getConnection` or `acquireShared`) failed.
 *
 * @example
 * ```ts
 * import type { Connection, ConnectionPool } from "@nodewire/client/core";
 * declare const pool: ConnectionPool<Connection>;
 * pool.addEventListener("checkoutFailed", (e) => {
 *   if (e.detail.reason === "timeout") console.warn(`no connection to ${e.detail.address} in ${e.detail.durationMs} ms`);
 * });
 * ```
 */
export type CheckoutFailedReason =
  /** No connection within the acquire timeout. */
  | "timeout"
  /** The pool was closed before or while the caller waited. */
  | "poolClosed"
  /**
   * Opening a connection failed while the pool had nothing else to offer
   * (or opening is blocked after a failure retrying cannot fix), or the
   * pool was cleared (its node turned unhealthy) while the caller waited.
   */
  | "connectionError"
  /** The caller's `AbortSignal` fired. */
  | "aborted";

/**
 * How a connection was asked for: lent exclusively, or shared (multiplexed).
 *
 * @example
 * ```ts
 * import type { Connection, ConnectionPool } from "@nodewire/client/core";
 * declare const pool: ConnectionPool<Connection>;
 * pool.addEventListener("checkedOut", (e) => {
 *   console.log(`${e.detail.mode === "exclusive" ? "lent" : "shared"} #${e.detail.connectionId} after ${e.detail.durationMs} ms`);
 * });
 * ```
 */
export type CheckoutMode = "exclusive" | "shared";

/**
 * The payload of every pool event, by event name. Every payload names the
 * pool's node in `address`.
 *
 * @example
 * ```ts
 * import type { PoolEventDetailMap } from "@nodewire/client/core";
 * const onClosed = (detail: PoolEventDetailMap["connectionClosed"]) =>
 *   console.log(`${detail.address} #${detail.connectionId} closed: ${detail.reason}`);
 * ```
 */
export interface PoolEventDetailMap {
  /** The pool exists (dispatched one microtask after construction, so listeners added right after `new` see it). */
  poolCreated: { address: string; config: Readonly<PoolConfig> };
  /** The pool reached `minConnections` open connections for the first time. */
  poolReady: { address: string; open: number };
  /**
   * `clear()` ran. Dispatched first, before the `connectionClosed` of its
   * stale connections and the `checkoutFailed` of its waiters.
   */
  poolCleared: { address: string; reason: unknown };
  /**
   * `close()` finished: every connection is closed, lent ones once
   * returned. No connection event follows (one delivered later is closed
   * unannounced).
   */
  poolClosed: { address: string };
  /** The factory delivered a connection (it may still be discarded, see `connectionClosed`). */
  connectionCreated: { address: string; connectionId: number };
  /** A new connection joined the pool and can serve requests. `durationMs` is how long opening took. */
  connectionReady: {
    address: string;
    connectionId: number;
    durationMs: number;
  };
  /**
   * The factory failed. `backoffMs` is how long background refilling waits
   * before the next attempt; `consecutiveFailures` counts since the last
   * success. `blocked` when the error says retrying cannot help (it is a
   * `NodewireError` with `retryable: false`, such as rejected credentials):
   * then nothing at all is opened until `backoffMs` has passed, and callers
   * with nothing else to wait for fail at once with `error`.
   */
  connectionFailed: {
    address: string;
    error: Error;
    consecutiveFailures: number;
    backoffMs: number;
    blocked: boolean;
  };
  /** The pool let go of a connection; `error` is set when it broke. */
  connectionClosed: {
    address: string;
    connectionId: number;
    reason: ConnectionClosedReason;
    error: Error | undefined;
  };
  /** A caller asked for a connection. */
  checkoutStarted: { address: string; mode: CheckoutMode };
  /**
   * A caller's request for a connection failed; `durationMs` is how long
   * it waited (0 when it failed at once).
   */
  checkoutFailed: {
    address: string;
    mode: CheckoutMode;
    reason: CheckoutFailedReason;
    error: Error;
    durationMs: number;
  };
  /** A caller got a connection; `durationMs` is how long it waited. */
  checkedOut: {
    address: string;
    mode: CheckoutMode;
    connectionId: number;
    durationMs: number;
  };
  /** An exclusively lent connection came back through `returnConnection`. */
  checkedIn: { address: string; connectionId: number };
}

/**
 * The name of a pool event.
 *
 * @example
 * ```ts
 * import type { PoolEvent } from "@nodewire/client";
 * import type { Connection, ConnectionPool, PoolEventName } from "@nodewire/client/core";
 * import { POOL_EVENT_NAMES } from "@nodewire/client/core";
 * declare const pool: ConnectionPool<Connection>;
 * const quiet: PoolEventName[] = ["checkoutStarted", "checkedOut", "checkedIn"];
 * for (const name of POOL_EVENT_NAMES.filter((n) => !quiet.includes(n))) {
 *   pool.addEventListener(name, (e: PoolEvent) => console.log(e.type, e.detail.address));
 * }
 * ```
 */
export type PoolEventName = keyof PoolEventDetailMap;

/**
 * Every pool event name, in lifecycle order.
 *
 * @example
 * ```ts
 * import { POOL_EVENT_NAMES } from "@nodewire/client/core";
 * console.log(POOL_EVENT_NAMES.includes("checkedOut")); // true
 * ```
 */
export const POOL_EVENT_NAMES: readonly PoolEventName[] = Object.freeze(
  [
    "poolCreated",
    "poolReady",
    "poolCleared",
    "poolClosed",
    "connectionCreated",
    "connectionReady",
    "connectionFailed",
    "connectionClosed",
    "checkoutStarted",
    "checkoutFailed",
    "checkedOut",
    "checkedIn",
  ] satisfies PoolEventName[],
);

/** The names a pool dispatches, for its listeners' door. */
export const POOL_EVENTS: ReadonlySet<string> = new Set(POOL_EVENT_NAMES);

/**
 * An event dispatched by a {@linkcode ConnectionPool}. Its payload is in
 * `detail`, typed by the event name.
 *
 * @example
 * ```ts
 * import { PoolEvent } from "@nodewire/client";
 * const event = new PoolEvent("checkedIn", { address: "127.0.0.1:7000", connectionId: 3 }, 1250);
 * console.log(event.type, event.detail.connectionId, event.at); // "checkedIn" 3 1250
 * ```
 */
export class PoolEvent<K extends PoolEventName = PoolEventName> extends Event {
  /** The typed payload of this event. */
  readonly detail: PoolEventDetailMap[K];
  /**
   * When it happened: ms on the pool's clock (its `clock` option,
   * `performance.now()` by default). Compare it with other readings of
   * that clock, not with `Date.now()`.
   */
  readonly at: number;

  /** Creates an event named `type` carrying `detail`, which happened at `at`. */
  constructor(type: K, detail: PoolEventDetailMap[K], at: number) {
    super(type);
    this.detail = detail;
    this.at = at;
  }
}

/**
 * The events of a {@linkcode ConnectionPool}, by name: what its
 * `addEventListener` accepts and what each listener receives.
 *
 * @example
 * ```ts
 * import type { PoolEventMap } from "@nodewire/client";
 * const onClosed = (e: PoolEventMap["connectionClosed"]) =>
 *   console.log(`#${e.detail.connectionId} closed at ${e.at}: ${e.detail.reason}`);
 * ```
 */
export type PoolEventMap = { [K in PoolEventName]: PoolEvent<K> };
