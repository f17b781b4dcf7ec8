/**
 * Callers waiting for a pooled connection: how they join the queue, how
 * they are served in order, and how they fail (timed out, aborted, pool
 * cleared or closed, node refused).
 *
 * @module
 */

import { AbortedError, PoolClosedError, PoolTimeoutError } from "../errors.ts";
import { asError, fieldOf } from "../errors/base.ts";
import { blameClock, setTimer } from "../config/clock_failure.ts";
import type { TypedEventTarget } from "../events.ts";
import type { TickClock } from "../tick_clock.ts";
import type { PoolContext } from "./context.ts";
import type {
  CheckoutFailedReason,
  CheckoutMode,
  PoolEventMap,
} from "./events.ts";
import type { Housekeeper } from "./housekeeping.ts";
import type { Entry } from "./entry.ts";
import type { Roster } from "./roster.ts";
import { SharedTurns } from "./shared_turn.ts";
import type { AcquireOptions, PoolableConnection } from "./types.ts";
import { type Waiter, WaitQueue } from "./wait_queue.ts";

/**
 * The deepest refusals' `checkoutFailed` dispatch nested (a listener's
 * call refused inside another's): far above what a listener that asks
 * again once or twice needs, far below what the stack holds.
 */
const MAX_NESTED_REFUSALS = 16;

/**
 * The waiters of one pool: their FIFO queue, the ones that asked to
 * `ignoreBackoff`, handing them connections, and every way a waiter
 * fails. Each waiter is settled exactly once; its abort listener is
 * dropped when it is.
 */
export class Waiters<C extends PoolableConnection> {
  /** The callers waiting, oldest first. */
  readonly queue: WaitQueue<C> = new WaitQueue<C>();
  /** Connections handed to shared callers that have not sent yet. */
  readonly turns: SharedTurns<C>;

  readonly #ctx: PoolContext;
  /** Read on every wait and grant, so held here rather than through `#ctx`. */
  readonly #tick: TickClock;
  /** `connectionTimeoutMs`: how long a caller waits unless it says otherwise. */
  readonly #timeoutMs: number;
  readonly #target: TypedEventTarget<PoolEventMap>;
  readonly #roster: Roster<C>;
  readonly #keeper: Housekeeper<C>;
  /** Waiters that asked to `ignoreBackoff`. */
  #probes = new Set<Waiter<C>>();

  /** Creates an empty set of waiters. */
  constructor(ctx: PoolContext, roster: Roster<C>, keeper: Housekeeper<C>) {
    this.#ctx = ctx;
    this.#tick = ctx.tick;
    this.#timeoutMs = ctx.config.connectionTimeoutMs;
    this.#target = ctx.target;
    this.#roster = roster;
    this.#keeper = keeper;
    this.turns = new SharedTurns<C>(ctx);
  }

  /** How many waiters asked to `ignoreBackoff`. */
  get probes(): number {
    return this.#probes.size;
  }

