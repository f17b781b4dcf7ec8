/**
 * Keeping a connection just handed to a shared caller from being lent
 * before that caller has sent on it.
 *
 * @module
 */

import type { PoolContext } from "./context.ts";
import type { Entry } from "./entry.ts";

/**
 * The connections handed to shared callers (`acquireShared()`) whose turn
 * to send has not come yet. Such a caller sends when its promise's
 * continuation runs, some microtasks after the pool chose the connection;
 * lent in between (to an exclusive waiter further down the same queue, or
 * to one waiting as a connection comes back), the connection would carry
 * that new shared request while lent. So a connection stays `promised`,
 * and is not lent, until the event loop's next task, after every
 * microtask queued before it; then the pool is pumped, and the exclusive
 * waiters it skipped are served by the usual rules.
 *
 * The turn is the event loop's, not the pool's clock: it is no duration,
 * and a virtual clock would otherwise keep it from ending until the test
 * moved time (a `withConnection()` right after `Client.connect()`, whose
 * wait for the first connection is such a hand-out, would hang). The
 * timer is not unreferenced: it fires at once, and a caller waiting for it
 * must not see the process exit under it. `close()` clears it.
 *
 * One timer for all of them, armed only by a hand-out to a shared caller
 * that had to go through a promise, or one a `checkedOut` listener hears
 * of (it may call `getConnection()` before the caller has the
 * connection); `tryAcquireShared()` with nobody listening never marks, so
 * the request path pays nothing.
 */
export class SharedTurns<C> {
  readonly #ctx: PoolContext;
  /** The entries marked `promised`, to unmark when the turn is over. */
  #marked: Entry<C>[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Set when the pool closes: nothing is lent any more, nothing is armed. */
  #stopped = false;

  /** Creates the turns of one pool. */
  constructor(ctx: PoolContext) {
    this.#ctx = ctx;
  }

  /**
   * Marks `entry` as handed to a shared caller that has not sent yet: not
   * lent before the turn ends.
   */
  mark(entry: Entry<C>): void {
    if (entry.promised || this.#stopped) return;
    entry.promised = true;
    this.#marked.push(entry);
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#end(), 0);
    }
  }

  /** Drops the timer and every mark: the pool is closing. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unmark();
  }

  /**
   * The shared callers have had their turn: their connections may be
   * lent again, to the waiters skipped for them. Marks made by this pump
   * (new shared hand-outs) arm the next turn; each is a caller served, so
   * turns follow one another only while there are callers to serve.
   */
  #end(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    this.#unmark();
    // A timer: a throw here (a clock whose now() throws) would be uncaught.
    try {
      this.#ctx.pump();
    } catch (thrown) {
      this.#ctx.failWaiters(thrown);
    }
  }

  #unmark(): void {
    const marked = this.#marked;
    this.#marked = [];
    for (const entry of marked) entry.promised = false;
  }
}
