/**
 * The public `sleep`: the clock's wait behind the door every public entry
 * has, so that a bad delay is refused instead of firing at once.
 *
 * @module
 */

import { type Clock, wait } from "../clock.ts";
import { clockFailed } from "../config/clock_failure.ts";
import { refuse } from "../config/options.ts";
import { type Check, methods, msOrZero, signal } from "../config/validate.ts";
import type { InvalidArgumentError } from "../errors.ts";

/**
 * Resolves after `ms` on `clock`, or rejects with the signal's reason when
 * `signal` aborts first. On the system clock the wait keeps the process
 * alive until it ends, as any awaited I/O does (the clock's own timers do
 * not).
 *
 * @throws {ConfigError} (rejects) naming `clock` when its `setTimeout()`
 *   throws.
 * @throws {InvalidArgumentError} (rejects) for a clock without
 *   `setTimeout` and `clearTimeout`, an `ms` that is not a number of
 *   milliseconds from 0 to 2^31 - 1 (NaN, Infinity and a delay too long for
 *   a timer would fire at once), or a `signal` that is no AbortSignal.
 * @example
 * ```ts
 * import { sleep, systemClock } from "@nodewire/client/core";
 * await sleep(systemClock, 5);
 * ```
 */
export function sleep(
  clock: Clock,
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  const problem = sleepProblem(clock, ms, signal);
  if (problem !== undefined) return Promise.reject(problem);
  return wait(clock, ms, signal).catch((error: unknown) => {
    if (signal?.aborted) throw error;
    // Not an abort: a custom clock whose setTimeout() threw (see wait).
    // Let out as it was, the caller got the clock's raw Error.
    throw clockFailed(clock, error, "setTimeout");
  });
}

const CHECKS: readonly [string, Check][] = [
  ["clock", methods("setTimeout", "clearTimeout")],
  ["ms", msOrZero],
  ["signal", (value) => value === undefined ? undefined : signal(value)],
];

function sleepProblem(...values: unknown[]): InvalidArgumentError | undefined {
  for (let i = 0; i < CHECKS.length; i++) {
    const [argument, check] = CHECKS[i];
    let expected: string | undefined;
    let cause: unknown;
    try {
      expected = check(values[i]);
    } catch (error) {
      // A revoked proxy for a clock: even `typeof clock.setTimeout` throws.
      expected = "could not be read";
      cause = error;
    }
    if (expected !== undefined) {
      return refuse("sleep", argument, values[i], expected, cause);
    }
  }
  return undefined;
}
