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
  readonly #failed: (thrown: unknown) => unknown;
  #now = 0;
  #valid = false;

  /**
   * Reads `clock`; what its `now()` throws is thrown on as `failed`
   * makes it (the ConfigError naming the clock, see clockFailed).
   */
  constructor(clock: Clock, failed: (thrown: unknown) => unknown) {
    this.#clock = clock;
    this.#failed = failed;
  }

  /**
   * The clock's time as first read in this tick. The read is apart from
   * this: kept to a few bytes of bytecode, the common answer is inlined
   * into every caller on the request path, where a call of its own (the
   * read's try and queueMicrotask made it too large to inline once a
   * caller's budget ran out) cost a call per request.
   */
  now(): number {
    // Not `valid ? now : read()`: a reading returned from a call would
    // make the inlined answer a boxed number, one allocation per request.
    if (!this.#valid) this.#read();
    return this.#now;
  }

  #read(): void {
    // Named here, where it threw: a clock that throws once and then
    // reads again was not found guilty when the request's catch asked
    // it a second time (blameClock), and the request failed with its
    // raw Error. Once per tick, and free until it catches.
    try {
      this.#now = this.#clock.now();
    } catch (thrown) {
      throw this.#failed(thrown);
    }
    this.#valid = true;
    queueMicrotask(this.#invalidate);
  }

  #invalidate = (): void => {
    this.#valid = false;
  };
}
