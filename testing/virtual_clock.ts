/**
 * A deterministic clock for tests: time moves only when the test says so.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../src/clock.ts";

interface VirtualTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * Lets pending promise callbacks and I/O callbacks run: a macrotask, so
 * socket reads that are ready get delivered too.
 */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A {@linkcode Clock} whose time advances only through
 * {@linkcode VirtualClock.advance}. Timers fire in deadline order (ties in
 * creation order), and the code under test gets to run between firings, so
 * a test can check a 5-second backoff in microseconds.
 *
 * @example
 * ```ts
 * import { VirtualClock } from "@nodewire/client/testing";
 * const clock = new VirtualClock();
 * let fired = false;
 * clock.setTimeout(() => (fired = true), 100);
 * await clock.advance(99);
 * console.log(fired); // false
 * await clock.advance(1);
 * console.log(fired); // true
 * ```
 */
export class VirtualClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers: VirtualTimer[] = [];

  /** Starts the clock at `start` milliseconds. */
  constructor(start = 0) {
    this.#now = start;
  }

  /** The current virtual time. */
  now(): number {
    return this.#now;
  }

  /** Schedules `fn` at `now() + ms` virtual milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = {
      id: this.#nextId++,
      at: this.#now + Math.max(0, ms),
      fn,
    };
    this.#timers.push(timer);
    return timer.id;
  }

  /** Cancels a pending timer. */
  clearTimeout(handle: TimerHandle): void {
    const index = this.#timers.findIndex((t) => t.id === handle);
    if (index >= 0) this.#timers.splice(index, 1);
  }

  /** How many timers are pending. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** The time of the earliest pending timer, or `undefined`. */
  nextTimerAt(): number | undefined {
    let earliest: number | undefined;
    for (const t of this.#timers) {
      if (earliest === undefined || t.at < earliest) earliest = t.at;
    }
    return earliest;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the
   * way, in order, and letting the code under test run after each one.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      // Every timer due at the same instant fires in one batch, in creation
      // order, before the code under test runs again.
      const batch = this.#takeDue(target);
      if (batch.length === 0) break;
      this.#now = batch[0].at;
      for (const timer of batch) timer.fn();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** Advances to the next timer and fires it; false when there is none. */
  async runNext(): Promise<boolean> {
    const at = this.nextTimerAt();
    if (at === undefined) return false;
    await this.advance(at - this.#now);
    return true;
  }

  #takeDue(target: number): VirtualTimer[] {
    let at = Infinity;
    for (const t of this.#timers) if (t.at <= target && t.at < at) at = t.at;
    if (at === Infinity) return [];
    const due: VirtualTimer[] = [];
    const rest: VirtualTimer[] = [];
    // Timers are kept in creation order, so `due` is too.
    for (const t of this.#timers) (t.at === at ? due : rest).push(t);
    this.#timers = rest;
    return due;
  }
}
