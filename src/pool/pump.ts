/**
 * A pool's pump: serves the waiters, then opens what is missing, going
 * round again while its own work asked for more, a bounded number of
 * times; or once after the current operation, however often it is asked;
 * and `poolReady`, said once the filling first reaches `minConnections`.
 * Safe to call from anywhere, a listener's call included. Not on the
 * request path: `tryAcquireShared()` never pumps.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { PoolParts } from "./assembly.ts";
import type { Housekeeper } from "./housekeeping.ts";
import type { PoolContext } from "./context.ts";
import type { Opener } from "./opening.ts";
import type { Roster } from "./roster.ts";
import type { PoolableConnection } from "./types.ts";
import type { Waiters } from "./waiters.ts";
import type { WaitQueue } from "./wait_queue.ts";

/**
 * The most times one pump goes round because its own work (a listener's
 * call) asked for another: far above what serving and opening need.
 */
const MAX_PUMP_ROUNDS = 64;

/** Serves a pool's waiters, then opens what is missing. */
export class Pump<C extends PoolableConnection> {
  readonly #clock: Clock;
  readonly #queue: WaitQueue<C>;
  readonly #waiters: Waiters<C>;
  readonly #opener: Opener<C>;
  readonly #keeper: Housekeeper<C>;
  readonly #roster: Roster<C>;
  readonly #ctx: PoolContext;
  /** Whether the pool keeps `minConnections` open (its own flag). */
  readonly #filling: () => boolean;
  /** `poolReady` was said (once per pool). */
  #ready = false;
  #pumping = false;
  #pumpAgain = false;
  #pumpQueued = false;

  /** A pump over `parts`, opening up to `minConnections` while `filling()`. */
  constructor(parts: PoolParts<C>, filling: () => boolean) {
    this.#clock = parts.clock;
    this.#queue = parts.waiters.queue;
    this.#waiters = parts.waiters;
    this.#opener = parts.opener;
    this.#keeper = parts.keeper;
    this.#roster = parts.roster;
    this.#ctx = parts.ctx;
    this.#filling = filling;
  }

  /** Whether a pump is going round now (serving from inside one defers). */
  get pumping(): boolean {
    return this.#pumping;
  }

  /** Serves waiters, then opens what is missing; safe to call from anywhere. */
  pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    let rounds = 0;
    try {
      do {
        this.#pumpAgain = false;
        if (this.#queue.size !== 0) this.#waiters.serve();
        this.#opener.openAsNeeded(this.#filling());
        // A listener that queues a caller as each one fails (checkoutFailed
        // asking again at once, while the pool backs off) kept this loop
        // going for good, never yielding: the rest waits for the
        // maintenance timer, due at once.
        if (this.#pumpAgain && ++rounds === MAX_PUMP_ROUNDS) {
          this.#keeper.wakeAt(this.#clock.now());
          break;
        }
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Pumps from a timer or a microtask of the pool's own: a throw (a custom
   * clock whose `now()` throws) fails the waiters instead of escaping as
   * uncaught. Not for the callers' paths: their throw reaches them.
   */
  pumpOrFail(): void {
    try {
      this.pump();
    } catch (thrown) {
      this.#waiters.failThrown(thrown);
    }
  }

  /** Pumps after the current operation, once however often it is asked. */
  pumpSoon(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.pumpOrFail();
    });
  }

  /**
   * Dispatches `poolReady` once `minConnections` are open for the first
   * time while the pool fills; after that, does nothing.
   */
  checkReady(): void {
    const live = this.#roster.live;
    if (
      this.#ready || !this.#filling() || live < this.#ctx.config.minConnections
    ) {
      return;
    }
    this.#ready = true;
    if (this.#ctx.target.hasListeners("poolReady")) {
      this.#ctx.events.emit("poolReady", {
        address: this.#ctx.address,
        open: live,
      });
    }
  }
}
