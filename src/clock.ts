/**
 * Time as the SDK sees it. Every timeout, backoff delay and background
 * interval goes through a {@linkcode Clock}, so tests can swap in a virtual
 * clock and check timing without sleeping.
 *
 * @module
 */

import { refTimer, unrefTimer } from "./runtime/timers.ts";

/**
 * An opaque handle returned by {@linkcode Clock.setTimeout}.
 *
 * @example
 * ```ts
 * import { systemClock, type TimerHandle } from "@nodewire/client/core";
 * const handle: TimerHandle = systemClock.setTimeout(() => console.log("late"), 1000);
 * systemClock.clearTimeout(handle); // only ever handed back to the clock that made it
 * ```
 */
export type TimerHandle = unknown;

/**
 * The source of time and timers.
 *
 * @example A clock that delegates to the real one
 * ```ts
 * import { type Clock, systemClock } from "@nodewire/client/core";
 * const clock: Clock = systemClock;
 * const handle = clock.setTimeout(() => console.log("tick"), 10);
 * clock.clearTimeout(handle);
 * ```
 */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are meaningful. */
  now(): number;
  /**
   * Calls `fn` once after `ms` milliseconds. Timers never keep the process
   * alive on their own.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; unknown or spent handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock: `performance.now()` and unreferenced global timers.
 *
 * @example
 * ```ts
 * import { systemClock } from "@nodewire/client/core";
 * const start = systemClock.now();
 * console.log(systemClock.now() - start >= 0); // true
 * ```
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = setTimeout(fn, ms);
    unrefTimer(handle);
    return handle;
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as number);
  },
};

/**
 * Makes a timer of `clock` keep the process alive while it is pending
 * (`hold`), or no longer. On the system clock only: a custom clock's
 * timers are its own. For a timer that bounds what a caller awaits when
 * nothing else may be left to keep the process alive (a pool's waiters,
 * a disconnect's grace period): Node ended the program inside the await,
 * with the promise never settled.
 */
export function holdTimer(
  clock: Clock,
  handle: TimerHandle,
  hold: boolean,
): void {
  if (clock !== systemClock) return;
  if (hold) refTimer(handle);
  else unrefTimer(handle);
}

/**
 * Resolves after `ms` on `clock`, or rejects with the signal's reason when
 * `signal` aborts first. Unchecked: the SDK's own waits (a retry's
 * backoff) call it with delays they computed; the public `sleep` checks
 * its arguments first.
 *
 * On the system clock the wait keeps the process alive, as awaited I/O
 * does, where the clock's own timers do not: someone awaits it (a request
 * backing off before its retry, with no socket open meanwhile), and Node
 * would end the program under them, with the promise never settled. A
 * custom clock's timers are its own.
 *
 * A custom clock whose `setTimeout()` throws rejects the wait with what it
 * threw, before anything waits (no listener is left on `signal`). Named
 * by each caller, which tells it from an abort (`signal` aborted) and
 * wraps it in the ConfigError naming the clock: this file sits below the
 * config and the errors, and may not import them.
 */
export function wait(
  clock: Clock,
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      // A custom clock whose clearTimeout() throws: the wait ends with
      // the abort all the same, and its timer, when it fires, finds the
      // promise settled. Let out, the throw went out of the abort's
      // dispatch (uncaught), and the wait ran on to its end: a closing
      // pool's bounded wait (drainPool) or a retry's backoff.
      try {
        clock.clearTimeout(handle);
      } catch {
        // Nobody to tell here: the abort is what the caller asked for.
      }
      reject(signal!.reason);
    };
    const done = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const handle = clock === systemClock
      ? setTimeout(done, ms)
      : clock.setTimeout(done, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
