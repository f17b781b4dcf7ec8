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
 * Here: the API, the checkout paths and the pool's state. Apart: its
 * options read and its parts' wiring (assembly.ts), its acquires' and
 * listeners' arguments read (arguments.ts), the pump and `poolReady`
 * (pump.ts), the check-in of a connection lent for exclusive use
 * (check_in.ts), the work of `clear()` and `close()` (shutdown.ts) and of
 * `stats()` (stats.ts), beside the parts themselves.
 *
 * @module
 */

import type { PoolConfig } from "../config/shapes.ts";
import { PoolClosedError } from "../errors.ts";
import { readAcquireOptions, readPoolListener } from "./arguments.ts";
import type { TickClock } from "../tick_clock.ts";
import type { PoolEmitter } from "./context.ts";
import {
  type ListenerOptions,
  TypedEventTarget,
  type TypedListener,
} from "../events.ts";
import type { PoolEventMap } from "./events.ts";
import { assemblePool, type PoolParts } from "./assembly.ts";
import type { Opener } from "./opening.ts";
import type { Entry } from "./entry.ts";
import type { Roster } from "./roster.ts";
import { checkIn } from "./check_in.ts";
import { clearPool, closePool } from "./shutdown.ts";
import { Pump } from "./pump.ts";
import { poolStats } from "./stats.ts";
import type {
  AcquireOptions,
  ConnectionPoolOptions,
  PoolableConnection,
  PoolStats,
} from "./types.ts";
import type { Waiters } from "./waiters.ts";
import type { WaitQueue } from "./wait_queue.ts";

