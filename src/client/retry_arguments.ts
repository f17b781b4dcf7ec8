/**
 * The checks at the door of the retry helpers the root exports
 * (`executeWithRetry`, `isRetryable`), apart from the client's.
 *
 * @module
 */

import {
  bool,
  clock,
  func,
  readOptions,
  refuse,
  type Rules,
  signal,
} from "../config/options.ts";
import { integer, numberIn } from "../config/validate.ts";
import type { RetryConfig } from "../config/shapes.ts";
import { REQUEST_RULES } from "./arguments.ts";

const EXECUTE_RULES: Rules = {
  isRetryable: func,
  idempotent: bool,
  signal,
  clock,
  onRetry: func,
  random: func,
};

// Any number (but NaN, which no range takes): a backoff beyond what a
// timer can hold is capped by the loop.
const anyNumber = () => true;
const notNegative = numberIn(
  0,
  Infinity,
  anyNumber,
  "a number of milliseconds",
);

/**
 * What `executeWithRetry` needs of a schedule to run and to stop (a bad
 * argument must never be a `TypeError` from inside the loop): every
 * field, with a type and sign that the backoff formula can use. Looser
 * than the config's resolver on purpose: a backoff beyond what a timer
 * can hold is capped by the loop, not refused.
 */
const RETRY_CONFIG_RULES: Rules = {
  maxRetries: integer(0),
  initialBackoffMs: notNegative,
  maxBackoffMs: notNegative,
  backoffMultiplier: numberIn(1, Infinity, anyNumber, "a number"),
  jitter: bool,
};

/**
 * Checks the arguments of `executeWithRetry`: a function, a complete and
 * valid retry schedule (a missing `maxRetries` would retry for ever), and
 * known options. Returns the schedule and the options read once into
 * copies: the loop reads them on every attempt, and a getter that
 * answered a `maxRetries` of NaN later would retry for ever.
 *
 * @throws {InvalidArgumentError} for a bad operation, schedule or option.
 */
export function readExecuteWithRetryArguments<Options>(
  operation: unknown,
  config: unknown,
  options: Options,
): { config: RetryConfig; options: Options } {
  const method = "executeWithRetry";
  const expected = func(operation);
  if (expected) throw refuse(method, "operation", operation, expected);
  return {
    // Every field: a schedule without `maxRetries` would retry for ever.
    config: readOptions(method, config, RETRY_CONFIG_RULES, true, "config"),
    options: readOptions(method, options, EXECUTE_RULES),
  };
}

/**
 * Checks the arguments of `backoffDelay`: an attempt number `≥ 0`, a
 * whole retry schedule (as `executeWithRetry` takes), and `random`.
 * Returns the schedule read once into a copy, which the delay is
 * computed from.
 *
 * @throws {InvalidArgumentError} naming the bad argument or field.
 */
export function readBackoffDelayArguments(
  attempt: unknown,
  config: unknown,
  random: unknown,
): RetryConfig {
  const method = "backoffDelay";
  let expected = numberIn(0, Infinity, anyNumber, "a number")(attempt);
  if (expected) throw refuse(method, "attempt", attempt, expected);
  const schedule = readOptions<RetryConfig>(
    method,
    config,
    RETRY_CONFIG_RULES,
    true,
    "config",
  );
  expected = func(random);
  if (expected) throw refuse(method, "random", random, expected);
  return schedule;
}

/**
 * Checks the arguments of `isRetryable`: an error it can look at (any
 * value, but not a revoked proxy), and the request options (`idempotent`,
 * and the rest of a request's options, which callers pass along as they
 * are). Returns `idempotent` as read, once.
 *
 * @throws {InvalidArgumentError} naming the bad argument or option.
 */
export function readIsRetryableArguments(
  error: unknown,
  options: unknown,
): boolean {
  try {
    void (error instanceof Error);
  } catch (cause) {
    throw refuse("isRetryable", "error", error, "could not be read", cause);
  }
  return readOptions<{ idempotent?: boolean }>(
    "isRetryable",
    options,
    REQUEST_RULES,
  ).idempotent === true;
}
