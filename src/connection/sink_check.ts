/**
 * Whether what a `/core` caller handed `Connection.submitRequest` or
 * `submitBatch` as its sink is one, and the error refusing it: a reply is
 * handed to a sink long after the call, where what is no sink only threw
 * a raw TypeError, reported as uncaught. Built only when refusing (a
 * single request's check is two `typeof`s inline), or once per run.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { missingMethod } from "../runtime/contract.ts";

const SINK_METHODS = ["onReply", "onError"] as const;

/**
 * The error refusing `sink` as `method`'s sink, saying what is wrong with
 * it; undefined when it has both methods. `what` names what is expected.
 */
export function sinkProblem(
  sink: unknown,
  method: string,
  what = "a sink with onReply and onError methods",
): InvalidArgumentError | undefined {
  const problem = missingMethod(sink, SINK_METHODS);
  if (problem === undefined) return undefined;
  return new InvalidArgumentError(
    "sink",
    sink,
    `expected ${what}, but ${problem.wrong}`,
    { method, cause: problem.cause },
  );
}

/**
 * The error refusing `sink` as `submitRequest`'s, which the request path
 * found without an `onReply` or an `onError` method.
 */
export function notASink(sink: unknown): InvalidArgumentError {
  return sinkProblem(sink, "submitRequest()") ??
    // Both were methods by the time this read them again (getters).
    new InvalidArgumentError(
      "sink",
      sink,
      "expected a sink whose onReply and onError are methods when they " +
        "are read",
      { method: "submitRequest()" },
    );
}
