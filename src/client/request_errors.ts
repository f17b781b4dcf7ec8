/**
 * The errors a request ends with when the request path, not a node,
 * decides it: the caller aborted it, or no node could be picked. Apart
 * from request_path.ts because they are built only on those ends, never
 * for a request that gets its reply.
 *
 * @module
 */

import { AbortedError, NoHealthyNodesError } from "../errors.ts";

/** What a request fails with when its caller's `signal` aborted it. */
export function aborted(signal: AbortSignal): AbortedError {
  return new AbortedError("the request was aborted", signal.reason);
}

/**
 * What a request fails with when no node could be picked: `error`, or on a
 * retry the same NoHealthyNodesError with the error of the attempt that
 * was retried as its cause, which says why the node went away.
 */
export function noNodeAfter(error: unknown, retried: unknown): unknown {
  if (
    retried === undefined || !(error instanceof NoHealthyNodesError) ||
    error.cause !== undefined
  ) return error;
  return new NoHealthyNodesError(error.addresses, { cause: retried });
}
