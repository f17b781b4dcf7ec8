/**
 * The checks at the door of the retry helpers the root exports,
 * `executeWithRetry` and `isRetryable`: a bad argument is an
 * {@linkcode InvalidArgumentError}, never a `TypeError` from inside the
 * loop or a loop that never ends for want of a `maxRetries`.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { REQUEST_RULES } from "./arguments.ts";
import {
  boolean,
  func,
  objectWith,
  optionsError,
  problemError,
  problemOf,
  type Rules,
  signal,
} from "./option_rules.ts";

const EXECUTE_RULES: Rules = {
  isRetryable: func,
  idempotent: boolean,
  signal,
  clock: objectWith("now", "setTimeout", "clearTimeout"),
  onRetry: func,
  random: func,
};

/**
 * What `executeWithRetry` needs of a schedule to run and to stop: every
 * field, with a type and sign that the backoff formula can use. Looser
 * than the config's resolver on purpose: a backoff beyond what a timer
 * can hold is capped by the loop, not refused.
 */
const RETRY_CONFIG_RULES: Rules = {
  maxRetries: (value) =>
    Number.isInteger(value) && (value as number) >= 0
      ? undefined
      : "expected an integer ≥ 0",
  initialBackoffMs: notNegative,
  maxBackoffMs: notNegative,
  backoffMultiplier: (value) =>
    typeof value === "number" && value >= 1
      ? undefined
      : "expected a number ≥ 1",
  jitter: boolean,
};

function notNegative(value: unknown): string | undefined {
  return typeof value === "number" && value >= 0
    ? undefined
    : "expected a number of milliseconds ≥ 0";
}

/**
 * Checks the arguments of `executeWithRetry`: a function, a complete and
 * valid retry schedule (a missing `maxRetries` would retry for ever), and
 * known options.
 *
 * @throws {InvalidArgumentError} for a bad operation, schedule or option.
 */
export function checkExecuteWithRetryArguments(
  operation: unknown,
  config: unknown,
  options: unknown,
): void {
  const method = "executeWithRetry";
  if (typeof operation !== "function") {
    throw new InvalidArgumentError(
      "operation",
      operation,
      "expected a function",
      {
        method,
      },
    );
  }
  // Every field: a schedule without `maxRetries` would retry for ever.
  const schedule = problemOf(config, RETRY_CONFIG_RULES, "config", {
    required: true,
  });
  if (schedule !== undefined) throw problemError(method, schedule);
  const problem = optionsError(method, options, EXECUTE_RULES);
  if (problem !== undefined) throw problem;
}

/**
 * Checks the arguments of `isRetryable`: an error it can look at (any
 * value, but not a revoked proxy), and the request options (`idempotent`,
 * and the rest of a request's options, which callers pass along as they
 * are).
 *
 * @throws {InvalidArgumentError} naming the bad argument or option.
 */
export function checkIsRetryableArguments(
  error: unknown,
  options: unknown,
): void {
  try {
    void (error instanceof Error);
  } catch (cause) {
    throw new InvalidArgumentError("error", error, "could not be read", {
      method: "isRetryable",
      cause,
    });
  }
  const problem = optionsError("isRetryable", options, REQUEST_RULES);
  if (problem !== undefined) throw problem;
}
