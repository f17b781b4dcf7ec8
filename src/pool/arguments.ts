/**
 * A pool's options, an acquire's (`tryAcquireShared` takes none) and its
 * listeners' arguments, read once and refused with an
 * `InvalidArgumentError` naming the option before anything changes.
 *
 * @module
 */

import {
  bool,
  clock,
  duration,
  func,
  is,
  readOptions,
  signal,
} from "../config/options.ts";
import { type ListenerDoor, listenerDoor } from "../config/listeners.ts";
import { durationProblem } from "../config/validate.ts";
import type { InvalidArgumentError } from "../errors.ts";
import { POOL_EVENTS } from "./events.ts";
import type {
  AcquireOptions,
  ConnectionPoolOptions,
  PoolableConnection,
} from "./types.ts";

/**
 * The node as `host:port` (`[v6]:port`), as the pool's errors and events
 * name it: a label without a port showed as `labe:NaN` in a
 * ConnectTimeoutError.
 */
const hostPort = is(
  (v) =>
    typeof v === "string" && /^(\[[^\]]+\]|[^:[\]]+):\d{1,5}$/.test(v) &&
    +v.slice(v.lastIndexOf(":") + 1) <= 65535,
  "expected the node as host:port ([ipv6]:port for IPv6), port 0 to 65535",
);

const POOL = {
  address: hostPort,
  config: () => undefined, // resolvePoolConfig's to check
  factory: func,
  clock,
  random: func,
  heartbeat: func,
  createTimeoutMs: duration,
};
const ACQUIRE = {
  signal,
  // 0 allowed: a connection only if one is free at once.
  timeoutMs: (value: unknown) => durationProblem(value, { allowZero: true }),
  ignoreBackoff: bool,
};
const NO_OPTIONS: AcquireOptions = Object.freeze({});

/**
 * `new ConnectionPool()`'s options, read once and checked.
 *
 * @throws {InvalidArgumentError} naming the option.
 */
export function readPoolOptions<C extends PoolableConnection>(
  options: unknown,
): ConnectionPoolOptions<C> {
  return readOptions("new ConnectionPool()", options, POOL, [
    "address",
    "factory",
  ]);
}

/**
 * An acquire's options (of `method`), read once and checked; or the error
 * to reject with.
 */
export function readAcquireOptions(
  method: string,
  options: unknown,
): AcquireOptions | InvalidArgumentError {
  if (options === undefined) return NO_OPTIONS;
  try {
    return readOptions<AcquireOptions>(method, options, ACQUIRE);
  } catch (error) {
    return error as InvalidArgumentError;
  }
}

/**
 * Reads the arguments of the pool's `addEventListener` and
 * `removeEventListener`, checked against the names it dispatches.
 *
 * @throws {InvalidArgumentError} naming the bad argument.
 */
export const readPoolListener: ListenerDoor = listenerDoor(
  "ConnectionPool",
  POOL_EVENTS,
);
