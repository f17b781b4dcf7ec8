/**
 * The errors a connection refuses a request with before sending it: a
 * payload over the node's limit, a bad timeout or signal, a signal that
 * already aborted. Built only on the way out, so the request path keeps
 * its checks inline and its text here, shared with batch.ts's runs.
 *
 * @module
 */

import { durationProblem } from "../config/validate.ts";
import {
  AbortedError,
  InvalidArgumentError,
  ProtocolError,
} from "../errors.ts";
import { clipped, printable } from "../errors/base.ts";

/**
 * A payload over the connection's send `limit`: the caller's argument, not
 * the node's fault (as a ProtocolError it counted against the node). The
 * limit is the lower of the connection's own `maxFrameSize` (`own`) and
 * the node's; the message says which, since only the first is the caller's
 * to raise. The sink's `method` (`ReplySink.method`), the public method the
 * request came through, is named first as its own checks name it.
 */
export function payloadTooLarge(
  length: number,
  limit: number,
  own: number,
  sink: { readonly method?: string },
): InvalidArgumentError {
  const method = methodOf(sink);
  const whose = limit >= own
    ? "maxFrameSize"
    : `the node's frame limit, below maxFrameSize ${own}`;
  return new InvalidArgumentError(
    "payload",
    length,
    `expected at most ${limit} bytes (${whose})`,
    { method },
  );
}

/**
 * A control message's payload over the connection's send `limit`, the
 * lower of its own `maxFrameSize` (`own`) and the node's frame limit,
 * named as {@linkcode payloadTooLarge} names it: "the node's limit" was
 * said whichever it was, and the own limit's refusal (the codec's) did
 * not name the setting the caller may raise.
 */
export function messageTooLarge(
  length: number,
  limit: number,
  own: number,
): ProtocolError {
  const whose = limit >= own
    ? `the connection's maxFrameSize of ${own} bytes`
    : `the node's frame limit of ${limit} bytes, below maxFrameSize ${own}`;
  return new ProtocolError(`payload of ${length} bytes exceeds ${whose}`);
}

/**
 * `sink.method`, or none when the sink's getter throws: a /core caller's
 * bug that must not turn a refusal into a throw (submitRequest's caller
 * got the getter's error and the sink nothing; a batch run stopped
 * halfway, with what it had sent still to be answered). The method only
 * words the message, so the refusal goes on naming none (as for what is
 * no string). A string is foreign text: shown escaped and clipped.
 */
function methodOf(sink: { readonly method?: string }): string | undefined {
  let method: unknown;
  try {
    method = sink.method;
  } catch {
    return undefined;
  }
  // A /core caller's text, shown in a message and maybe a log line: what
  // a terminal would act on is escaped, and a long one cut.
  return typeof method === "string"
    ? clipped(printable(method), MAX_METHOD_LENGTH)
    : undefined;
}

/** The most of a sink's `method` a refusal shows, in characters. */
const MAX_METHOD_LENGTH = 80;

/** A `timeoutMs` that is not a duration in ms. */
export function badTimeout(timeoutMs: unknown): InvalidArgumentError {
  return new InvalidArgumentError(
    "options.timeoutMs",
    timeoutMs,
    durationProblem(timeoutMs) ?? "expected a duration in ms",
  );
}

/**
 * A request's option `name` (`""`: the options themselves) that is not
 * what it should be, or whose reading threw `cause`.
 */
export function badOption(
  name: string,
  value: unknown,
  expected: string,
  cause?: unknown,
): InvalidArgumentError {
  return new InvalidArgumentError(`options${name}`, value, expected, { cause });
}

/**
 * The error for a bad argument of a connection's method (not one of its
 * options), naming it.
 */
export function badArgument(
  name: string,
  value: unknown,
  expected: string,
): InvalidArgumentError {
  return new InvalidArgumentError(name, value, expected);
}

/** A request whose signal had aborted before it was sent. */
export function abortedBeforeSent(signal: AbortSignal): AbortedError {
  return new AbortedError("request aborted before it was sent", signal.reason);
}

/**
 * An attempt never sent because its request already had its outcome (a
 * frame held behind congestion, a hedge whose wait for a connection ended
 * after another attempt answered).
 */
export function notSent(): AbortedError {
  return new AbortedError("not sent: the request had its outcome");
}
