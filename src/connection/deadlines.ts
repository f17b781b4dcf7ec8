/**
 * Deadlines for many pending operations with one timer.
 *
 * Arming a timer per request costs more than the request itself (about
 * 1.5 µs per setTimeout/clearTimeout pair in Deno), so pending entries are
 * kept in one FIFO list per distinct timeout value. Within a list, deadlines
 * are in insertion order, so the earliest is always the head: adding and
 * removing are O(1), and the single timer only ever needs the heads. In the
 * steady state the timer fires about once per timeout period, whatever the
 * request rate.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../clock.ts";
import { TickClock } from "../tick_clock.ts";

/**
 * An entry with a deadline, linked into its list. Callers extend it with
 * their own fields, so each pending operation is one small record.
 */
export interface DeadlineEntry {
  /** Absolute time, on the tracker's clock, when the entry expires. */
  deadline: number;
  /** @internal */
  prev: DeadlineEntry | undefined;
  /** @internal */
  next: DeadlineEntry | undefined;
  /** @internal The list holding this entry, or undefined when not tracked. */
  list: DeadlineList | undefined;
}

/** @internal */
interface DeadlineList {
  timeoutMs: number;
  head: DeadlineEntry | undefined;
  tail: DeadlineEntry | undefined;
}

/**
 * Tracks deadlines of entries and calls `onExpire` for each one whose
 * deadline passes, using a single timer on `clock`.
 */
export class DeadlineTracker<E extends DeadlineEntry> {
  readonly #clock: Clock;
  readonly #onExpire: (entry: E, timeoutMs: number) => void;
  readonly #lists = new Map<number, DeadlineList>();
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  // Read once per tick, not per entry: a burst of requests shares it.
  readonly #tick: TickClock;

  /**
   * Creates a tracker that reports expired entries, with the timeout they
   * were added with, to `onExpire`.
   */
  constructor(clock: Clock, onExpire: (entry: E, timeoutMs: number) => void) {
    this.#clock = clock;
    this.#tick = new TickClock(clock);
    this.#onExpire = onExpire;
  }

  /** Starts tracking `entry`, due `timeoutMs` from now. */
  add(entry: E, timeoutMs: number): void {
    let list = this.#lists.get(timeoutMs);
    if (list === undefined) {
      list = { timeoutMs, head: undefined, tail: undefined };
      this.#lists.set(timeoutMs, list);
    }
    entry.deadline = this.#tick.now() + timeoutMs;
    entry.list = list;
    entry.next = undefined;
    entry.prev = list.tail;
    if (list.tail) list.tail.next = entry;
    else list.head = entry;
    list.tail = entry;
    if (entry.deadline < this.#timerAt) this.#arm(entry.deadline);
  }

  /** Stops tracking `entry`; a no-op when it is not tracked. */
  remove(entry: E): void {
    const list = entry.list;
    if (list === undefined) return;
    if (entry.prev) entry.prev.next = entry.next;
    else list.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else list.tail = entry.prev;
    entry.prev = entry.next = entry.list = undefined;
    // The timer is left armed: it fires at most once more and re-arms for
    // the new heads, which is cheaper than clearing it on every removal.
  }

  /** Cancels the timer. Entries stay linked but never expire. */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Whether the single timer is armed (for tests and leak checks). */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    const delay = Math.max(0, at - this.#clock.now());
    this.#timer = this.#clock.setTimeout(this.#fire, delay);
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    let next = Infinity;
    for (const [timeoutMs, list] of this.#lists) {
      let head = list.head;
      while (head !== undefined && head.deadline <= now) {
        this.remove(head as E);
        this.#onExpire(head as E, timeoutMs);
        head = list.head;
      }
      if (head === undefined) this.#lists.delete(timeoutMs);
      else if (head.deadline < next) next = head.deadline;
    }
    // onExpire may have added entries and armed the timer already.
    if (next < this.#timerAt) this.#arm(next);
  };
}
