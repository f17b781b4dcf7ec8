/**
 * {@linkcode ConnectionPool}: the connections to one database node.
 *
 * Two ways to use a connection. `getConnection()` lends one for exclusive
 * use (work that needs a connection to itself) until `returnConnection()`.
 * `acquireShared()` hands out the open connection with the fewest requests
 * in flight without checking it out, since a connection multiplexes many
 * requests by sequence number. Both wait in one FIFO queue, bounded by a
 * timeout, when nothing can serve them.
 *
 * The pool never touches sockets: connections come from an injected factory
 * and time from an injected clock, so every timeout, backoff, idle timeout
 * and lifetime can be tested on a virtual clock.
 *
 * @module
 */

import { type Clock, systemClock, type TimerHandle } from "../clock.ts";
import { resolvePoolConfig } from "../config/resolve.ts";
import type { PoolConfig } from "../config/shapes.ts";
import { invalidDuration } from "../config/validate.ts";
import {
  AbortedError,
  PoolClosedError,
  PoolMisuseError,
  PoolTimeoutError,
} from "../errors.ts";
import {
  type CheckoutFailedReason,
  type CheckoutMode,
  type ConnectionClosedReason,
  PoolEvent,
  type PoolEventDetailMap,
  type PoolEventMap,
  type PoolEventName,
} from "./events.ts";
import { TypedEventTarget } from "../events.ts";
import { type Waiter, WaitQueue } from "./wait_queue.ts";
import type {
  AcquireOptions,
  ConnectionFactory,
  ConnectionPoolOptions,
  PoolableConnection,
  PoolStats,
} from "./types.ts";
import { TickClock } from "../tick_clock.ts";

/**
 * First delay of background refilling after a factory failure, doubled on
 * each further failure: the retry schedule's defaults, so a refusing node
 * sees a handful of attempts, not a storm.
 */
const BACKOFF_INITIAL_MS = 100;
/** Upper bound of that delay: a recovered node is noticed within 5 s. */
const BACKOFF_MAX_MS = 5000;
/** ±2% of `maxLifetimeMs`, so connections opened together do not all retire together. */
const LIFETIME_JITTER = 0.02;
/**
 * A connection due to close while requests are in flight on it is looked at
 * again after this long, because a connection does not announce that its
 * last request finished.
 */
const BUSY_RECHECK_MS = 1000;
/** The longest delay a timer accepts before it overflows and fires at once. */
const MAX_TIMER_MS = 2_147_483_647;

/** A connection the pool holds, with its bookkeeping. */
interface Entry<C> {
  readonly conn: C;
  /** When it retires; `Infinity` without a lifetime. */
  readonly expiresAt: number;
  /** Last time it was handed out, given back, or seen busy. */
  lastUsedAt: number;
  /** Lent exclusively. */
  lent: boolean;
  /** Set once it must not be handed out again; it closes as soon as it is idle. */
  retire: ConnectionClosedReason | undefined;
  /** Last time it answered a heartbeat (or was opened). */
  checkedAt: number;
  /** A heartbeat is in flight on it. */
  probing: boolean;
  /** No longer held (closed or broken); kept in the map only while lent. */
  removed: boolean;
}

/** A factory call in progress. */
interface Opening {
  readonly controller: AbortController;
  readonly startedAt: number;
  /** Settles after the pool has handled the outcome; never rejects. */
  settled: Promise<void>;
}

const OPEN = 0;
const CLOSED = 1;

function noop(): void {}

/** Closes gracefully; destroys when that fails. Never rejects. */
function closeQuietly(conn: PoolableConnection): Promise<void> {
  try {
    return conn.close().then(noop, (error) => destroyQuietly(conn, error));
  } catch (error) {
    destroyQuietly(conn, error);
    return Promise.resolve();
  }
}

