/**
 * Retries with exponential backoff, and the rule for what is safe to retry.
 *
 * The schedule is `delay(n) = min(initialBackoffMs * backoffMultiplier^n,
 * maxBackoffMs)`, optionally jittered into `[delay/2, delay]` so that many
 * clients failing at once do not come back in lockstep. Waits go through a
 * {@linkcode Clock}, so tests drive them with a virtual clock.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { systemClock, wait } from "../clock.ts";
import type { RetryConfig } from "../config/shapes.ts";
import { MAX_TIMER_DELAY_MS } from "../config/validate.ts";
import { clockFailed } from "../config/clock_failure.ts";
import { isInstance } from "../errors/base.ts";
import {
  AbortedError,
  NEVER_RETRIED_CODES,
  NEVER_SENT_CODES,
  NodewireError,
  RetriesExhaustedError,
} from "../errors.ts";
import {
  readBackoffDelayArguments,
  readExecuteWithRetryArguments,
  readIsRetryableArguments,
} from "./retry_arguments.ts";

/**
 * The delay before retry number `attempt`, in milliseconds. `attempt` is
 * 0-based: the first retry waits `initialBackoffMs`. With `config.jitter`
 * the delay is drawn uniformly from `[delay/2, delay]` using `random`.
 *
 * The result is always a finite number in `[0, maxBackoffMs]`, however large
 * `attempt` is: an overflowing power is capped rather than left as
 * `Infinity` or `NaN`.
 *
 * @param attempt 0-based retry number, a non-negative number.
 * @param config the retry schedule (a resolved {@linkcode RetryConfig}).
 * @param random source of uniform numbers in `[0, 1)`; used only with jitter.
 * @throws {InvalidArgumentError} naming `attempt` (negative, `NaN`, not a
 *   number), a field of `config` (missing or of the wrong kind), or
 *   `random`.
 * @example
 * ```ts
 * import { backoffDelay } from "@nodewire/client/core";
 * const config = {
 *   maxRetries: 3,
 *   initialBackoffMs: 100,
 *   maxBackoffMs: 5000,
 *   backoffMultiplier: 2,
 *   jitter: false,
 * };
 * backoffDelay(0, config); // 100
 * backoffDelay(3, config); // 800
 * backoffDelay(1000, config); // 5000
 * ```
 */
export function backoffDelay(
  attempt: number,
  config: RetryConfig,
  random: () => number = Math.random,
): number {
  // The schedule as read once, at the door (a getter is not asked again).
  return delayFor(
    attempt,
    readBackoffDelayArguments(attempt, config, random),
    random,
  );
}

/** {@linkcode backoffDelay} for a schedule and attempt already checked. */
export function delayFor(
  attempt: number,
  config: RetryConfig,
  random: () => number = Math.random,
): number {
  const { initialBackoffMs: initial, maxBackoffMs: max } = config;
  // `0 * Infinity` and `1 ** Infinity` are NaN, so the cases where the
  // power does not matter are answered before computing it.
  let delay: number;
  if (initial <= 0 || config.backoffMultiplier <= 1) {
    delay = initial;
  } else {
    // May overflow to Infinity; the comparison below caps it at `max`.
    delay = initial * Math.pow(config.backoffMultiplier, attempt);
  }
  if (!(delay < max)) delay = max;
  if (!config.jitter) return delay;
  // Clamped so that a generator returning exactly 1 (or more) stays in range.
  const r = Math.min(Math.max(random(), 0), 1);
  const jittered = delay / 2 + r * (delay / 2);
  // Rounding (visible with tiny delays) could land one ulp above `delay`.
  return jittered < delay ? jittered : delay;
}

/**
 * Options for {@linkcode isRetryable}.
 *
 * @example
 * ```ts
 * import { isRetryable, type IsRetryableOptions, RequestTimeoutError } from "@nodewire/client";
 * const options: IsRetryableOptions = { idempotent: true };
 * // As the connection reports a timeout of an idempotent request:
 * const timeout = new RequestTimeoutError("127.0.0.1:7000", 250, { retryable: true });
 * isRetryable(timeout, options); // true
 * ```
 */
export interface IsRetryableOptions {
  /**
   * Whether running the request twice has the same effect as running it
   * once. Only then is an error after which the request may have reached
   * the node retried. Default false.
   */
  idempotent?: boolean;
}

