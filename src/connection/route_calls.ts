/**
 * The core's calls into a `RequestRoute` that may throw: taking a request
 * back (`withdraw`) and closing the route (`close`). A route is foreign
 * code (a custom transport's), so each call is guarded, and what it threw
 * is reported as uncaught. Apart from core.ts because neither runs for a
 * request that is answered: only for one aborted or timed out, and once
 * when the connection ends.
 *
 * @module
 */

import type { RequestRoute } from "./types.ts";
import { reportThrow } from "./uncaught.ts";

/**
 * Takes a request back from the route, if it holds it unsent (see
 * `RequestRoute.withdraw`). A route that throws is its author's bug,
 * reported as uncaught; the request then counts as sent.
 */
export function unroute(
  route: RequestRoute | undefined,
  sequence: number,
): boolean {
  if (route === undefined) return false;
  try {
    return route.withdraw?.(sequence) === true;
  } catch (thrown) {
    reportThrow(thrown);
    return false;
  }
}

/**
 * Closes the route, if any, and returns the sequence numbers it took but
 * never sent. A route whose close throws (or returns what is no Set) is
 * its author's bug, reported as uncaught: the connection ends all the
 * same, and the requests it took count as sent (the cautious answer).
 */
export function closeRoute(
  route: RequestRoute | undefined,
): ReadonlySet<number> | undefined {
  let unsent: unknown;
  try {
    unsent = route?.close();
  } catch (thrown) {
    reportThrow(thrown);
    return undefined;
  }
  return unsent instanceof Set ? unsent : undefined;
}
