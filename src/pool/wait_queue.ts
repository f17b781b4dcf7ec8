/**
 * The FIFO queue of callers waiting for a pooled connection.
 *
 * @module
 */

/**
 * One caller waiting for a connection. The pool settles it exactly once:
 * served, timed out, aborted, or failed because the pool was cleared,
 * closed or its node refused.
 */
export interface Waiter<C> {
  /** Lent exclusively (`getConnection`) rather than shared (`acquireShared`). */
  readonly exclusive: boolean;
  /** When it started waiting, on the pool's clock. */
  readonly startedAt: number;
  /** Hands it the connection. */
  readonly resolve: (conn: C) => void;
  /** Fails it. */
  readonly reject: (error: Error) => void;
  /**
   * When it gives up, on the pool's clock. Expired by the pool's one
   * maintenance timer, not a timer of its own.
   */
  readonly deadline: number;
  /** The acquire timeout it was given, for the error message. */
  readonly timeoutMs: number;
  /** Whether `timeoutMs` is the caller's own rather than `connectionTimeoutMs`. */
  readonly ownTimeout: boolean;
  /** The caller's signal, if any. */
  signal: AbortSignal | undefined;
  /** The listener registered on `signal`, removed once the waiter settles. */
  onAbort: (() => void) | undefined;
  /** Settled already; left in the array until the head passes it. */
  done: boolean;
}

/**
 * A FIFO of waiters with O(1) push, amortized O(1) removal from anywhere
 * (a timed-out or aborted waiter is only flagged, skipped when the head
 * reaches it, and dropped with the others once the settled are half the
 * array), and counts per kind so the pool can tell at once whether a
 * caller must queue behind someone.
 */
export class WaitQueue<C> {
  #items: Waiter<C>[] = [];
  #head = 0;
  /** Settled waiters still in `#items`, before the head or behind it. */
  #settled = 0;
  #exclusive = 0;
  #shared = 0;
  // Removal during a scan must not move items under the scanning loop.
  #scanning = 0;
  #lastDeadline = -Infinity;
  #sorted = true;

  /** Waiters not yet settled. */
  get size(): number {
    return this.#exclusive + this.#shared;
  }

  /** Unsettled waiters asking for exclusive use. */
  get exclusive(): number {
    return this.#exclusive;
  }

  /** Unsettled waiters asking for shared use. */
  get shared(): number {
    return this.#shared;
  }

  /** Whether the waiters' deadlines never decrease from oldest to newest. */
  get sorted(): boolean {
    return this.#sorted;
  }

  /** The oldest unsettled waiter, if any. */
  peek(): Waiter<C> | undefined {
    const items = this.#items;
    for (let i = this.#head; i < items.length; i++) {
      if (!items[i].done) return items[i];
    }
    return undefined;
  }

  /** Appends a waiter at the tail. */
  push(waiter: Waiter<C>): void {
    if (waiter.deadline < this.#lastDeadline) this.#sorted = false;
    else this.#lastDeadline = waiter.deadline;
    this.#items.push(waiter);
    if (waiter.exclusive) this.#exclusive++;
    else this.#shared++;
  }

  /**
   * Marks a waiter settled and forgets it; false when it was settled
   * already, so that a timeout racing a grant cannot settle it twice.
   */
  remove(waiter: Waiter<C>): boolean {
    if (waiter.done) return false;
    waiter.done = true;
    this.#settled++;
    if (waiter.exclusive) this.#exclusive--;
    else this.#shared--;
    if (this.#scanning === 0) this.#compact();
    return true;
  }

  /**
   * Visits the unsettled waiters oldest first until `visit` returns false.
   * Waiters pushed during the scan are visited too, unless `presentOnly`;
   * waiters settled during it are skipped.
   */
  scan(visit: (waiter: Waiter<C>) => boolean, presentOnly = false): void {
    this.#scanning++;
    try {
      const items = this.#items;
      // The array is neither trimmed nor replaced while a scan runs.
      const end = presentOnly ? items.length : Infinity;
      for (let i = this.#head; i < items.length && i < end; i++) {
        if (!items[i].done && !visit(items[i])) break;
      }
    } finally {
      if (--this.#scanning === 0) this.#compact();
    }
  }

  /** The unsettled waiters, oldest first, as a copy that settling does not disturb. */
  snapshot(): Waiter<C>[] {
    const out: Waiter<C>[] = [];
    this.scan((waiter) => {
      out.push(waiter);
      return true;
    });
    return out;
  }

  #compact(): void {
    if (this.size === 0) {
      this.#items.length = 0;
      this.#head = 0;
      this.#settled = 0;
      this.#lastDeadline = -Infinity;
      this.#sorted = true;
      return;
    }
    const items = this.#items;
    while (items[this.#head].done) this.#head++;
    // Drop the settled now and then, not on every removal: those behind
    // the head too, or callers timing out behind one long wait piled up
    // without bound, and every scan walked them.
    if (this.#settled > 64 && this.#settled * 2 > items.length) {
      this.#items = items.filter((waiter) => !waiter.done);
      this.#head = 0;
      this.#settled = 0;
    }
  }
}