/**
 * Whether retrying after `error` is safe and may succeed.
 *
 * - Errors raised before the request left the client (refused, connect
 *   timeout, unknown host, a connect that failed otherwise
 *   (`CONNECTION_FAILED`: an unreachable host, say), closed connection,
 *   pool timeout, cleared pool, no healthy node, a lost connection with
 *   `sent === false`) are retried.
 * - Errors after which the request may have reached the node (a lost
 *   connection with `sent === true`, a request timeout) are retried only
 *   when `options.idempotent` is true.
 * - A {@linkcode RemoteError} is retried when the node flagged it retryable,
 *   which means it did not execute the request.
 * - Config, protocol, abort, client-closed, authentication (`AUTH_FAILED`)
 *   and retries-exhausted errors, and anything that is not a
 *   {@linkcode NodewireError}, are never retried.
 *
 * An error whose own `retryable` flag is false is never retried. A
 * retryable SDK error with a code not listed above (a `LISTEN_FAILED` built
 * without `retryable: false`, say) is treated like one that may have
 * reached the node: retried only when idempotent, unless it carries
 * `sent: false` as {@linkcode ConnectionLostError} does.
 *
 * The decision is made on the stable `code`, not on `instanceof` of the
 * subclasses, so it holds even when two copies of the SDK are loaded.
 *
 * @example
 * ```ts
 * import { ConnectionLostError, ConnectionRefusedError, isRetryable } from "@nodewire/client";
 * const node = { hostname: "127.0.0.1", port: 7000 };
 * isRetryable(new ConnectionRefusedError(node)); // true
 * isRetryable(new ConnectionLostError(node, "reset", { sent: true })); // false
 * isRetryable(new ConnectionLostError(node, "reset", { sent: true }), {
 *   idempotent: true,
 * }); // true
 * ```
 */
export function isRetryable(
  error: unknown,
  options: IsRetryableOptions = {},
): boolean {
  return retryableAfter(error, readIsRetryableArguments(error, options));
}

/**
 * {@linkcode isRetryable}'s rule without its argument checks, for the
 * request path: it read `idempotent` from options the client checked at
 * its door, and must not read them again (a getter that answers
 * differently would fail the request with an error naming isRetryable).
 */
export function retryableAfter(error: unknown, idempotent: boolean): boolean {
  // isInstance: `instanceof` throws for a revoked proxy, which is no
  // NodewireError either.
  if (!isInstance(error, NodewireError)) return false;
  const e = error as NodewireError;
  if (!e.retryable || NEVER_RETRIED_CODES.has(e.code)) return false;
  if (NEVER_SENT_CODES.has(e.code)) return true;
  // The node itself said it did not execute the request.
  if (e.code === "REMOTE_ERROR") return true;
  // A lost connection (or any other error) that says it never wrote the
  // request is known to be safe. Everything else, REQUEST_TIMEOUT and
  // codes we do not know included, may have reached the node.
  if ((e as { sent?: unknown }).sent === false) return true;
  return idempotent;
}

/**
 * What {@linkcode executeWithRetry} reports before each retry.
 *
 * @example
 * ```ts
 * import type { RetryInfo } from "@nodewire/client";
 * const log = (info: RetryInfo) =>
 *   console.log(`retry ${info.attempt} in ${info.delayMs} ms after`, info.error);
 * ```
 */
export interface RetryInfo {
  /**
   * The attempt about to be made, as passed to the operation: 1 for the
   * first retry.
   */
  attempt: number;
  /** How long the loop waits before that attempt, in ms. */
  delayMs: number;
  /** The error that the previous attempt failed with. */
  error: unknown;
}

/**
 * Options for {@linkcode executeWithRetry}.
 *
 * @example
 * ```ts
 * import type { ExecuteWithRetryOptions } from "@nodewire/client";
 * const options: ExecuteWithRetryOptions = {
 *   idempotent: true,
 *   signal: AbortSignal.timeout(10_000),
 *   onRetry: ({ attempt, delayMs }) => console.log(attempt, delayMs),
 * };
 * ```
 */
export interface ExecuteWithRetryOptions {
  /**
   * Decides whether to retry after `error` from attempt `attempt` (0-based).
   * Replaces the default, `isRetryable(error, { idempotent })`.
   */
  isRetryable?: (error: unknown, attempt: number) => boolean;
  /** Passed to the default {@linkcode isRetryable}. Default false. */
  idempotent?: boolean;
  /**
   * Stops the loop: before an attempt or during a backoff wait the promise
   * rejects with {@linkcode AbortedError} at once. The signal is also given
   * to the operation so it can stop its own work.
   */
  signal?: AbortSignal;
  /** Clock for the backoff waits. Default the system clock. */
  clock?: Clock;
  /**
   * Called before each backoff wait. An exception thrown here ends the loop
   * and becomes the result, so a hook can veto further retries.
   */
  onRetry?: (info: RetryInfo) => void;
  /** Source of jitter, uniform in `[0, 1)`. Default `Math.random`. */
  random?: () => number;
}

