/**
 * The public shapes around {@linkcode ConnectionPool}: what it needs from a
 * connection and a factory, what its constructor and acquires take, and the
 * counters it reports.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { PoolConfig } from "../config/shapes.ts";

/**
 * What the pool needs from a connection. The SDK's `Connection` implements
 * it; tests use fakes.
 *
 * @example A minimal fake
 * ```ts
 * import type { PoolableConnection } from "@nodewire/client/core";
 * let settle!: (error: Error | undefined) => void;
 * const conn: PoolableConnection = {
 *   id: 1,
 *   inFlight: 0,
 *   isOpen: true,
 *   closed: new Promise((resolve) => (settle = resolve)),
 *   close: () => Promise.resolve(settle(undefined)),
 *   destroy: (error) => settle(error),
 * };
 * ```
 */
export interface PoolableConnection {
  /**
   * Unique, assigned by the factory, increasing. Read once as the pool
   * takes the connection in, as `closed` is: the pool's events name it by
   * that reading.
   */
  readonly id: number;
  /**
   * Requests currently pending on it (multiplexed use): a finite number
   * from 0. The pool refuses a connection whose `inFlight` is anything
   * else as it arrives (a failed open, with `InvalidArgumentError`), and
   * drops one that turns so later as broken (destroyed, `connectionClosed`
   * with reason `error`) when it is returned, retiring, or a caller would
   * wait for it: it could never be chosen.
   */
  readonly inFlight: number;
  /**
   * False once closing, closed or broken. A connection whose `isOpen` or
   * `inFlight` getter throws once taken in is dropped as broken
   * (destroyed, `connectionClosed` with reason `error`) where the pool
   * meets it off the request path: its timer, `returnConnection`,
   * `getConnection`, serving waiters, `clear()`. The shared checkout
   * (`acquireShared`, `tryAcquireShared`) reads both unguarded, so the
   * throw reaches its caller until then: every such call throws (it does
   * not wait), and with no timer armed (`idleTimeoutMs`, `maxLifetimeMs`
   * and `heartbeatIntervalMs` 0, nobody waiting) until one of those
   * others runs. This SDK's own `Connection` never throws there: both
   * getters read a field.
   */
  readonly isOpen: boolean;
  /**
   * Settles, never rejects, when the connection is gone; with the error if
   * it broke. Read once as the pool takes the connection in, as `id` is:
   * the pool waits on that promise.
   */
  readonly closed: Promise<Error | undefined>;
  /**
   * Graceful: finishes the requests in flight, then closes. The pool waits
   * for the promise (within `createTimeoutMs`, then destroys); one that
   * returns nothing is taken as done, and one that rejects or throws is
   * followed by `destroy()`.
   */
  close(): Promise<void>;
  /** Immediate. What it returns is not waited for (a rejection is ignored). */
  destroy(error?: Error): void;
}

/**
 * Opens one connection to the pool's node. It must honour `signal`: the
 * pool aborts opens that are no longer wanted (on `clear()` and `close()`)
 * and `close()` waits for them to settle. It must settle in bounded time
 * (a connect timeout of its own): until an open has succeeded, the pool
 * opens nothing else while one is in progress.
 *
 * @example
 * ```ts
 * import type { ConnectionFactory, PoolableConnection } from "@nodewire/client/core";
 * declare function connect(signal: AbortSignal): Promise<PoolableConnection>;
 * const factory: ConnectionFactory<PoolableConnection> = (signal) => connect(signal);
 * ```
 */
export type ConnectionFactory<C> = (signal: AbortSignal) => Promise<C>;

/**
 * Options of {@linkcode ConnectionPool}'s constructor.
 *
 * @example
 * ```ts
 * import type { ConnectionPoolOptions, PoolableConnection } from "@nodewire/client/core";
 * declare const factory: (signal: AbortSignal) => Promise<PoolableConnection>;
 * const options: ConnectionPoolOptions<PoolableConnection> = {
 *   address: "127.0.0.1:7000",
 *   config: { minConnections: 1, maxConnections: 4 },
 *   factory,
 * };
 * ```
 */
