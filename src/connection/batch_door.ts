/**
 * The checks at the doors of a batch run (`Connection.submitBatch` and
 * `Connection.cancelBatch`, for a `/core` caller): the run's options read
 * once, its sink told its first sequence number, and a cancel's count,
 * error and sink. Once per run, never per request.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { isInstance } from "../errors/base.ts";
import { badArgument, badOption } from "./refusals.ts";
import type { BatchReplySink } from "./types.ts";

/** A run's options as `submitBatch` read them. */
export interface RunOptions {
  /** The run's timeout; undefined for the connection's own. */
  readonly timeoutMs: number | undefined;
  /** Whether the run's requests may be repeated. */
  readonly idempotent: boolean | undefined;
}

const NO_OPTIONS: RunOptions = { timeoutMs: undefined, idempotent: undefined };

/**
 * `submitBatch`'s options, each read once, or the error that refuses the
 * run: options that are no object or cannot be read, an `idempotent` that
 * is not a boolean. The timeout is checked with the run (`runProblem`).
 */
export function readRunOptions(
  options: unknown,
): RunOptions | InvalidArgumentError {
  if (options === undefined) return NO_OPTIONS;
  // Each option read once (see Connection's #call): a getter that throws
  // is submitBatch's returned error, not a throw.
  let timeoutMs: number | undefined;
  let idempotent: boolean | undefined;
  if (typeof options !== "object" || options === null) {
    return badOption("", options, "expected an object of options");
  }
  try {
    ({ timeoutMs, idempotent } = options as RunOptions);
  } catch (cause) {
    return badOption("", options, "could not be read", cause);
  }
  if (idempotent !== undefined && typeof idempotent !== "boolean") {
    return badOption(".idempotent", idempotent, "expected true or false");
  }
  return { timeoutMs, idempotent };
}

/**
 * Refuses what `cancelBatch` cannot take: a `count` that is no integer of
 * 0 or more, an `error` that is no Error.
 */
export function checkCancel(count: number, error: Error): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw badArgument("count", count, "expected an integer of 0 or more");
  }
  if (!isInstance(error, Error)) {
    throw badArgument("error", error, "expected an Error");
  }
}

/**
 * Tells `sink` the run's first sequence number, or returns the error that
 * refuses a sink that cannot take it (frozen, a getter without a setter,
 * a setter that throws or keeps nothing, no object): the write threw a raw
 * TypeError from inside the run, and a `first` the sink does not hold
 * would have its replies filed under the wrong items.
 */
export function setFirst(
  sink: BatchReplySink,
  first: number,
): InvalidArgumentError | undefined {
  const expected = "expected a sink whose first can be set";
  try {
    sink.first = first;
    if (sink.first === first) return undefined;
  } catch (cause) {
    return new InvalidArgumentError("sink", sink, expected, { cause });
  }
  return badArgument("sink", sink, `${expected} (it kept another value)`);
}

/**
 * The `first` sequence number of the run `cancelBatch` is to cancel, read
 * once, or the error refusing a sink that is no object or whose `first`
 * cannot be read: null was a raw TypeError, a throwing getter its own
 * error, from inside the cancel.
 */
export function firstOf(sink: BatchReplySink): number {
  const expected = "expected a sink whose first can be read";
  if (
    sink === null || (typeof sink !== "object" && typeof sink !== "function")
  ) {
    throw badArgument("sink", sink, expected);
  }
  try {
    return sink.first;
  } catch (cause) {
    throw new InvalidArgumentError("sink", sink, expected, { cause });
  }
}