/**
 * Runs `operation` and retries it with exponential backoff while it fails
 * with a retryable error, at most `config.maxRetries` times.
 *
 * - A non-retryable error is rethrown as is, at once.
 * - When the retries run out, the promise rejects with
 *   {@linkcode RetriesExhaustedError}: `attempts` counts every attempt, the
 *   first included, and `cause` is the last error. This holds for
 *   `maxRetries: 0` too (one attempt, `attempts === 1`): a caller sees the
 *   same error shape whatever the retry budget, and can tell from the code
 *   alone that the failure was transient but the client gave up.
 * - When `options.signal` aborts, the loop rejects with
 *   {@linkcode AbortedError} (the signal's reason as `cause`) and cancels a
 *   pending backoff wait. An {@linkcode AbortedError} thrown by the operation
 *   itself is passed through unchanged.
 *
 * @param operation the work; receives the 0-based attempt number and the
 *   caller's signal.
 * @param config the retry schedule and budget.
 * @param options predicate, idempotency, signal, clock, hook and randomness.
 * @example
 * ```ts
 * import { ConnectionRefusedError, executeWithRetry } from "@nodewire/client";
 * const config = {
 *   maxRetries: 3,
 *   initialBackoffMs: 1,
 *   maxBackoffMs: 10,
 *   backoffMultiplier: 2,
 *   jitter: false,
 * };
 * const answer = await executeWithRetry((attempt) => {
 *   if (attempt < 2) {
 *     throw new ConnectionRefusedError({ hostname: "127.0.0.1", port: 7000 });
 *   }
 *   return Promise.resolve("ok");
 * }, config);
 * console.log(answer); // "ok", after two retries
 * ```
 */
export async function executeWithRetry<T>(
  operation: (attempt: number, signal: AbortSignal | undefined) => Promise<T>,
  config: RetryConfig,
  options: ExecuteWithRetryOptions = {},
): Promise<T> {
  // Read once, here: the loop goes on with copies of the schedule and the
  // options, read on every attempt (a getter is not asked again).
  const read = readExecuteWithRetryArguments(operation, config, options);
  const schedule = read.config;
  const { signal, onRetry } = read.options;
  const clock = read.options.clock ?? systemClock;
  const random = read.options.random ?? Math.random;
  const idempotent = read.options.idempotent ?? false;
  // The rule of isRetryable, without its check of arguments: what the
  // operation failed with is any value (a revoked proxy is not retried).
  const retryable = read.options.isRetryable ??
    ((error: unknown) => retryableAfter(error, idempotent));

  for (let attempt = 0;; attempt++) {
    if (signal?.aborted) throw operationAborted(signal);
    try {
      return await operation(attempt, signal);
    } catch (error) {
      if (
        isInstance(error, NodewireError) &&
        (error as NodewireError).code === "ABORTED"
      ) {
        throw error;
      }
      // The operation may have failed *because* of the abort, with some
      // other error: the caller asked to stop, so say that.
      if (signal?.aborted) throw operationAborted(signal);
      if (!retryable(error, attempt)) throw error;
      if (attempt >= schedule.maxRetries) {
        throw new RetriesExhaustedError(attempt + 1, error);
      }
      // A config that did not go through resolveRetryConfig may ask for
      // more than a timer can hold; a longer delay would fire at once and
      // turn the backoff into a retry storm.
      const delayMs = Math.min(
        delayFor(attempt, schedule, random),
        MAX_TIMER_DELAY_MS,
      );
      onRetry?.({ attempt: attempt + 1, delayMs, error });
      try {
        await wait(clock, delayMs, signal);
      } catch (sleepError) {
        if (signal?.aborted) throw operationAborted(signal);
        // Not an abort: a custom clock whose setTimeout() threw (see
        // wait). Let out as it was, the caller got the clock's raw Error.
        throw clockFailed(clock, sleepError, "setTimeout");
      }
    }
  }
}

/**
 * What a wait or a call ended by the caller's `signal` fails with (the
 * retries here, withConnection's checkout, the client's abortable waits).
 */
export function operationAborted(signal: AbortSignal): AbortedError {
  return new AbortedError("the operation was aborted", signal.reason);
}