/** The last resort after a failed close: nothing more to do if it throws too. */
function destroyQuietly(conn: PoolableConnection, error: unknown): void {
  try {
    conn.destroy(error instanceof Error ? error : undefined);
  } catch {
    // The connection is unusable either way and already off the books.
  }
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/**
 * The connections to one database node.
 *
 * - `start()` opens `minConnections` in the background and keeps that many
 *   open; `maxConnections` bounds the total and `maxConnecting` how many are
 *   opened at once.
 * - `getConnection()` lends a connection exclusively until
 *   `returnConnection()`; `acquireShared()` hands out the least loaded one
 *   without checking it out. Callers that must wait are served first come,
 *   first served, and fail with {@linkcode PoolTimeoutError} after
 *   `connectionTimeoutMs`.
 * - Idle connections above the minimum close after `idleTimeoutMs`, and
 *   every connection retires after `maxLifetimeMs` ± 2%, but only once
 *   nothing is in flight on it and it is not lent.
 * - Broken connections are dropped and replaced. With a `heartbeat` hook,
 *   connections idle for `heartbeatIntervalMs` are checked, and dropped
 *   when the check fails, so a half-open socket is found before use.
 * - After failed opens, opening backs off (100 ms doubling to 5 s). While
 *   it does and nothing is held, callers fail at once with the last
 *   failure rather than each forcing a connect.
 * - `clear()` drops every connection (node unhealthy) but keeps the pool
 *   usable; `close()` ends it.
 *
 * Events (see {@linkcode PoolEventMap}) are dispatched as
 * {@linkcode PoolEvent}s, typed by name, and only built when someone
 * listens.
 *
 * @example
 * ```ts
 * import { ConnectionPool } from "@nodewire/client";
 * import type { PoolableConnection } from "@nodewire/client";
 * declare function connect(signal: AbortSignal): Promise<PoolableConnection>;
 *
 * const pool = new ConnectionPool({
 *   address: "127.0.0.1:7000",
 *   config: { minConnections: 2, maxConnections: 10 },
 *   factory: connect,
 * });
 * pool.addEventListener("connectionClosed", (e) => console.log(e.detail.reason));
 * pool.start();
 *
 * const conn = await pool.getConnection({ timeoutMs: 1000 });
 * try {
 *   // ... work that needs the connection to itself ...
 * } finally {
 *   pool.returnConnection(conn);
 * }
 * await pool.close();
 * ```
 */
export class ConnectionPool<C extends PoolableConnection>
  extends TypedEventTarget<PoolEventMap> {
  /** The node, `host:port`. */
  readonly address: string;
  /** The resolved settings. */
  readonly config: Readonly<PoolConfig>;

  readonly #factory: ConnectionFactory<C>;
  readonly #clock: Clock;
  /** The clock read once per tick, for the per-request paths. */
  readonly #tick: TickClock;
  readonly #random: () => number;
  readonly #heartbeat: ((conn: C) => Promise<unknown>) | undefined;

  /** Open connections, oldest first: the order shared use prefers, so old ones stay warm and new ones idle out. */
  #list: Entry<C>[] = [];
  /** Every held connection, plus lent ones that broke, until returned. */
  #entries = new Map<C, Entry<C>>();
  /** Every connection this pool ever admitted, to tell "returned twice" from "another pool's". */
  #known = new WeakSet<C>();
  /** Held connections that may still be handed out (neither retiring nor removed). */
  #live = 0;
  #queue = new WaitQueue<C>();
  #opening = new Set<Opening>();
  #closing = new Set<Promise<void>>();

  #state = OPEN;
  /** Keep `minConnections` open; set by `start()` or the first use, cleared by `clear()`. */
  #filling = false;
  #ready = false;
  #createdSent = false;
  #closePromise: Promise<void> | undefined;

  #consecutiveFailures = 0;
  /** The error of the last failed open, until an open succeeds. */
  #lastFailure: Error | undefined;
  /** Waiters that asked to `ignoreBackoff`. */
  #probes = new Set<Waiter<C>>();
  /** Background opens wait until this time after failures. */
  #nextOpenAt = -Infinity;
  #totalCreated = 0;
  #totalClosed = 0;
  #totalFailed = 0;

  /** The one maintenance timer, and when it fires (`Infinity` when unset). */
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #pumping = false;
  #pumpAgain = false;
  #pumpQueued = false;

  /** Creates a pool; nothing is opened until `start()` or the first request. */
  constructor(options: ConnectionPoolOptions<C>) {
    super();
    this.address = options.address;
    this.config = Object.freeze(resolvePoolConfig(options.config));
    this.#factory = options.factory;
    this.#clock = options.clock ?? systemClock;
    this.#tick = new TickClock(this.#clock);
    this.#random = options.random ?? Math.random;
    this.#heartbeat = options.heartbeat;
    // Deferred so that listeners added right after `new` hear it.
    queueMicrotask(() => this.#flushCreated());
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.#state !== OPEN;
  }

  /**
   * Starts opening `minConnections` in the background and keeps that many
   * open from then on. The first `getConnection()` or `acquireShared()`
   * does the same, so calling it is only needed to warm the pool up.
   *
   * @throws {PoolClosedError} when the pool is closed.
   */
  start(): void {
    if (this.#state !== OPEN) {
      throw new PoolClosedError(this.address, "closed");
    }
    this.#filling = true;
    this.#checkReady();
    this.#pump();
  }

  /**
   * Lends a connection for exclusive use: nobody else gets it, for shared
   * use or otherwise, until it is given back with `returnConnection()`.
   *
   * Prefers a connection with nothing in flight. When every connection has
   * shared requests in flight it opens a new one if the pool may grow, and
   * otherwise lends the least loaded one (its pending requests finish on
   * it; no new shared request is sent on it).
   *
   * @throws {PoolTimeoutError} (rejects) after `timeoutMs`, default `connectionTimeoutMs`.
   * @throws {PoolClosedError} (rejects) when the pool is closed, or cleared while waiting.
   * @throws {AbortedError} (rejects) when `signal` aborts first.
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const conn = await pool.getConnection({ timeoutMs: 2000 });
   * try {
   *   console.log(`working on connection ${conn.id}`);
   * } finally {
   *   pool.returnConnection(conn);
   * }
   * ```
   */
  getConnection(options: AcquireOptions = {}): Promise<C> {
    if (this.hasListeners("checkoutStarted")) {
      this.#emit("checkoutStarted", {
        address: this.address,
        mode: "exclusive",
      });
    }
    const refused = this.#refuse(true, options.signal);
    if (refused !== undefined) return refused;
    if (!this.#filling) this.#startFilling();
    // Only when nobody queues ahead: an exclusive waiter means nothing is lendable.
    if (this.#queue.exclusive === 0) {
      const entry = this.#pickExclusive();
      if (entry !== undefined) {
        entry.lent = true;
        this.#checkedOut(entry, "exclusive", undefined);
        return Promise.resolve(entry.conn);
      }
    }
    return this.#wait(true, options);
  }

  /**
   * Takes back a connection lent by `getConnection()`. A connection that
   * broke meanwhile, or that is due to retire, is closed instead of reused.
   * After `close()`, returning is still accepted (the connection is already
   * closing).
   *
   * @throws {PoolMisuseError} when the connection is not lent by this pool:
   * returned twice, from `acquireShared()`, or from another pool. The
   * pool's counts are left as they were.
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const conn = await pool.getConnection();
   * pool.returnConnection(conn);
   * ```
   */
  returnConnection(conn: C): void {
    const entry = this.#entries.get(conn);
    if (entry === undefined || !entry.lent) throw this.#misuse(conn);
    entry.lent = false;
    if (this.hasListeners("checkedIn")) {
      this.#emit("checkedIn", {
        address: this.address,
        connectionId: conn.id,
      });
    }
    if (entry.removed) {
      this.#entries.delete(conn);
      return;
    }
    if (!conn.isOpen) {
      this.#remove(entry, "error", undefined, false);
      return;
    }
    const now = this.#tick.now();
    if (entry.retire !== undefined) {
      this.#closeWhenIdle(entry, now);
      return;
    }
    entry.lastUsedAt = now;
    if (
      this.config.idleTimeoutMs > 0 && this.#live > this.config.minConnections
    ) {
      this.#wakeAt(now + this.config.idleTimeoutMs);
    }
    this.#wakeForHeartbeat(now);
    // The oldest waiter wants a connection to itself and this one is free:
    // hand it over directly instead of scanning the queue and the pool.
    if (!this.#pumping && conn.inFlight === 0) {
      const head = this.#queue.peek();
      if (head !== undefined && head.exclusive) {
        this.#grant(head, entry);
        if (this.#queue.shared === 0) return;
      }
    }
    this.#pump();
  }

  /**
   * Returns an open connection for a plain request, without checking it
   * out: the oldest one not lent with fewer than `multiplexThreshold`
   * requests in flight, else the one with the fewest. Many callers share
   * it; the connection matches replies by sequence number.
   *
   * When every connection is at the threshold and the pool may grow, one
   * more is opened in the background so load spreads. When there
   * is no usable connection at all, the caller waits in the same FIFO queue
   * as `getConnection()`, with the same timeout.
   *
   * @throws {PoolTimeoutError} (rejects) after `timeoutMs`, default `connectionTimeoutMs`.
   * @throws {PoolClosedError} (rejects) when the pool is closed, or cleared while waiting.
   * @throws {AbortedError} (rejects) when `signal` aborts first.
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const conn = await pool.acquireShared();
   * console.log(`${conn.inFlight} requests already in flight on ${conn.id}`);
   * ```
   */
  acquireShared(options: AcquireOptions = {}): Promise<C> {
    if (this.hasListeners("checkoutStarted")) {
      this.#emit("checkoutStarted", { address: this.address, mode: "shared" });
    }
    const refused = this.#refuse(false, options.signal);
    if (refused !== undefined) return refused;
    const conn = this.#takeShared();
    return conn === undefined
      ? this.#wait(false, options)
      : Promise.resolve(conn);
  }

  /**
   * What `acquireShared()` would resolve with at once, without a promise:
   * the least loaded usable connection, or `undefined` when the caller
   * would have to wait (or the pool is closed); then call `acquireShared()`.
   * For the request hot path.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const conn = pool.tryAcquireShared() ?? await pool.acquireShared();
   * console.log(conn.id);
   * ```
   */
  tryAcquireShared(): C | undefined {
    return this.#state === OPEN ? this.#takeShared() : undefined;
  }

  /**
   * Drops every connection because the node turned unhealthy: idle ones
   * close now, busy or lent ones close as soon as they are idle or
   * returned, opens in progress are aborted, and every waiter fails with a
   * retryable {@linkcode PoolClosedError} ("cleared"). The pool stays
   * usable: the next request opens fresh connections, and background
   * refilling to `minConnections` resumes with it (or with `start()`),
   * which spares an unhealthy node a reconnect storm.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * pool.clear(new Error("3 health checks failed"));
   * ```
   */
  clear(reason?: unknown): void {
    if (this.#state !== OPEN) return;
    this.#filling = false;
    const error = new PoolClosedError(this.address, "cleared", {
      cause: reason,
    });
    for (const opening of this.#opening) opening.controller.abort(error);
    const now = this.#clock.now();
    for (const entry of this.#list.slice()) {
      this.#retire(entry, "stale");
      this.#closeWhenIdle(entry, now);
    }
    this.#failAll(error, "connectionError");
    if (this.hasListeners("poolCleared")) {
      this.#emit("poolCleared", { address: this.address, reason });
    }
  }

  /**
   * Closes the pool: new requests fail with {@linkcode PoolClosedError},
   * waiters fail, opens in progress are aborted, the maintenance timer
   * stops, and every connection is closed gracefully (requests in flight
   * finish; a connection still lent is closed too, and may still be
   * returned). Resolves once every connection is closed. Calling it again
   * returns the same promise.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * await pool.close();
   * console.log(pool.stats().open); // 0
   * ```
   */
  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#state = CLOSED;
    this.#stopTimer();
    const error = new PoolClosedError(this.address, "closed");
    for (const opening of this.#opening) opening.controller.abort(error);
    this.#failAll(error, "poolClosed");
    for (const entry of this.#list.slice()) {
      this.#remove(entry, "poolClosed", undefined, true);
    }
    this.#closePromise = this.#drain().then(() => {
      if (this.hasListeners("poolClosed")) {
        this.#emit("poolClosed", { address: this.address });
      }
    });
    return this.#closePromise;
  }

  /**
   * A snapshot of the pool's counters.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const { open, inUse, waiting } = pool.stats();
   * console.log(`${inUse}/${open} in use, ${waiting} waiting`);
   * ```
   */
  stats(): PoolStats {
    let idle = 0;
    let inUse = 0;
    let inFlight = 0;
    for (const entry of this.#list) {
      const load = entry.conn.inFlight;
      inFlight += load;
      if (entry.lent) inUse++;
      else if (
        entry.retire === undefined && load === 0 && entry.conn.isOpen
      ) idle++;
    }
    return {
      address: this.address,
      open: this.#list.length,
      idle,
      inUse,
      inFlight,
      waiting: this.#queue.size,
      connecting: this.#opening.size,
      totalCreated: this.#totalCreated,
      totalClosed: this.#totalClosed,
      totalFailed: this.#totalFailed,
      consecutiveFailures: this.#consecutiveFailures,
      closed: this.#state !== OPEN,
    };
  }

  /**
   * The connections the pool holds now, oldest first: idle, busy, lent, and
   * those waiting to retire. A copy; for shutting everything down at once
   * (`destroy()` each) or for diagnostics, not for sending requests.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * for (const conn of pool.connections()) conn.destroy(new Error("shutting down"));
   * ```
   */
  connections(): C[] {
    return this.#list.map((entry) => entry.conn);
  }

  // ---------------------------------------------------------------- choosing

  /**
   * The usable connection with the fewest requests in flight, oldest first
   * on ties; stops at the first one with none, so the common case looks at
   * one or two entries. Drops connections found broken on the way.
   */
  #leastLoaded(): Entry<C> | undefined {
    const list = this.#list;
    let best: Entry<C> | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < list.length; i++) {
      const entry = list[i];
      if (entry.lent || entry.retire !== undefined) continue;
      const conn = entry.conn;
      if (!conn.isOpen) {
        this.#remove(entry, "error", undefined, false);
        // The list changed under us; start over (rare).
        i = -1;
        best = undefined;
        bestLoad = Infinity;
        continue;
      }
      const load = conn.inFlight;
      if (load === 0) return entry;
      if (load < bestLoad) {
        best = entry;
        bestLoad = load;
      }
    }
    return best;
  }

  /**
   * What an exclusive caller gets now: an idle connection; else a busy one
   * only when waiting could not bring a fresh one (no open in progress and
   * none allowed now), since exclusive work is better off alone.
   */
  #pickExclusive(): Entry<C> | undefined {
    const entry = this.#leastLoaded();
    if (entry === undefined || entry.conn.inFlight === 0) return entry;
    if (this.#opening.size > 0) return undefined;
    const canGrow = this.#list.length < this.config.maxConnections &&
      this.#clock.now() >= this.#nextOpenAt;
    return canGrow ? undefined : entry;
  }

  /**
   * The connection for the next shared request: the oldest usable one with
   * fewer than `multiplexThreshold` requests in flight, else the least
   * loaded. Filling one connection before spilling onto the next keeps a
   * tick's frames together in one write, which is what makes multiplexing
   * pay: spreading 64 requests over 20 sockets costs 20 writes instead of
   * one, and measured at a tenth of the throughput.
   */
  #pickShared(): Entry<C> | undefined {
    const list = this.#list;
    const threshold = this.config.multiplexThreshold;
    for (let i = 0; i < list.length; i++) {
      const entry = list[i];
      if (entry.lent || entry.retire !== undefined) continue;
      if (!entry.conn.isOpen) {
        this.#remove(entry, "error", undefined, false);
        i--;
        continue;
      }
      if (entry.conn.inFlight < threshold) return entry;
    }
    return this.#leastLoaded();
  }

  #takeShared(): C | undefined {
    if (!this.#filling) this.#startFilling();
    const entry = this.#pickShared();
    if (entry === undefined) return undefined;
    const now = this.#tick.now();
    entry.lastUsedAt = now;
    // Every connection is at the threshold: grow by one (one open at a
    // time) so load spreads.
    if (
      entry.conn.inFlight >= this.config.multiplexThreshold &&
      this.#opening.size === 0 &&
      this.#list.length < this.config.maxConnections && now >= this.#nextOpenAt
    ) this.#startOpen(now);
    if (this.hasListeners("checkedOut")) {
      this.#checkedOut(entry, "shared", undefined);
    }
    return entry.conn;
  }

  // ----------------------------------------------------------------- waiting

  #refuse(exclusive: boolean, signal?: AbortSignal): Promise<C> | undefined {
    if (this.#state !== OPEN) {
      return this.#rejectNow(
        exclusive,
        new PoolClosedError(this.address, "closed"),
        "poolClosed",
      );
    }
    if (signal?.aborted) {
      return this.#rejectNow(
        exclusive,
        this.#aborted(exclusive, signal),
        "aborted",
      );
    }
    return undefined;
  }

  #rejectNow(
    exclusive: boolean,
    error: Error,
    reason: CheckoutFailedReason,
  ): Promise<C> {
    if (this.hasListeners("checkoutFailed")) {
      this.#emit("checkoutFailed", {
        address: this.address,
        mode: exclusive ? "exclusive" : "shared",
        reason,
        error,
      });
    }
    return Promise.reject(error);
  }

  #aborted(exclusive: boolean, signal: AbortSignal): AbortedError {
    const what = exclusive ? "getConnection()" : "acquireShared()";
    return new AbortedError(
      `${what} for ${this.address} aborted`,
      signal.reason,
    );
  }

  #wait(exclusive: boolean, options: AcquireOptions): Promise<C> {
    const timeoutMs = options.timeoutMs ?? this.config.connectionTimeoutMs;
    const invalid = invalidDuration("timeoutMs", timeoutMs, {
      allowZero: true,
    });
    if (invalid !== undefined) {
      return this.#rejectNow(exclusive, invalid, "timeout");
    }
    return new Promise<C>((resolve, reject) => {
      const startedAt = this.#tick.now();
      const waiter: Waiter<C> = {
        exclusive,
        startedAt,
        deadline: startedAt + timeoutMs,
        timeoutMs,
        resolve,
        reject,
        signal: options.signal,
        onAbort: undefined,
        done: false,
      };
      // No timer per waiter: the maintenance timer expires them all.
      this.#wakeAt(waiter.deadline);
      const signal = options.signal;
      if (signal !== undefined) {
        waiter.onAbort = () =>
          this.#fail(waiter, this.#aborted(exclusive, signal), "aborted");
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
      if (options.ignoreBackoff) this.#probes.add(waiter);
      this.#pump();
    });
  }

  #timeOut(waiter: Waiter<C>, timeoutMs: number): void {
    if (waiter.done) return;
    let inUse = 0;
    for (const entry of this.#list) if (entry.lent) inUse++;
    const error = new PoolTimeoutError(this.address, timeoutMs, {
      open: this.#list.length,
      inUse,
      waiting: this.#queue.size,
    });
    this.#fail(waiter, error, "timeout");
  }

  /** Takes a waiter off the queue and drops its abort listener. */
  #settle(waiter: Waiter<C>): boolean {
    if (!this.#queue.remove(waiter)) return false;
    this.#probes.delete(waiter);
    if (waiter.onAbort !== undefined) {
      waiter.signal!.removeEventListener("abort", waiter.onAbort);
      waiter.onAbort = undefined;
    }
    return true;
  }

  #fail(waiter: Waiter<C>, error: Error, reason: CheckoutFailedReason): void {
    if (!this.#settle(waiter)) return;
    if (this.hasListeners("checkoutFailed")) {
      this.#emit("checkoutFailed", {
        address: this.address,
        mode: waiter.exclusive ? "exclusive" : "shared",
        reason,
        error,
      });
    }
    waiter.reject(error);
  }

  #failAll(error: Error, reason: CheckoutFailedReason): void {
    for (const waiter of this.#queue.snapshot()) {
      this.#fail(waiter, error, reason);
    }
  }

  #grant(waiter: Waiter<C>, entry: Entry<C>): void {
    this.#settle(waiter);
    if (waiter.exclusive) entry.lent = true;
    else entry.lastUsedAt = this.#clock.now();
    this.#checkedOut(entry, waiter.exclusive ? "exclusive" : "shared", waiter);
    waiter.resolve(entry.conn);
  }

  #checkedOut(
    entry: Entry<C>,
    mode: CheckoutMode,
    waiter: Waiter<C> | undefined,
  ): void {
    if (!this.hasListeners("checkedOut")) return;
    this.#emit("checkedOut", {
      address: this.address,
      mode,
      connectionId: entry.conn.id,
      durationMs: waiter === undefined
        ? 0
        : this.#clock.now() - waiter.startedAt,
    });
  }

  /**
   * Serves waiters oldest first. Exclusive waiters are served strictly in
   * order; a shared waiter is served whenever any usable connection exists,
   * even behind a blocked exclusive waiter, because sharing takes nothing
   * away from it.
   */
  #serveWaiters(): void {
    if (this.#queue.size === 0) return;
    let exclusiveBlocked = false;
    let sharedBlocked = false;
    this.#queue.scan((waiter) => {
      if (waiter.exclusive) {
        if (!exclusiveBlocked) {
          const entry = this.#pickExclusive();
          if (entry === undefined) exclusiveBlocked = true;
          else this.#grant(waiter, entry);
        }
      } else if (!sharedBlocked) {
        const entry = this.#pickShared();
        if (entry === undefined) sharedBlocked = true;
        else this.#grant(waiter, entry);
      }
      return !(exclusiveBlocked &&
        (sharedBlocked || this.#queue.shared === 0));
    });
  }

  // ----------------------------------------------------------------- opening

  #startFilling(): void {
    this.#filling = true;
    this.#pumpSoon();
  }

  /** Serves waiters, then opens what is missing; safe to call from anywhere. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#serveWaiters();
        this.#openAsNeeded();
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  /** Pumps after the current operation, once however often it is asked. */
  #pumpSoon(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  #openAsNeeded(): void {
    if (this.#state !== OPEN) return;
    const config = this.config;
    const connecting = this.#opening.size;
    const forMin = this.#filling
      ? config.minConnections - this.#live - connecting
      : 0;
    const forWaiters = this.#queue.exclusive +
      (this.#queue.shared > 0 ? 1 : 0) - connecting;
    let count = Math.min(
      Math.max(forMin, forWaiters),
      config.maxConnecting - connecting,
      config.maxConnections - this.#list.length - connecting,
    );
    if (count <= 0) return;
    const now = this.#clock.now();
    if (now < this.#nextOpenAt) {
      // Backing off after failures. Callers with nothing at all to wait for
      // get one attempt now instead of sitting out the delay, but only
      // after a single failure (a blip, a restart): once the node has
      // failed repeatedly, an attempt per caller would be a reconnect
      // storm, so they get the last failure at once and the pool keeps to
      // its backoff.
      const stranded = this.#queue.size > 0 && this.#live === 0 &&
        connecting === 0;
      const attempt = stranded &&
        (this.#consecutiveFailures <= 1 || this.#probes.size > 0);
      if (!attempt) {
        if (stranded && this.#lastFailure) {
          this.#failAll(this.#lastFailure, "connectionError");
        }
        this.#wakeAt(this.#nextOpenAt);
        return;
      }
      count = 1;
    }
    while (count-- > 0) this.#startOpen(now);
  }

  #startOpen(now: number): void {
    const controller = new AbortController();
    const opening: Opening = {
      controller,
      startedAt: now,
      settled: Promise.resolve(),
    };
    this.#opening.add(opening);
    let promise: Promise<C>;
    try {
      promise = this.#factory(controller.signal);
    } catch (error) {
      promise = Promise.reject(error);
    }
    opening.settled = promise.then(
      (conn) => this.#opened(opening, conn),
      (error) => this.#openFailed(opening, error),
    );
  }

  #opened(opening: Opening, conn: C): void {
    this.#opening.delete(opening);
    this.#totalCreated++;
    if (this.hasListeners("connectionCreated")) {
      this.#emit("connectionCreated", {
        address: this.address,
        connectionId: conn.id,
      });
    }
    // Delivered although no longer wanted: the factory ignored the abort.
    if (opening.controller.signal.aborted || this.#state !== OPEN) {
      this.#discard(conn, this.#state === OPEN ? "stale" : "poolClosed");
      this.#pumpSoon();
      return;
    }
    this.#consecutiveFailures = 0;
    this.#lastFailure = undefined;
    this.#nextOpenAt = -Infinity;
    if (!conn.isOpen) {
      this.#discard(conn, "error");
      this.#pumpSoon();
      return;
    }
    const now = this.#clock.now();
    const lifetime = this.config.maxLifetimeMs;
    const entry: Entry<C> = {
      conn,
      expiresAt: lifetime > 0
        ? now +
          lifetime * (1 + (this.#random() * 2 - 1) * LIFETIME_JITTER)
        : Infinity,
      lastUsedAt: now,
      checkedAt: now,
      probing: false,
      lent: false,
      retire: undefined,
      removed: false,
    };
    this.#list.push(entry);
    this.#entries.set(conn, entry);
    this.#known.add(conn);
    this.#live++;
    conn.closed.then(
      (error) => this.#gone(entry, error),
      (error) => this.#gone(entry, asError(error)),
    );
    if (this.hasListeners("connectionReady")) {
      this.#emit("connectionReady", {
        address: this.address,
        connectionId: conn.id,
        durationMs: now - opening.startedAt,
      });
    }
    this.#wakeAt(entry.expiresAt);
    if (
      this.config.idleTimeoutMs > 0 && this.#live > this.config.minConnections
    ) {
      this.#wakeAt(now + this.config.idleTimeoutMs);
    }
    this.#wakeForHeartbeat(now);
    this.#checkReady();
    this.#pump();
  }

  #openFailed(opening: Opening, reason: unknown): void {
    this.#opening.delete(opening);
    // An open we aborted is no sign of the node's health.
    if (opening.controller.signal.aborted) {
      this.#pumpSoon();
      return;
    }
    const error = asError(reason);
    this.#totalFailed++;
    const failures = ++this.#consecutiveFailures;
    this.#lastFailure = error;
    const backoffMs = Math.min(
      BACKOFF_INITIAL_MS * 2 ** (failures - 1),
      BACKOFF_MAX_MS,
    );
    this.#nextOpenAt = this.#clock.now() + backoffMs;
    if (this.hasListeners("connectionFailed")) {
      this.#emit("connectionFailed", {
        address: this.address,
        error,
        consecutiveFailures: failures,
        backoffMs,
      });
    }
    // Nothing held and nothing on the way: waiting out the timeout would
    // only delay the same answer.
    if (this.#live === 0 && this.#opening.size === 0) {
      this.#failAll(error, "connectionError");
    }
    this.#pump();
  }

  /** Closes a connection the factory delivered but the pool will not keep. */
  #discard(conn: C, reason: ConnectionClosedReason): void {
    this.#totalClosed++;
    conn.closed.then(noop, noop);
    this.#track(closeQuietly(conn));
    if (this.hasListeners("connectionClosed")) {
      this.#emit("connectionClosed", {
        address: this.address,
        connectionId: conn.id,
        reason,
        error: undefined,
      });
    }
  }

  #checkReady(): void {
    if (
      this.#ready || !this.#filling ||
      this.#live < this.config.minConnections
    ) return;
    this.#ready = true;
    if (this.hasListeners("poolReady")) {
      this.#emit("poolReady", { address: this.address, open: this.#live });
    }
  }

  // ----------------------------------------------------------------- closing

  /** Stops handing a connection out; it closes once idle. */
  #retire(entry: Entry<C>, reason: ConnectionClosedReason): void {
    if (entry.retire !== undefined || entry.removed) return;
    entry.retire = reason;
    this.#live--;
    // A replacement may be due to keep the minimum.
    this.#pumpSoon();
  }

  /** Closes a retiring connection now if idle, else looks again later. */
  #closeWhenIdle(entry: Entry<C>, now: number): void {
    if (entry.removed || entry.lent) return; // a lent one closes on return
    if (entry.conn.inFlight === 0) {
      this.#remove(entry, entry.retire ?? "stale", undefined, true);
    } else {
      this.#wakeAt(now + BUSY_RECHECK_MS);
    }
  }

  /**
   * Lets go of a connection: off the books at once, closed gracefully when
   * `initiate` (else it is closing or closed already). A lent one stays in
   * the map until returned, so that its return is not mistaken for misuse.
   */
  #remove(
    entry: Entry<C>,
    reason: ConnectionClosedReason,
    error: Error | undefined,
    initiate: boolean,
  ): void {
    if (entry.removed) return;
    entry.removed = true;
    if (entry.retire === undefined) this.#live--;
    const index = this.#list.indexOf(entry);
    if (index >= 0) this.#list.splice(index, 1);
    if (!entry.lent) this.#entries.delete(entry.conn);
    this.#totalClosed++;
    if (initiate) this.#track(closeQuietly(entry.conn));
    this.#pumpSoon();
    if (this.hasListeners("connectionClosed")) {
      this.#emit("connectionClosed", {
        address: this.address,
        connectionId: entry.conn.id,
        reason,
        error,
      });
    }
  }

  /** The connection's `closed` settled: it broke or closed on its own. */
  #gone(entry: Entry<C>, error: Error | undefined): void {
    if (!entry.removed) this.#remove(entry, "error", error, false);
  }

  #track(closing: Promise<void>): void {
    this.#closing.add(closing);
    closing.then(() => this.#closing.delete(closing));
  }

  async #drain(): Promise<void> {
    while (this.#opening.size > 0 || this.#closing.size > 0) {
      const pending: Promise<void>[] = [...this.#closing];
      for (const opening of this.#opening) pending.push(opening.settled);
      await Promise.all(pending);
    }
  }

  // ------------------------------------------------------------- maintenance

  /** Arms the one maintenance timer for `at`, unless it fires sooner already. */
  #wakeAt(at: number): void {
    if (this.#state !== OPEN || at === Infinity || at >= this.#timerAt) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    const delay = Math.min(Math.max(0, at - this.#clock.now()), MAX_TIMER_MS);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#maintain();
    }, delay);
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /**
   * Retires connections past their lifetime, closes those idle too long
   * above the minimum, drops broken ones, refills, and arms the timer for
   * the next deadline.
   */
  #maintain(): void {
    if (this.#state !== OPEN) return;
    const now = this.#clock.now();
    const { idleTimeoutMs, minConnections } = this.config;
    let next = this.#expireWaiters(now);
    for (const entry of this.#list.slice()) {
      if (entry.removed) continue;
      if (!entry.conn.isOpen) {
        this.#remove(entry, "error", undefined, false);
        continue;
      }
      if (entry.retire === undefined && now >= entry.expiresAt) {
        this.#retire(entry, "lifetime");
      }
      if (entry.retire !== undefined) {
        this.#closeWhenIdle(entry, now);
      } else if (entry.expiresAt < next) {
        next = entry.expiresAt;
      }
    }
    if (idleTimeoutMs > 0) {
      let surplus = this.#live - minConnections;
      for (const entry of this.#list.slice()) {
        if (surplus <= 0) break;
        if (entry.removed || entry.lent || entry.retire !== undefined) continue;
        // Its own heartbeat ping is no sign of use; look again after it.
        if (entry.probing) continue;
        if (entry.conn.inFlight !== 0) {
          // Busy now: its idle time starts no earlier than this.
          entry.lastUsedAt = now;
        } else if (now >= entry.lastUsedAt + idleTimeoutMs) {
          this.#remove(entry, "idle", undefined, true);
          surplus--;
          continue;
        }
        next = Math.min(next, entry.lastUsedAt + idleTimeoutMs);
      }
    }
    next = Math.min(next, this.#heartbeats(now));
    this.#pump();
    this.#wakeAt(next);
  }

  /** Fails waiters past their deadline; returns the next deadline. */
  #expireWaiters(now: number): number {
    let next = Infinity;
    if (this.#queue.size === 0) return next;
    for (const waiter of this.#queue.snapshot()) {
      if (now >= waiter.deadline) this.#timeOut(waiter, waiter.timeoutMs);
      else if (waiter.deadline < next) next = waiter.deadline;
    }
    return next;
  }

  /** Arms the timer for a heartbeat `heartbeatIntervalMs` from `now`. */
  #wakeForHeartbeat(now: number): void {
    const interval = this.config.heartbeatIntervalMs;
    if (this.#heartbeat !== undefined && interval > 0) {
      this.#wakeAt(now + interval);
    }
  }

  /**
   * Pings every idle connection that has been quiet for
   * `heartbeatIntervalMs`, so that a half-open socket is found and
   * replaced before a request lands on it. Returns when the next one is
   * due. Busy connections are checked by their own requests' timeouts;
   * lent ones are looked at again when returned.
   */
  #heartbeats(now: number): number {
    const interval = this.config.heartbeatIntervalMs;
    if (this.#heartbeat === undefined || interval <= 0) return Infinity;
    let next = Infinity;
    for (const entry of this.#list.slice()) {
      if (
        entry.removed || entry.lent || entry.retire !== undefined ||
        entry.probing
      ) continue;
      const due = Math.max(entry.lastUsedAt, entry.checkedAt) + interval;
      if (due > now) {
        next = Math.min(next, due);
      } else if (entry.conn.inFlight !== 0) {
        next = Math.min(next, now + interval);
      } else {
        this.#probe(entry);
      }
    }
    return next;
  }

  #probe(entry: Entry<C>): void {
    entry.probing = true;
    let check: Promise<unknown>;
    try {
      check = this.#heartbeat!(entry.conn);
    } catch (error) {
      check = Promise.reject(error);
    }
    check.then(
      () => {
        entry.probing = false;
        if (entry.removed || this.#state !== OPEN) return;
        entry.checkedAt = this.#clock.now();
        this.#wakeForHeartbeat(entry.checkedAt);
      },
      (reason) => {
        entry.probing = false;
        if (entry.removed || this.#state !== OPEN) return;
        const error = asError(reason);
        // Off the books first, so nothing is handed it while it closes.
        this.#remove(entry, "error", error, false);
        destroyQuietly(entry.conn, error);
      },
    );
  }

  // ------------------------------------------------------------------ events

  #emit<K extends PoolEventName>(
    type: K,
    detail: PoolEventDetailMap[K],
  ): void {
    this.#flushCreated();
    this.dispatchEvent(
      new PoolEvent(type, detail, this.#clock.now()) as PoolEventMap[K],
    );
  }

  /** Dispatches `poolCreated` first, once, whichever comes first. */
  #flushCreated(): void {
    if (this.#createdSent) return;
    this.#createdSent = true;
    if (this.hasListeners("poolCreated")) {
      this.dispatchEvent(
        new PoolEvent("poolCreated", {
          address: this.address,
          config: this.config,
        }, this.#clock.now()),
      );
    }
  }

  #misuse(conn: C): PoolMisuseError {
    const id = (conn as { id?: unknown } | null)?.id;
    return new PoolMisuseError(
      this.address,
      this.#known.has(conn)
        ? `connection ${id} was returned to the pool for ${this.address} ` +
          `but is not checked out: returned twice, or obtained from ` +
          `acquireShared(), which does not check out`
        : `connection ${id} does not belong to the pool for ${this.address}`,
    );
  }
}
