/**
 * Opening a pool's connections: how many to open and when, the factory
 * calls in progress, the backoff after failures, and taking in what the
 * factory delivers.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { PoolConfig } from "../config/shapes.ts";
import {
  ConnectionLostError,
  ConnectTimeoutError,
  NodewireError,
} from "../errors.ts";
import { asError } from "../errors/base.ts";
import { readRandom } from "../config/options.ts";
import type { PoolContext } from "./context.ts";
import { dropUntakable, refusal } from "./delivery.ts";
import { drainPool } from "./drain.ts";
import { endpointOf } from "./endpoint.ts";
import type { Housekeeper } from "./housekeeping.ts";
import type { Entry } from "./entry.ts";
import {
  BACKOFF_MAX_MS,
  backoffAfter,
  YOUNG_DEATH_MS,
} from "./open_backoff.ts";
import { closeQuietly, destroyQuietly, noop } from "./quiet_close.ts";
import type { Roster } from "./roster.ts";
import type { ConnectionFactory, PoolableConnection } from "./types.ts";
import type { WaitQueue } from "./wait_queue.ts";
import type { Waiters } from "./waiters.ts";

/** ±2% of `maxLifetimeMs`, so connections opened together do not all retire together. */
const LIFETIME_JITTER = 0.02;

/** A factory call in progress. */
interface Opening {
  readonly controller: AbortController;
  readonly startedAt: number;
  /** Settles after the pool has handled the outcome; never rejects. */
  settled: Promise<void>;
}

/**
 * Opens a pool's connections: enough to keep `minConnections` (while the
 * pool is filling) and to serve its waiters, within `maxConnections` and
 * `maxConnecting`.
 *
 * Until an open has succeeded (at first, and again after a failure or a
 * `clear()`) it opens one connection at a time: a node that refuses, or
 * rejects the credentials, sees one attempt rather than `maxConnecting`
 * at once. After failed opens it backs off (100 ms doubling to 5 s);
 * while it does and nothing is held, waiters fail at once with the last
 * failure rather than each forcing a connect. A failure that says
 * retrying cannot help (a `NodewireError` with `retryable: false`:
 * rejected credentials, no common protocol, a refused certificate)
 * blocks opening for the whole backoff, even for callers that asked to
 * `ignoreBackoff`; after it, the next caller gets one attempt, and
 * background refilling waits for an open to succeed. A factory call that
 * has not settled after `createTimeoutMs` is given up (see `expire`).
 */
export class Opener<C extends PoolableConnection> {
  readonly #ctx: PoolContext;
  readonly #config: Readonly<PoolConfig>;
  readonly #clock: Clock;
  readonly #roster: Roster<C>;
  readonly #waiters: Waiters<C>;
  /** The waiters' queue, read on every pump. */
  readonly #queue: WaitQueue<C>;
  readonly #keeper: Housekeeper<C>;
  readonly #factory: ConnectionFactory<C>;
  readonly #random: () => number;
  readonly #createTimeoutMs: number;

  #opening = new Set<Opening>();
  /** Set by `close()`: nothing is opened or taken in any more. */
  #closed = false;
  // The background refill's own backoff: until when it waits, and after
  // how many young deaths (see #gone).
  #refillAt = -Infinity;
  #youngDeaths = 0;
  #consecutiveFailures = 0;
  /** The error of the last failed open, until an open succeeds. */
  #lastFailure: Error | undefined;
  /** An open succeeded since the last failure or abort: opens may fan out. */
  #proven = false;
  /** The last failure, when retrying cannot fix it: no open until `#nextOpenAt`. */
  #blocked: Error | undefined;
  /** Background opens wait until this time after failures. */
  #nextOpenAt = -Infinity;
  #totalCreated = 0;
  #totalFailed = 0;

  /** Creates an opener; nothing is opened until asked. */
  constructor(
    ctx: PoolContext,
    roster: Roster<C>,
    waiters: Waiters<C>,
    keeper: Housekeeper<C>,
    factory: ConnectionFactory<C>,
    random: () => number,
    createTimeoutMs: number,
  ) {
    this.#ctx = ctx;
    this.#config = ctx.config;
    this.#clock = ctx.clock;
    this.#roster = roster;
    this.#waiters = waiters;
    this.#queue = waiters.queue;
    this.#keeper = keeper;
    this.#factory = factory;
    this.#random = random;
    this.#createTimeoutMs = createTimeoutMs;
  }

