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

/** Lets pending promise callbacks and I/O callbacks run. */
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
      const next = this.#takeDue(target);
      if (next === undefined) break;
      this.#now = next.at;
      next.fn();
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

  #takeDue(target: number): VirtualTimer | undefined {
    let best = -1;
    for (let i = 0; i < this.#timers.length; i++) {
      const t = this.#timers[i];
      if (t.at > target) continue;
      if (
        best < 0 || t.at < this.#timers[best].at ||
        (t.at === this.#timers[best].at && t.id < this.#timers[best].id)
      ) best = i;
    }
    if (best < 0) return undefined;
    return this.#timers.splice(best, 1)[0];
  }
}
