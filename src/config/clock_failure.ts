/**
 * A custom clock's failures, named: the error a clock that throws in use
 * becomes, and the reads, arms and clears that turn its throw into that
 * error where the clock is called, so that what reaches a caller names the
 * clock (`ConfigError`, field `clock`) and never is its raw Error. Apart
 * from validate.ts, whose checks run once, at construction: these run
 * while the client works.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../clock.ts";
import { ConfigError, messageOf, NodewireError } from "../errors.ts";

/**
 * The error for a `clock` whose `now()` (or `method`) threw once in use
 * (the config checks read it once, at construction): a
 * {@linkcode ConfigError} naming `clock`, with what it threw as cause.
 * What is that error already (named where the clock was read, then
 * caught again further up) is given back as it is, not wrapped twice.
 */
export function clockFailed(
  clock: unknown,
  thrown: unknown,
  method: ClockMethod = "now",
): ConfigError {
  if (isClockFailure(thrown)) return thrown;
  return new ConfigError(
    "clock",
    clock,
    `expected a clock whose ${method}() can be called (it threw ${
      messageOf(thrown)
    })`,
    { cause: thrown },
  );
}

/** Whether `error` is a {@linkcode clockFailed} error. */
export function isClockFailure(error: unknown): error is ConfigError {
  return error instanceof ConfigError && error.field === "clock";
}

/** A method of a clock, named by {@linkcode clockFailed}. */
export type ClockMethod = "now" | "setTimeout" | "clearTimeout";

/**
 * `clock.now()`; its throw is the {@linkcode clockFailed} error, so that
 * what a clock threw is named where it was read, not guessed at later
 * (see {@linkcode blameClock}). The try costs nothing until it catches:
 * the request path reads its own clock through it too.
 */
export function readClock(clock: { now(): number }): number {
  try {
    return clock.now();
  } catch (thrown) {
    throw clockFailed(clock, thrown);
  }
}

/**
 * `clock.setTimeout(fn, ms)`; its throw is the {@linkcode clockFailed}
 * error naming `setTimeout()`: for the places that arm a timer before
 * their work starts (an open, a TLS upgrade, a TLS switch), which then
 * fail with that error, not with what the clock threw.
 */
export function setTimer(
  clock: Pick<Clock, "setTimeout">,
  fn: () => void,
  ms: number,
): TimerHandle {
  try {
    return clock.setTimeout(fn, ms);
  } catch (thrown) {
    throw clockFailed(clock, thrown, "setTimeout");
  }
}

/**
 * `clock.clearTimeout(handle)`, never throwing: the {@linkcode clockFailed}
 * error naming `clearTimeout()` when it threw, else undefined. For the
 * places that cancel a timer as part of other work (a settling, a
 * shutdown, a re-arm): a throw let out of them left that work half done
 * (a promise never settled, a close that never ended) or escaped from a
 * timer or a socket event. The timer it could not clear may still fire:
 * each caller's timer finds nothing left to do then.
 */
export function clearTimer(
  clock: Pick<Clock, "clearTimeout">,
  handle: TimerHandle,
): ConfigError | undefined {
  try {
    clock.clearTimeout(handle);
    return undefined;
  } catch (thrown) {
    return clockFailed(clock, thrown, "clearTimeout");
  }
}

/**
 * `error`, or the {@linkcode clockFailed} error when `clock.now()` throws
 * as it is read again: what a request ended with when something below
 * threw what is no SDK error, so that a broken custom clock is named.
 * For catch blocks only: it reads the clock. A clock that threw once and
 * reads again is not caught here: the reads a request makes name it
 * where it threw ({@linkcode readClock}, the pool's and the connection's
 * tick readings), so what reaches this is that error already.
 */
export function blameClock(clock: { now(): unknown }, error: unknown): unknown {
  if (error instanceof NodewireError) return error;
  try {
    clock.now();
  } catch (thrown) {
    return clockFailed(clock, thrown);
  }
  return error;
}

/** A timer armed by {@linkcode onceTimer}. */
export interface OnceTimer {
  /** The clock's handle, for `holdTimer`. */
  readonly handle: TimerHandle;
  /**
   * Stops the timer: its callback does not run, not even when the clock
   * could not clear it and it fires. The {@linkcode clearTimer} error
   * when the clock's `clearTimeout()` threw, else undefined; after the
   * callback ran, or a first cancel, nothing is cleared.
   */
  cancel(): ConfigError | undefined;
}

/**
 * Arms `fire` once, `ms` from now on `clock`, for work that cancels it as
 * it ends (an open, a TLS upgrade, a wait): through {@linkcode setTimer},
 * so that a `setTimeout()` that throws fails that work with the error
 * naming it, before anything starts; through {@linkcode clearTimer} on
 * cancel, so that a `clearTimeout()` that throws leaves the work to end as
 * it would have. A timer that could not be cleared still fires, and finds
 * itself cancelled: without that check, a timeout would act on work that
 * had ended (abort an open that was handed over, destroy what a node
 * removed long ago left behind).
 *
 * @throws {ConfigError} naming `clock` when its `setTimeout()` throws.
 */
export function onceTimer(
  clock: Pick<Clock, "setTimeout" | "clearTimeout">,
  ms: number,
  fire: () => void,
): OnceTimer {
  let over = false;
  const handle = setTimer(clock, () => {
    if (over) return;
    over = true;
    fire();
  }, ms);
  return {
    handle,
    cancel: () => {
      if (over) return undefined;
      over = true;
      return clearTimer(clock, handle);
    },
  };
}