  /**
   * Queues a caller until the pool serves it, its timeout passes or its
   * signal aborts. No timer per waiter: the maintenance timer expires them
   * all. `options` are checked already (arguments.ts).
   */
  wait(exclusive: boolean, options: AcquireOptions): Promise<C> {
    const own = options.timeoutMs !== undefined;
    const timeoutMs = own ? options.timeoutMs! : this.#timeoutMs;
    return new Promise<C>((resolve, reject) => {
      const startedAt = this.#tick.now();
      const waiter: Waiter<C> = {
        exclusive,
        startedAt,
        deadline: startedAt + timeoutMs,
        timeoutMs,
        ownTimeout: own,
        resolve,
        reject,
        signal: options.signal,
        onAbort: undefined,
        done: false,
      };
      const signal = options.signal;
      if (signal !== undefined) {
        waiter.onAbort = () =>
          this.fail(waiter, this.#aborted(exclusive, signal), "aborted");
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      if (options.ignoreBackoff) this.#probes.add(waiter);
      // Queued first: the timer then keeps the process alive for it.
      const unarmed = this.#keeper.wakeFor(waiter.deadline);
      if (unarmed !== undefined) {
        // A custom clock whose setTimeout() throws cannot time the wait:
        // refused as it comes, with the ConfigError naming the clock.
        this.settle(waiter);
        reject(this.refused(exclusive, unarmed, "connectionError"));
        return;
      }
      // Serving drops a connection whose inFlight is no count, never
      // chosen: a caller could wait out its timeout for it.
      this.#ctx.pump();
    });
  }

  /**
   * Serves waiters oldest first. Exclusive waiters are served strictly in
   * order; a shared waiter is served whenever any usable connection exists,
   * even behind a blocked exclusive waiter, because sharing takes nothing
   * away from it. A connection handed to a shared waiter is not lent until
   * that waiter has had its turn to send (see {@linkcode SharedTurns}).
   */
  serve(): void {
    const queue = this.queue;
    if (queue.size === 0) return;
    const roster = this.#roster;
    // A connection whose getter throws (or whose inFlight is no count)
    // would be met by the picks below: the throw escaped from the pump,
    // out of a timer or an open, and the waiters were never served.
    roster.dropUnusable();
    const now = this.#tick.now();
    // Nothing usable, nobody served: return before visiting anyone, or
    // each of n callers queueing behind costs a walk of the queue (n²).
    if (roster.leastLoaded(now) === undefined) return;
    let exclusiveBlocked = false;
    let sharedBlocked = false;
    queue.scan((waiter) => {
      if (waiter.exclusive) {
        if (!exclusiveBlocked) {
          const entry = roster.pickExclusive(now);
          if (entry === undefined) exclusiveBlocked = true;
          else this.grant(waiter, entry);
        }
      } else if (!sharedBlocked) {
        const entry = roster.pickShared(now);
        if (entry === undefined) sharedBlocked = true;
        else this.grant(waiter, entry);
      }
      // A shared waiter finds nothing only when nothing is usable at all.
      return !(sharedBlocked || (exclusiveBlocked && queue.shared === 0));
    });
  }

  /**
   * Hands a waiter a connection: lent when it asked for one to itself.
   * Nothing, when the waiter was settled meanwhile: the pick that chose
   * `entry` may have dropped a dead connection, and a `connectionClosed`
   * listener aborted this waiter; lent to nobody, `entry` was in use for
   * ever.
   */
  grant(waiter: Waiter<C>, entry: Entry<C>): void {
    if (!this.settle(waiter)) return;
    entry.used = true;
    if (waiter.exclusive) entry.lent = true;
    else {
      entry.lastUsedAt = this.#ctx.clock.now();
      // Its caller sends once its continuation runs: an exclusive waiter
      // further down this same pass must not be lent it before that.
      this.turns.mark(entry);
    }
    this.checkedOut(entry, waiter.exclusive ? "exclusive" : "shared", waiter);
    waiter.resolve(entry.conn);
  }

  /** Dispatches `checkedOut` when anyone listens; `waiter` when it waited. */
  checkedOut(
    entry: Entry<C>,
    mode: CheckoutMode,
    waiter: Waiter<C> | undefined,
  ): void {
    if (!this.#target.hasListeners("checkedOut")) return;
    const ctx = this.#ctx;
    ctx.events.emit("checkedOut", {
      address: ctx.address,
      mode,
      connectionId: entry.id,
      durationMs: waiter === undefined ? 0 : ctx.clock.now() - waiter.startedAt,
    });
  }

  /**
   * Fails a checkout at once, before it waited: the pool is closed
   * (`closed`), or else the caller's signal has aborted already.
   */
  refuse(
    closed: boolean,
    exclusive: boolean,
    signal?: AbortSignal,
  ): Promise<C> {
    return closed
      ? this.rejectNow(
        exclusive,
        new PoolClosedError(this.#ctx.address, "closed"),
        "poolClosed",
      )
      : this.rejectNow(exclusive, this.#aborted(exclusive, signal!), "aborted");
  }

  /**
   * Fails a checkout at once, before it waited: see
   * {@linkcode Waiters.refused} for what it fails with.
   */
  rejectNow(
    exclusive: boolean,
    error: Error,
    reason: CheckoutFailedReason,
  ): Promise<C> {
    return Promise.reject(this.refused(exclusive, error, reason));
  }

  /**
   * Tells `checkoutFailed` for a checkout failed at once, before it
   * waited, with `error`; gives back what it fails with. The event is
   * dispatched at once, unless refusals are nested that deep already (a
   * listener that asks again as each one fails, of a closed pool, with an
   * aborted signal or on a clock whose setTimeout() throws, recursed until
   * the stack overflowed): then on the pool's clock, so that such a
   * listener loops, yielding, instead. A custom clock whose setTimeout()
   * throws there: the event can be told neither later nor now (that
   * nesting is what deferring ends), and the checkout fails with the
   * ConfigError naming the clock. Let out, the clock's raw Error was
   * thrown out of getConnection() (no promise) into the listener's
   * dispatch.
   */
  refused(
    exclusive: boolean,
    error: Error,
    reason: CheckoutFailedReason,
  ): Error {
    const ctx = this.#ctx;
    if (!ctx.target.hasListeners("checkoutFailed")) return error;
    const detail = {
      address: ctx.address,
      mode: exclusive ? "exclusive" as const : "shared" as const,
      reason,
      error,
      durationMs: 0,
    };
    if (this.#refusing < MAX_NESTED_REFUSALS) {
      this.#refusing++;
      try {
        ctx.events.emit("checkoutFailed", detail);
      } finally {
        this.#refusing--;
      }
      return error;
    }
    try {
      setTimer(ctx.clock, () => ctx.events.emit("checkoutFailed", detail), 0);
    } catch (failed) {
      return failed as Error;
    }
    return error;
  }

  /** How many refusals' `checkoutFailed` are being dispatched, nested. */
  #refusing = 0;

  /** The error for a checkout whose signal aborted. */
  #aborted(exclusive: boolean, signal: AbortSignal): AbortedError {
    const what = exclusive ? "getConnection()" : "acquireShared()";
    return new AbortedError(
      `${what} for ${this.#ctx.address} aborted`,
      // Read in the abort listener: a getter that throws there would be
      // reported as uncaught and leave the waiter waiting.
      fieldOf(signal, "reason"),
    );
  }

  /** Takes a waiter off the queue and drops its abort listener. */
  settle(waiter: Waiter<C>): boolean {
    if (!this.queue.remove(waiter)) return false;
    // The last one: the timer no longer keeps the process alive for them.
    if (this.queue.size === 0) this.#keeper.hold();
    this.#probes.delete(waiter);
    if (waiter.onAbort !== undefined) {
      waiter.signal!.removeEventListener("abort", waiter.onAbort);
      waiter.onAbort = undefined;
    }
    return true;
  }

  /** Settles a waiter with `error`, unless it is settled already. */
  fail(waiter: Waiter<C>, error: Error, reason: CheckoutFailedReason): void {
    if (!this.settle(waiter)) return;
    const ctx = this.#ctx;
    // finally: an event that cannot be built (a clock whose now() throws)
    // must not leave the caller waiting for good.
    try {
      if (ctx.target.hasListeners("checkoutFailed")) {
        ctx.events.emit("checkoutFailed", {
          address: ctx.address,
          mode: waiter.exclusive ? "exclusive" : "shared",
          reason,
          error,
          durationMs: ctx.clock.now() - waiter.startedAt,
        });
      }
    } finally {
      waiter.reject(error);
    }
  }

  /** Fails every waiter, oldest first. */
  failAll(error: Error, reason: CheckoutFailedReason): void {
    for (const waiter of this.queue.snapshot()) {
      this.fail(waiter, error, reason);
    }
  }

  /**
   * Fails every waiter with what `thrown` blames (a `ConfigError` naming
   * the clock when its `now()` throws, see {@linkcode blameClock}): for a
   * timer or a promise handler of the pool's own that threw, where the
   * throw would have escaped as uncaught and the waiters waited out their
   * timeout, or for good with nobody to time them out. Each waiter is
   * settled before its `checkoutFailed` event is built (which reads the
   * clock too), so every round fails one at least: bounded by the queue.
   */
  failThrown(thrown: unknown): void {
    const error = asError(blameClock(this.#ctx.clock, thrown));
    for (let left = this.queue.size; left > 0 && this.queue.size > 0; left--) {
      try {
        this.failAll(error, "connectionError");
        return;
      } catch {
        // Its event could not be built: the waiter is failed all the same.
      }
    }
  }

  /** Fails waiters past their deadline; returns the next deadline. */
  expire(now: number): number {
    let next = Infinity;
    // In deadline order (the usual case: one timeout for all), the first
    // waiter not due ends the walk, so a firing costs what it expires.
    const sorted = this.queue.sorted;
    // Only those waiting already: a checkoutFailed listener that asks
    // again with timeoutMs 0 as each one times out queued a caller due at
    // once, visited and timed out in this same walk, for good. One queued
    // now armed the timer for its own deadline.
    this.queue.scan((waiter) => {
      if (now >= waiter.deadline) this.#timeOut(waiter);
      else if (waiter.deadline < next) next = waiter.deadline;
      return !sorted || next === Infinity;
    }, true);
    return next;
  }

  #timeOut(waiter: Waiter<C>): void {
    if (waiter.done) return;
    const list = this.#roster.list;
    let inUse = 0;
    for (const entry of list) if (entry.lent) inUse++;
    const error = new PoolTimeoutError(
      this.#ctx.address,
      waiter.timeoutMs,
      { open: list.length, inUse, waiting: this.queue.size },
      waiter.ownTimeout ? "timeoutMs" : "connectionTimeoutMs",
    );
    this.fail(waiter, error, "timeout");
  }
}
