/**
 * Reading a pooled connection's load, `inFlight`, which a custom
 * connection may make anything (NaN, a getter that throws). Apart from
 * the roster because the opener, the housekeeper, the stats and the pool
 * check it too, each at its own moment.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { foreignText, textOf } from "../errors/base.ts";
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
 * Reads `conn.isOpen` and `conn.inFlight`, and returns the error for a
 * connection either of whose getters throws (a custom connection's, once
 * taken in), else undefined. Such a connection is broken: it is dropped
 * (destroyed, its slot freed) where the pool's own code meets it off the
 * request path (the housekeeper's timer, a check-in, serving waiters, an
 * exclusive checkout, `clear()`), where before the throw escaped, from
 * the timer too, and the connection stayed. Not on the shared checkout
 * (`acquireShared`, `tryAcquireShared`), which reads them unguarded.
 */
export function unreadable(
  conn: PoolableConnection,
): InvalidArgumentError | undefined {
  let part = "isOpen";
  try {
    void conn.isOpen;
    part = "inFlight";
    void conn.inFlight;
    return undefined;
  } catch (error) {
    return new InvalidArgumentError(
      "options.factory",
      conn,
      `connection ${textOf(idOf(conn))}'s ${part} is expected to be ` +
        `readable (it threw ${foreignText(error)})`,
      { method: "ConnectionPool", cause: error },
    );
  }
}

/**
 * `conn.id` (undefined for no connection at all), or what says it could
 * not be read: for an error about `conn`, which a throwing getter or
 * proxy must not turn into another error.
 */
export function idOf(conn: PoolableConnection | null | undefined): unknown {
  try {
    return conn?.id;
  } catch {
    return "(unreadable)";
  }
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
  const id = textOf(idOf(conn));
  return new InvalidArgumentError(
    "options.factory",
    load,
    `connection ${id}'s inFlight is expected to be a count of ` +
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
