/**
 * A clock reading shared by everything that happens in one tick.
 *
 * @module
 */

import type { Clock } from "./clock.ts";

/**
 * Reads `clock` at most once per microtask turn: a burst of requests made
 * in one tick shares one reading. `performance.now()` costs ~100 ns in Deno,
 * as much as the rest of a pipelined request's bookkeeping, and nothing on
 * the hot path needs more precision than "this tick".
 */
export class TickClock {
  readonly #clock: Clock;
  #now = 0;
  #valid = false;

  /** Wraps `clock`. */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The clock's time as first read in this tick. */
  now(): number {
    if (!this.#valid) {
      this.#now = this.#clock.now();
      this.#valid = true;
      queueMicrotask(this.#invalidate);
    }
    return this.#now;
  }

  #invalidate = (): void => {
    this.#valid = false;
  };
}