  /** Connections being opened. */
  get connecting(): number {
    return this.#opening.size;
  }

  /** Connections the factory delivered over the pool's life. */
  get totalCreated(): number {
    return this.#totalCreated;
  }

  /** Factory failures over the pool's life. */
  get totalFailed(): number {
    return this.#totalFailed;
  }

  /** Factory failures since the last success. */
  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /**
   * Whether the last open failed in a way retrying cannot fix, with no
   * success since: one attempt per backoff period at most.
   */
  get blocked(): boolean {
    return this.#blocked !== undefined;
  }

  /**
   * Whether waiting could bring a fresh connection: one is being opened,
   * or the pool may grow and is not backing off.
   */
  wouldOpen(): boolean {
    return this.#opening.size > 0 ||
      (this.#roster.list.length < this.#config.maxConnections &&
        this.#clock.now() >= this.#nextOpenAt);
  }

  /**
   * Opens one more connection, at `now`, if none is being opened and the
   * pool may grow and is not backing off: every connection is at the
   * multiplexing threshold, so load spreads.
   */
  grow(now: number): void {
    if (
      this.#opening.size === 0 &&
      this.#roster.list.length < this.#config.maxConnections &&
      now >= this.#nextOpenAt
    ) this.#start(now);
  }

  /**
   * Opens what is missing: up to `minConnections` while `filling` (unless
   * blocked), and one per exclusive waiter plus one for all shared
   * waiters, counting those already being opened.
   */
  openAsNeeded(filling: boolean): void {
    if (this.#closed) return;
    const config = this.#config;
    const live = this.#roster.live;
    const queue = this.#queue;
    const connecting = this.#opening.size;
    // Blocked, only a caller's demand earns the attempt after the backoff:
    // refilling in the background would keep failing the same way.
    // Nor while connections die unused as soon as they open (see #gone).
    const forMin = filling && this.#blocked === undefined &&
        this.#clock.now() >= this.#refillAt
      ? config.minConnections - live - connecting
      : 0;
    const forWaiters = queue.exclusive + (queue.shared > 0 ? 1 : 0) -
      connecting;
    let count = Math.min(
      Math.max(forMin, forWaiters),
      config.maxConnecting - connecting,
      config.maxConnections - this.#roster.list.length - connecting,
    );
    if (count <= 0) return;
    // Not known to work: one open alone, and more only once it succeeded.
    if (!this.#proven) {
      if (connecting > 0) return;
      count = 1;
    }
    const now = this.#clock.now();
    if (now < this.#nextOpenAt) {
      // Backing off after failures. Callers with nothing at all to wait for
      // get one attempt now instead of sitting out the delay, but only
      // after a single failure (a blip, a restart): once the node has
      // failed repeatedly, an attempt per caller would be a reconnect
      // storm, so they get the last failure at once and the pool keeps to
      // its backoff. A failure retrying cannot fix gets no early attempt.
      const stranded = queue.size > 0 && live === 0 && connecting === 0;
      const attempt = stranded && this.#blocked === undefined &&
        (this.#consecutiveFailures <= 1 || this.#waiters.probes > 0);
      if (!attempt) {
        if (stranded && this.#lastFailure) {
          this.#waiters.failAll(this.#lastFailure, "connectionError");
        }
        this.#keeper.wakeAt(this.#nextOpenAt);
        return;
      }
      count = 1;
    }
    while (count-- > 0) this.#start(now);
  }

  /**
   * Aborts the opens in progress: their connections are no longer wanted
   * (the node turned unhealthy, or the pool closes). The next open goes
   * alone again.
   */
  abort(error: Error): void {
    this.#proven = false;
    for (const opening of this.#opening) opening.controller.abort(error);
  }

  /**
   * Aborts the opens in progress and opens nothing more: the pool is
   * closing. `drain` waits a little for them to settle.
   */
  close(error: Error): void {
    this.#closed = true;
    this.abort(error);
  }

  /**
   * Gives up on factory calls started `createTimeoutMs` ago or more: each
   * is aborted with a `ConnectTimeoutError` and stops counting against
   * `maxConnections`, so a call that never settles cannot wedge the pool.
   * One the pool had not aborted itself fails like a factory failure
   * (`connectionFailed`, backoff); what it delivers later is closed
   * (`#opened`). Returns the next deadline.
   */
  expire(now: number): number {
    let next = Infinity;
    for (const opening of this.#opening) {
      const end = opening.startedAt + this.#createTimeoutMs;
      if (now < end) {
        next = Math.min(next, end);
        continue;
      }
      this.#opening.delete(opening);
      const ours = opening.controller.signal.aborted;
      const error = new ConnectTimeoutError(
        endpointOf(this.#ctx.address),
        this.#createTimeoutMs,
      );
      opening.controller.abort(error);
      if (ours) this.#ctx.pumpSoon();
      else this.#report(error);
    }
    return next;
  }

  /**
   * Waits, bounded, for the opens `close` aborted and then for every close
   * in progress (see {@linkcode drainPool}).
   */
  drain(): Promise<void> {
    return drainPool(
      this.#opening,
      this.#roster,
      this.#clock,
      this.#createTimeoutMs,
      this.#ctx.address,
    );
  }

  #start(now: number): void {
    const controller = new AbortController();
    const opening: Opening = {
      controller,
      startedAt: now,
      settled: Promise.resolve(),
    };
    this.#opening.add(opening);
    this.#keeper.wakeAt(now + this.#createTimeoutMs);
    let promise: Promise<C>;
    try {
      // A factory that returns a connection rather than a promise of one
      // is taken at its word; anything else fails the open (#opened).
      promise = Promise.resolve(this.#factory(controller.signal));
    } catch (error) {
      promise = Promise.reject(error);
    }
    // The catch: taking the outcome in reads the clock (a custom one whose
    // now() throws), and a throw was an unhandled rejection, the waiters
    // never told. `settled` never rejects (drain awaits it).
    opening.settled = promise.then(
      (conn) => this.#takeIn(opening, conn),
      (error) => this.#failed(opening, error),
    ).catch((thrown) => {
      this.#opening.delete(opening);
      this.#waiters.failThrown(thrown);
    });
  }

  /**
   * `#opened`, for a connection whose parts may throw past the door's
   * checks (a custom one: a `closed` whose `then` throws, a getter that
   * throws when read again). Such a throw was an unhandled rejection, and
   * the callers waited out their timeout: it is a failed open instead,
   * the connection let go of and destroyed.
   */
  #takeIn(opening: Opening, conn: C): void {
    try {
      this.#opened(opening, conn);
    } catch (cause) {
      this.#failed(opening, dropUntakable(this.#roster, conn, cause));
    }
  }

  #opened(opening: Opening, conn: C): void {
    // Checked first: a throw here would be an unhandled rejection.
    const refused = refusal(conn, this.#roster.entries.has(conn));
    if (refused !== undefined) return this.#failed(opening, refused);
    if (this.#closed && !this.#opening.has(opening)) {
      // Forgotten by drain: poolClosed may have been dispatched.
      conn.closed.then(noop, noop);
      closeQuietly(conn);
      return;
    }
    const lifetime = this.#config.maxLifetimeMs;
    const random = lifetime > 0
      ? readRandom(this.#random, "ConnectionPool")
      : 0.5;
    if (typeof random !== "number") {
      destroyQuietly(conn, random);
      return this.#failed(opening, random);
    }
    this.#totalCreated++;
    const ctx = this.#ctx;
    if (ctx.target.hasListeners("connectionCreated")) {
      ctx.events.emit("connectionCreated", {
        address: ctx.address,
        connectionId: conn.id,
      });
    }
    // Still an open in progress while its listeners run: a clear() or
    // close() from one of them aborts it, and it is dropped below as stale
    // instead of joining the pool it was cleared from.
    this.#opening.delete(opening);
    // Delivered although no longer wanted: the factory ignored the abort.
    if (opening.controller.signal.aborted) {
      this.#roster.discard(conn, this.#closed ? "poolClosed" : "stale");
      ctx.pumpSoon();
      return;
    }
    if (!conn.isOpen) {
      // Dead on arrival (the node closed it as the handshake ended): a
      // failed open, backed off. Taken for a success, it was opened again
      // at once, and again, without end.
      this.#roster.discard(conn, "error");
      const address = endpointOf(ctx.address);
      // Not sent: the waiters it fails never had a request on it.
      return this.#report(
        new ConnectionLostError(address, "closed as it opened", {
          sent: false,
        }),
      );
    }
    this.#consecutiveFailures = 0;
    this.#lastFailure = undefined;
    this.#blocked = undefined;
    this.#proven = true;
    this.#nextOpenAt = -Infinity;
    const now = this.#clock.now();
    const expiresAt = lifetime > 0
      ? now + lifetime * (1 + (random * 2 - 1) * LIFETIME_JITTER)
      : Infinity;
    const entry = this.#roster.admit(conn, now, expiresAt);
    // asError: `closed` may settle with anything (a proxy that throws).
    const gone = (error: unknown) =>
      this.#gone(entry, now, error === undefined ? undefined : asError(error));
    entry.closed.then(gone, gone);
    if (ctx.target.hasListeners("connectionReady")) {
      ctx.events.emit("connectionReady", {
        address: ctx.address,
        connectionId: entry.id,
        durationMs: now - opening.startedAt,
      });
    }
    this.#keeper.wakeAt(expiresAt);
    this.#keeper.wakeAfterUse(now);
    ctx.checkReady();
    ctx.pump();
  }

  /**
   * The connection of `entry`, opened at `openedAt`, closed. Broken on its
   * own (an error: the pool's own closes are clean), unused, within
   * {@linkcode YOUNG_DEATH_MS}: the background refill waits, longer each
   * time (deaths at once count once), while a caller's demand still opens
   * at once. Refilled at once, a node that killed each connection a moment
   * after its handshake was reconnected to thousands of times a second,
   * `minConnections` at a time, and stayed healthy throughout.
   */
  #gone(entry: Entry<C>, openedAt: number, error: unknown): void {
    if (!(error instanceof Error) || entry.used || this.#closed) return;
    const now = this.#clock.now();
    if (now - openedAt >= YOUNG_DEATH_MS || now < this.#refillAt) return;
    // A death long after the last one starts the count over.
    if (now - this.#refillAt > 2 * BACKOFF_MAX_MS) this.#youngDeaths = 0;
    this.#refillAt = now + backoffAfter(++this.#youngDeaths);
    this.#keeper.wakeAt(this.#refillAt);
  }

  #failed(opening: Opening, reason: unknown): void {
    this.#opening.delete(opening);
    // An open we aborted (or gave up on) is no sign of the node's health.
    if (opening.controller.signal.aborted) {
      this.#ctx.pumpSoon();
      return;
    }
    this.#report(asError(reason));
  }

  /** Counts a failed open, backs off, and tells listeners and waiters. */
  #report(error: Error): void {
    this.#totalFailed++;
    const failures = ++this.#consecutiveFailures;
    this.#lastFailure = error;
    this.#proven = false;
    const blocked = error instanceof NodewireError && !error.retryable;
    this.#blocked = blocked ? error : undefined;
    const backoffMs = backoffAfter(failures);
    this.#nextOpenAt = this.#clock.now() + backoffMs;
    const ctx = this.#ctx;
    if (ctx.target.hasListeners("connectionFailed")) {
      ctx.events.emit("connectionFailed", {
        address: ctx.address,
        error,
        consecutiveFailures: failures,
        backoffMs,
        blocked,
      });
    }
    // Nothing held and nothing on the way: waiting out the timeout would
    // only delay the same answer.
    if (this.#roster.live === 0 && this.#opening.size === 0) {
      this.#waiters.failAll(error, "connectionError");
    }
    ctx.pump();
  }
}