const OPEN = 0;
const CLOSED = 1;

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
 * - Until an open has succeeded (at first, after a failure, after
 *   `clear()`), connections are opened one at a time.
 * - After failed opens, opening backs off (100 ms doubling to 5 s). While
 *   it does and nothing is held, callers fail at once with the last
 *   failure rather than each forcing a connect. A failure retrying cannot
 *   fix (rejected credentials: a `NodewireError` with `retryable: false`)
 *   blocks opening until the backoff ends; then the next caller gets one
 *   attempt (`stats().blocked`, `connectionFailed`'s `blocked`).
 * - `clear()` drops every connection (node unhealthy) but keeps the pool
 *   usable; `close()` ends it.
 *
 * Events (see {@linkcode PoolEventMap}) are dispatched as
 * {@linkcode PoolEvent}s, typed by name, and only built when someone
 * listens.
 *
 * @example
 * ```ts
 * import { ConnectionPool, type PoolableConnection } from "@nodewire/client/core";
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

  /** The parts together, for the cold paths (clear, close). */
  readonly #parts: PoolParts<C>;
  /** The clock read once per tick, for the per-request paths. */
  readonly #tick: TickClock;
  readonly #events: PoolEmitter;
  /** The connections held, and the choice among them. */
  readonly #roster: Roster<C>;
  /** The roster's map of entries, read directly on the hot path. */
  readonly #entries: Map<C, Entry<C>>;
  readonly #waiters: Waiters<C>;
  /** The waiters' queue, read directly on the hot path. */
  readonly #queue: WaitQueue<C>;
  readonly #opener: Opener<C>;

  #state = OPEN;
  /** Keep `minConnections` open; set by `start()` or the first use, cleared by `clear()`. */
  #filling = false;
  /** Serves the waiters, then opens what is missing; says `poolReady`. */
  readonly #pump: Pump<C>;
  #closePromise: Promise<void> | undefined;

  /**
   * Creates a pool; nothing is opened until `start()` or the first request.
   *
   * @throws {InvalidArgumentError} for a bad option; `ConfigError` for a bad `config`.
   */
  constructor(options: ConnectionPoolOptions<C>) {
    super();
    const parts = assemblePool<C>(this, options, {
      pump: () => this.#pump.pump(),
      pumpSoon: () => this.#pump.pumpSoon(),
      checkReady: () => this.#pump.checkReady(),
    });
    this.address = parts.ctx.address;
    this.config = parts.ctx.config;
    this.#parts = parts;
    this.#tick = parts.tick;
    this.#events = parts.events;
    this.#roster = parts.roster;
    this.#entries = parts.roster.entries;
    this.#waiters = parts.waiters;
    this.#queue = parts.waiters.queue;
    this.#opener = parts.opener;
    this.#pump = new Pump<C>(parts, () => this.#filling);
    // Deferred so that listeners added right after `new` hear it.
    queueMicrotask(() => this.#events.flushCreated());
  }

  /**
   * Listens to one of the pool's events (see {@linkcode PoolEventMap}); the
   * listener's event type follows from the name. Events are only built
   * once somebody listens.
   *
   * @throws {InvalidArgumentError} for a name the pool never dispatches (a
   *   misspelt one would never be heard), a listener that is no function
   *   or `handleEvent` object, or bad options, naming which.
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * pool.addEventListener("checkedOut", (e) => console.log(e.detail.durationMs));
   * ```
   */
  override addEventListener<K extends keyof PoolEventMap & string>(
    type: K,
    listener: TypedListener<PoolEventMap[K]> | null,
    options?: boolean | ListenerOptions,
  ): void {
    // Read once: the event target would read the options again.
    const read = readPoolListener("addEventListener", type, listener, options);
    super.addEventListener(type, listener, read);
  }

  /**
   * Removes a listener added with the same `type`, `listener` and
   * `capture`, checking its arguments as `addEventListener` does.
   *
   * @throws {InvalidArgumentError} naming the bad argument.
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const onClosed = () => console.log("a connection closed");
   * pool.addEventListener("connectionClosed", onClosed);
   * pool.removeEventListener("connectionClosed", onClosed);
   * ```
   */
  override removeEventListener<K extends keyof PoolEventMap & string>(
    type: K,
    listener: TypedListener<PoolEventMap[K]> | null,
    options?: boolean | Pick<ListenerOptions, "capture">,
  ): void {
    const read = readPoolListener(
      "removeEventListener",
      type,
      listener,
      options,
    );
    super.removeEventListener(type, listener, read);
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
    this.#pump.checkReady();
    this.#pump.pump();
  }

  /**
   * Lends a connection for exclusive use: nobody else gets it, for shared
   * use or otherwise, until it is given back with `returnConnection()`.
   *
   * Served at once only when nobody waits: behind waiters of either kind
   * it queues, also when called from a listener of the pool's own events
   * (`checkedIn` comes before the waiters are served).
   *
   * Prefers a connection with nothing in flight. When every connection has
   * shared requests in flight it opens a new one if the pool may grow, and
   * otherwise lends the least loaded one (its pending requests finish on
   * it; no new shared request is sent on it).
   *
   * A connection `acquireShared()` has just handed out is not lent before
   * the event loop's next task, so that its caller sends on it first (it
   * does when its promise's continuation runs); nor is the one
   * `tryAcquireShared()` is handing out to a `checkedOut` listener's call.
   * A caller that would have had it waits that one turn (another idle
   * connection, if any, is lent at once), then is served by the rules
   * above.
   *
   * On the system clock a caller's wait keeps the process alive until it
   * is served or fails, even when no socket is open (a custom factory);
   * the pool's housekeeping alone does not.
   *
   * @throws {PoolTimeoutError} (rejects) after `timeoutMs`, default `connectionTimeoutMs`.
   * @throws {PoolClosedError} (rejects) when the pool is closed, or cleared while waiting.
   * @throws {Error} (rejects) the factory's error when opening a connection
   *   failed and the pool had no other to offer, or is `blocked` after a
   *   failure retrying cannot fix (see `connectionFailed`).
   * @throws {AbortedError} (rejects) when `signal` aborts first.
   * @throws {InvalidArgumentError} (rejects) for a bad option, naming it
   * (`timeoutMs`: 0 to 2^31 - 1 ms).
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const conn = await pool.getConnection({ timeoutMs: 2000 });
   * try {
   *   console.log(`working on connection ${conn.id}`);
   * } finally {
   *   pool.returnConnection(conn);
   * }
   * ```
   */
  getConnection(options?: AcquireOptions): Promise<C> {
    const o = readAcquireOptions("getConnection()", options);
    if (o instanceof Error) return Promise.reject(o);
    if (this.hasListeners("checkoutStarted")) {
      this.#events.emit("checkoutStarted", {
        address: this.address,
        mode: "exclusive",
      });
    }
    const refused = this.#refuse(true, o.signal);
    if (refused !== undefined) return refused;
    if (!this.#filling) this.#startFilling();
    // Only when nobody queues ahead. A waiter of either kind comes first:
    // a caller that re-enters from a listener (checkedIn, dispatched as a
    // connection comes back and before the waiters are served) would
    // otherwise take the connection from under a shared waiter.
    if (this.#queue.size === 0) {
      let entry: Entry<C> | undefined;
      try {
        entry = this.#roster.pickExclusive(this.#tick.now());
      } catch {
        // A custom connection's isOpen or inFlight getter threw (a raw
        // throw to the caller, and the connection stayed): the caller
        // waits, and serving it drops that connection as broken. Not on
        // a request's path: requests share connections.
      }
      if (entry !== undefined) {
        entry.lent = entry.used = true;
        if (this.hasListeners("checkedOut")) {
          this.#waiters.checkedOut(entry, "exclusive", undefined);
        }
        return Promise.resolve(entry.conn);
      }
    }
    // The pick may have dropped a dead connection, and a connectionClosed
    // listener closed the pool (or aborted the signal) meanwhile: a waiter
    // queued now would never be served nor timed out.
    return this.#refuse(true, o.signal) ?? this.#waiters.wait(true, o);
  }

  /**
   * Takes back a connection lent by `getConnection()`. A connection that
   * broke meanwhile, or that is due to retire, is closed instead of reused;
   * so is every connection returned after `close()`.
   *
   * @throws {PoolMisuseError} when the connection is not lent by this pool:
   * returned twice, from `acquireShared()`, or from another pool. The
   * pool's counts are left as they were.
   * @throws {ConfigError} naming `clock` when a custom clock's `now()`
   * throws as the connection comes back: it is taken back all the same, a
   * waiter is served (or fails with that error), and its idle time starts
   * at the pool's next reading of the clock.
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const conn = await pool.getConnection();
   * pool.returnConnection(conn);
   * ```
   */
  returnConnection(conn: C): void {
    const entry = this.#entries.get(conn);
    if (entry === undefined || !entry.lent) throw this.#roster.misuse(conn);
    checkIn(this.#parts, this.#pump, this, entry);
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
   * The connection it resolves with is not lent by `getConnection()` before
   * the event loop's next task, so a caller that sends on it as soon as it
   * has it never sends on a lent connection.
   *
   * @throws {PoolTimeoutError} (rejects) after `timeoutMs`, default `connectionTimeoutMs`.
   * @throws {PoolClosedError} (rejects) when the pool is closed, or cleared while waiting.
   * @throws {Error} (rejects) the factory's error when opening a connection
   *   failed and the pool had no other to offer, or is `blocked` after a
   *   failure retrying cannot fix (see `connectionFailed`).
   * @throws {AbortedError} (rejects) when `signal` aborts first.
   * @throws {InvalidArgumentError} (rejects) as `getConnection()` does.
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const conn = await pool.acquireShared();
   * console.log(`${conn.inFlight} requests already in flight on ${conn.id}`);
   * ```
   */
  acquireShared(options?: AcquireOptions): Promise<C> {
    const o = readAcquireOptions("acquireShared()", options);
    if (o instanceof Error) return Promise.reject(o);
    if (this.hasListeners("checkoutStarted")) {
      this.#events.emit("checkoutStarted", {
        address: this.address,
        mode: "shared",
      });
    }
    const refused = this.#refuse(false, o.signal);
    if (refused !== undefined) return refused;
    const conn = this.#takeShared();
    if (conn === undefined) {
      // As in getConnection(): the pick may have closed the pool.
      return this.#refuse(false, o.signal) ?? this.#waiters.wait(false, o);
    }
    // Its caller sends once its continuation runs: a getConnection() in
    // between (right after this call, or from a checkedIn listener while
    // an exclusive caller waits) must not be lent it before that.
    const entry = this.#entries.get(conn);
    // Gone already if a checkedOut listener closed the pool or the
    // connection: nothing to lend then.
    if (entry !== undefined) this.#waiters.turns.mark(entry);
    return Promise.resolve(conn);
  }

  /**
   * What `acquireShared()` would resolve with at once, without a promise:
   * the least loaded usable connection, or `undefined` when the caller
   * would have to wait (or the pool is closed); then call `acquireShared()`.
   * For the request hot path.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
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
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * pool.clear(new Error("3 health checks failed"));
   * ```
   */
  clear(reason?: unknown): void {
    if (this.#state !== OPEN) return;
    this.#filling = false;
    clearPool(this.#parts, reason);
  }

  /**
   * Closes the pool: new requests fail with {@linkcode PoolClosedError},
   * waiters fail, opens in progress are aborted and waited for 500 ms at
   * most (what a factory deaf to the abort delivers later is closed, with
   * no event after `poolClosed`), the maintenance timer stops, and every
   * connection not lent is closed gracefully (requests in flight finish).
   * A connection lent by `getConnection()` stays with its holder and is
   * closed when returned, or when it closes on its own (`destroy()` it to
   * end a holder's work; `connections()` still lists it). Resolves once
   * every connection is closed, or given up on: a close still unsettled
   * `createTimeoutMs` after its connection was last seen with requests in
   * flight (a custom connection's may never settle) has its connection
   * destroyed with a {@linkcode ConnectionLostError} saying so, and is
   * waited for no more; requests in flight, each bounded by its own
   * timeout, are let finish (`connections()` lists their connections
   * meanwhile: `destroy()` them to end those requests now, as a client's
   * `disconnect()` does after its grace). On the system clock these
   * bounded waits keep the process alive, as awaited I/O does, so a
   * program awaiting `close()` goes on after it. A custom clock whose
   * `now()` or `setTimeout()` throws as the closes are waited for bounds
   * nothing: every close left is given up at once, its connection
   * destroyed with a `ConfigError` naming `clock`. Calling it again returns the same
   * promise.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * await pool.close();
   * console.log(pool.stats().open); // 0
   * ```
   */
  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    return closePool(this.#parts, (promise) => {
      this.#closePromise = promise;
      this.#state = CLOSED;
    });
  }

  /**
   * A snapshot of the pool's counters.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * const { open, inUse, waiting } = pool.stats();
   * console.log(`${inUse}/${open} in use, ${waiting} waiting`);
   * ```
   */
  stats(): PoolStats {
    return poolStats(this.#parts, this.#state !== OPEN);
  }

  /**
   * The connections the pool holds now, oldest first: idle, busy, lent, and
   * those waiting to retire; then those whose close it started and still
   * waits for (after `close()`, those busy with requests in flight), until
   * that close settles or is given up. A copy; for shutting everything
   * down at once (`destroy()` each, which ends a `close()` waiting on
   * requests in flight) or for diagnostics, not for sending requests.
   *
   * @example
   * ```ts
   * import type { ConnectionPool, PoolableConnection } from "@nodewire/client/core";
   * declare const pool: ConnectionPool<PoolableConnection>;
   * for (const conn of pool.connections()) conn.destroy(new Error("shutting down"));
   * ```
   */
  connections(): C[] {
    return this.#roster.connections();
  }

  // ------------------------------------------------ choosing, lending

  #takeShared(): C | undefined {
    if (!this.#filling) this.#startFilling();
    const now = this.#tick.now();
    const entry = this.#roster.pickShared(now);
    if (entry === undefined) return undefined;
    entry.lastUsedAt = now;
    entry.used = true;
    // Every connection is at the threshold: grow by one (one open at a
    // time) so load spreads.
    if (entry.conn.inFlight >= this.config.multiplexThreshold) {
      this.#opener.grow(now);
    }
    if (this.hasListeners("checkedOut")) {
      // A listener's getConnection() must not be lent what this caller is
      // about to send on. Only with listeners: the request path pays nothing.
      this.#waiters.turns.mark(entry);
      this.#waiters.checkedOut(entry, "shared", undefined);
    }
    return entry.conn;
  }

  /** A rejection when the pool is closed or `signal` aborted already. */
  #refuse(exclusive: boolean, signal?: AbortSignal): Promise<C> | undefined {
    const closed = this.#state !== OPEN;
    return closed || signal?.aborted
      ? this.#waiters.refuse(closed, exclusive, signal)
      : undefined;
  }

  #startFilling(): void {
    this.#filling = true;
    this.#pump.pumpSoon();
  }
}