export interface ConnectionPoolOptions<C extends PoolableConnection> {
  /**
   * The node as `host:port` (`[v6]:port` for IPv6), named in errors and
   * events; anything else is refused with an InvalidArgumentError.
   */
  address: string;
  /** Pool settings; missing fields take the defaults of `DEFAULT_POOL_CONFIG`. */
  config?: Partial<PoolConfig>;
  /** Opens a connection to the node. */
  factory: ConnectionFactory<C>;
  /** Time source. Default `systemClock`. */
  clock?: Clock;
  /**
   * Random numbers in [0, 1) for the lifetime jitter. Default `Math.random`;
   * tests pass a constant to get exact lifetimes.
   */
  random?: () => number;
  /**
   * Checks an idle connection is still alive, for the idle heartbeat
   * (`heartbeatIntervalMs`): resolves when it answered, rejects when it did
   * not in time; one that has not settled after `heartbeatIntervalMs`
   * fails with a `ConnectionLostError` saying so. A connection whose check
   * fails is destroyed with that error (the rejection, if it rejected) and
   * replaced. A result that is no promise counts as an answer. Without
   * it, no heartbeat runs.
   */
  heartbeat?: (conn: C) => Promise<unknown>;
  /**
   * How long a factory call may take, in ms: then its signal aborts with
   * `ConnectTimeoutError`, it fails like a factory failure, and what it
   * delivers later is closed. Default `connectionTimeoutMs`, as long as a
   * caller waits (HikariCP bounds a connect so). The client gives its
   * pools `timeoutMs` + 1 s, so a connect's own timeout comes first.
   * A close the pool started (a retired, idle or stale connection, or all
   * of them at `close()`) gets as long once its connection has nothing in
   * flight, then the connection is destroyed.
   */
  createTimeoutMs?: number;
}

/**
 * Options of {@linkcode ConnectionPool.getConnection} and
 * {@linkcode ConnectionPool.acquireShared}.
 *
 * @example
 * ```ts
 * import type { AcquireOptions } from "@nodewire/client/core";
 * const options: AcquireOptions = { signal: AbortSignal.timeout(1000), timeoutMs: 500 };
 * ```
 */
export interface AcquireOptions {
  /** Gives up waiting when it aborts; the promise rejects with `AbortedError`. */
  signal?: AbortSignal;
  /** How long to wait, in ms. Default `connectionTimeoutMs`. */
  timeoutMs?: number;
  /**
   * When the pool holds no connection and is backing off after repeated
   * failures, try one at once anyway instead of failing with the last
   * failure. For health checks, whose own interval limits their rate.
   */
  ignoreBackoff?: boolean;
}

/**
 * A snapshot of a pool's counters, as plain data.
 *
 * @example
 * ```ts
 * import type { PoolStats } from "@nodewire/client/core";
 * const show = (s: PoolStats) => `${s.address}: ${s.inUse}/${s.open} in use, ${s.waiting} waiting`;
 * ```
 */
export interface PoolStats {
  /** The node, `host:port`. */
  address: string;
  /** Connections held and not yet closed: idle, busy, lent, or waiting to retire. */
  open: number;
  /** Open connections that could be lent right now: not lent, not retiring, nothing in flight. */
  idle: number;
  /** Connections lent exclusively. */
  inUse: number;
  /** Requests in flight over all open connections. */
  inFlight: number;
  /** Callers waiting for a connection. */
  waiting: number;
  /** Connections being opened. */
  connecting: number;
  /** Connections the factory delivered over the pool's life. */
  totalCreated: number;
  /** Connections the pool let go of over its life. */
  totalClosed: number;
  /** Factory failures over the pool's life. */
  totalFailed: number;
  /** Factory failures since the last success; background refilling backs off by it. */
  consecutiveFailures: number;
  /**
   * The last open failed in a way retrying cannot fix (its error is a
   * `NodewireError` with `retryable: false`, such as rejected credentials)
   * and none succeeded since: nothing is opened until the backoff ends,
   * then one attempt, and callers with nothing else to wait for fail at
   * once with that error.
   */
  blocked: boolean;
  /** Whether `close()` was called. */
  closed: boolean;
}
