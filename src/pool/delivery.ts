/**
 * Checking what a pool's factory delivered before the pool takes it in,
 * the error that names a bad delivery, and letting go of one. Apart from
 * the opener because it judges a foreign object, not the opener's state.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { foreignText } from "../errors/base.ts";
import { uncounted } from "./load.ts";
import { destroyQuietly, noop } from "./quiet_close.ts";
import type { Roster } from "./roster.ts";
import type { PoolableConnection } from "./types.ts";

/**
 * Why the factory's delivery `conn` cannot be taken in, or `undefined`: no
 * `PoolableConnection`, one the pool `held` already, or one whose
 * `inFlight` is no count (that one destroyed, its `closed` handled).
 */
export function refusal<C extends PoolableConnection>(
  conn: C,
  held: boolean,
): Error | undefined {
  const bad = unpoolable(conn, held);
  if (bad !== undefined) return bad;
  // Never chosen, it would stand in for a connection: callers waited
  // out their timeout for it (NaN), or took it for idle (-1).
  const uncountable = uncounted(conn);
  if (uncountable !== undefined) {
    destroyQuietly(conn, uncountable);
    conn.closed.then(noop, noop);
  }
  return uncountable;
}

/**
 * Lets go of `conn`, a delivery that threw `cause` as the pool took it in:
 * dropped as broken if the roster admitted it already, else destroyed.
 * Returns the error its open fails with.
 */
export function dropUntakable<C extends PoolableConnection>(
  roster: Roster<C>,
  conn: C,
  cause: unknown,
): Error {
  const error = invalid(
    "factory",
    conn,
    `expected a PoolableConnection whose parts can be used; this one ` +
      `could not be taken in (it threw ${foreignText(cause)})`,
    cause,
  );
  const entry = roster.entries.get(conn);
  if (entry !== undefined) roster.dropBroken(entry, error);
  else destroyQuietly(conn, error);
  return error;
}

/**
 * Why a factory's delivery cannot be pooled (no `PoolableConnection`, or
 * one the pool `held` already), or `undefined`.
 */
function unpoolable(conn: unknown, held: boolean): Error | undefined {
  let ok = false;
  try {
    const c = conn as Record<keyof PoolableConnection, unknown>;
    ok = typeof c.id === "number" && typeof c.inFlight === "number" &&
      typeof c.isOpen === "boolean" && typeof c.close === "function" &&
      typeof c.destroy === "function" &&
      typeof (c.closed as Promise<unknown>).then === "function";
  } catch {
    // Nothing to rely on: null, or a getter threw.
  }
  return ok && !held ? undefined : invalid(
    "factory",
    conn,
    "expected to resolve with a PoolableConnection the pool does not hold",
  );
}

/**
 * The `InvalidArgumentError` for the pool's `option`, whose `value` is not
 * what was `expected`, naming `ConnectionPool` as the method.
 */
function invalid(
  option: string,
  value: unknown,
  expected: string,
  cause?: unknown,
): Error {
  return new InvalidArgumentError(`options.${option}`, value, expected, {
    method: "ConnectionPool",
    cause,
  });
}
