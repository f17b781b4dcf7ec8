/**
 * Errors of a connection pool: a wait that ran out, a pool closed or
 * cleared under the caller, a connection returned that was not lent.
 *
 * @module
 */

import {
  fieldOf,
  NodewireError,
  type NodewireErrorOptions,
  textOf,
  withRetryable,
} from "./base.ts";

/**
 * `getConnection()` or `acquireShared()` waited longer than its limit for
 * a connection: the caller's `timeoutMs`, else the pool's
 * `connectionTimeoutMs` (`limit` says which). Retryable: it never reached
 * a node.
 *
 * @example
 * ```ts
 * import { type Client, PoolTimeoutError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload, { retry: false });
 * } catch (error) {
 *   if (error instanceof PoolTimeoutError) {
 *     console.log(`no free connection to ${error.address} within ${error.timeoutMs} ms`);
 *   } else throw error;
 * }
 * ```
 */
export class PoolTimeoutError extends NodewireError {
  /** Always `"POOL_TIMEOUT"`. */
  declare readonly code: "POOL_TIMEOUT";
  /** `host:port` of the pool's node. */
  readonly address: string;
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;
  /**
   * Which limit it was: the caller's own `timeoutMs`, or the pool's
   * `connectionTimeoutMs` (the default when the caller gave none).
   */
  readonly limit: "timeoutMs" | "connectionTimeoutMs";

  /** Creates the error with the pool's counts at the moment it gave up. */
  constructor(
    address: string,
    timeoutMs: number,
    counts: { open: number; inUse: number; waiting: number },
    limit: "timeoutMs" | "connectionTimeoutMs" = "connectionTimeoutMs",
  ) {
    super(
      "POOL_TIMEOUT",
      `no connection to ${textOf(address)} within ${textOf(timeoutMs)} ms ` +
        `(${
          limit === "timeoutMs" ? "the call's timeoutMs" : "connectionTimeoutMs"
        }; ` +
        `${textOf(fieldOf(counts, "open"))} open, ` +
        `${textOf(fieldOf(counts, "inUse"))} in use, ` +
        `${textOf(fieldOf(counts, "waiting"))} waiting)`,
      { retryable: true },
    );
    this.address = address;
    this.timeoutMs = timeoutMs;
    this.limit = limit;
  }
}

/**
 * The pool was closed or cleared while the caller waited, or before it
 * asked. Retryable when the pool was only cleared (its node turned
 * unhealthy); not when it was closed for good.
 *
 * @example
 * ```ts
 * import { type Client, PoolClosedError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload, { retry: false });
 * } catch (error) {
 *   if (!(error instanceof PoolClosedError)) throw error;
 *   switch (error.code) {
 *     case "POOL_CLEARED": // its node turned unhealthy: another node may serve
 *       console.log(`${error.address} was cleared; retryable: ${error.retryable}`);
 *       break;
 *     case "POOL_CLOSED":
 *       console.log(`${error.address} is closed for good`);
 *       break;
 *   }
 * }
 * ```
 */
export class PoolClosedError extends NodewireError {
  /** `"POOL_CLOSED"` for good, `"POOL_CLEARED"` when its node turned unhealthy. */
  declare readonly code: "POOL_CLOSED" | "POOL_CLEARED";
  /** `host:port` of the pool's node. */
  readonly address: string;

  /** Creates the error; `how` is `"closed"` or `"cleared"`. */
  constructor(
    address: string,
    how: "closed" | "cleared",
    options: NodewireErrorOptions = {},
  ) {
    super(
      how === "closed" ? "POOL_CLOSED" : "POOL_CLEARED",
      `the pool for ${textOf(address)} was ${textOf(how)}`,
      withRetryable(options, how === "cleared"),
    );
    this.address = address;
  }
}

/**
 * A connection was returned that the pool did not lend: returned twice,
 * obtained from `acquireShared()` (which does not check out), or from
 * another pool. A bug in the caller; never retried.
 *
 * @example
 * ```ts
 * import { PoolMisuseError } from "@nodewire/client";
 * import type { Connection, ConnectionPool } from "@nodewire/client/core";
 * declare const pool: ConnectionPool<Connection>;
 * const connection = await pool.getConnection();
 * pool.returnConnection(connection);
 * try {
 *   pool.returnConnection(connection); // a second time: a bug
 * } catch (error) {
 *   if (error instanceof PoolMisuseError) console.log(error.address, error.message);
 *   else throw error;
 * }
 * ```
 */
export class PoolMisuseError extends NodewireError {
  /** Always `"POOL_MISUSE"`. */
  declare readonly code: "POOL_MISUSE";
  /** `host:port` of the pool's node. */
  readonly address: string;

  /** Creates the error for a pool address, saying what was wrong. */
  constructor(address: string, message: string) {
    super("POOL_MISUSE", message, { retryable: false });
    this.address = address;
  }
}
