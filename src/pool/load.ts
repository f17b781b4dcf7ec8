/**
 * Reading a pooled connection's load, `inFlight`, which a custom
 * connection may make anything (NaN, a getter that throws). Apart from
 * the roster because the opener, the housekeeper, the stats and the pool
 * check it too, each at its own moment.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { textOf } from "../errors/base.ts";
import type { PoolableConnection } from "./types.ts";

/**
 * Whether `load`, a connection's `inFlight`, counts requests: a number
 * from 0, finite. A custom connection's may be anything; the choice of a
 * connection compares it, and NaN or Infinity there made one never chosen.
 */
export function isCount(load: unknown): boolean {
  return typeof load === "number" && load >= 0 && load !== Infinity;
}

/**
 * Reads `conn.inFlight` and returns the error for it when it is no count
 * (or its getter throws), else undefined. Off the request path: as a
 * connection arrives, and for connections about to be waited for.
 */
export function uncounted(
  conn: PoolableConnection,
): InvalidArgumentError | undefined {
  let load: unknown;
  let cause: unknown;
  try {
    load = conn.inFlight;
    if (isCount(load)) return undefined;
  } catch (error) {
    cause = error;
  }
  let id: unknown;
  try {
    id = conn.id;
  } catch {
    id = "(unreadable)";
  }
  return new InvalidArgumentError(
    "options.factory",
    load,
    `connection ${textOf(id)}'s inFlight is expected to be a count of ` +
      `requests (a finite number ≥ 0)${
        cause === undefined ? "" : " and to be readable"
      }`,
    { method: "ConnectionPool", cause },
  );
}

/** Whether `conn` says it has requests in flight; no throw. */
export function hasWork(conn: PoolableConnection): boolean {
  try {
    const load = conn.inFlight;
    return isCount(load) && load > 0;
  } catch {
    return false;
  }
}
