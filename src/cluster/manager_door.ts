/**
 * What `new ConnectionManager()` checks before it builds anything: a
 * resolved config, an adapter, and connection options by the rules of
 * `Connection.connect`; and the arguments of its health marks, of its
 * listeners and the signal of its `connect()`. Without
 * it a raw config or a missing adapter failed with a TypeError from deep
 * inside, or with another method's name, and a bad connection option
 * only at the first connect.
 *
 * @module
 */

import type { ConnectionOptions } from "../connection/connection.ts";
import { CONNECT } from "../connection/control.ts";
import { type ListenerDoor, listenerDoor } from "../config/listeners.ts";
import { methods, readOptions, refuse, signal } from "../config/options.ts";
import { isResolvedConfig } from "../config/resolve.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";
import { MANAGER_EVENT_NAMES } from "./events.ts";

const METHOD = "new ConnectionManager()";

/** Whether the adapter has what a manager calls. */
const adapterRule = methods("connect");

/**
 * The connection options, read once (a copy); the config and adapter as
 * given, once checked.
 *
 * @throws {InvalidArgumentError} naming the argument, or the option's
 *   path in `connectionOptions`.
 */
export function readManagerArguments(
  config: unknown,
  adapter: unknown,
  connectionOptions: unknown,
): Partial<ConnectionOptions> {
  // Not re-validated: only a config resolveConfig() made (frozen) is
  // taken, so a field edited by hand cannot reach the manager at all.
  if (!isResolvedConfig(config)) {
    throw refuse(
      METHOD,
      "config",
      config,
      "expected a ResolvedConfig as resolveConfig() returns it (a copy, a " +
        "proxy or an object built by hand is none: change the " +
        "ConnectionConfig and resolve it again)" +
        // Only a resolveConfig() freezes a whole config: the caller may
        // have done just that, with another copy's resolveConfig().
        (frozenObject(config)
          ? "; this one is frozen, as a config another loaded copy of " +
            "@nodewire/client resolved is, which this copy does not know: " +
            "resolve it with the copy that builds the manager, or load one " +
            "copy only"
          : ""),
    );
  }
  checkAdapter(adapter);
  const read = readOptions<Record<string, unknown>>(
    METHOD,
    connectionOptions === undefined ? {} : connectionOptions,
    CONNECT,
    undefined,
    "connectionOptions",
  );
  // Left out, not set to undefined: spread over the manager's own
  // options, an undefined would replace them.
  return Object.fromEntries(
    Object.entries(read).filter(([, value]) => value !== undefined),
  ) as Partial<ConnectionOptions>;
}

/** Whether `value` is a frozen object (a revoked proxy is not). */
function frozenObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  try {
    return Object.isFrozen(value);
  } catch {
    return false;
  }
}

/**
 * Refuses an adapter without `connect`, or whose optional parts (read
 * when the handshake is built) cannot be read or are of the wrong kind.
 */
function checkAdapter(adapter: unknown): void {
  let argument = "adapter";
  let wrong: string | undefined;
  let cause: unknown;
  try {
    wrong = adapterRule(adapter);
    if (wrong === undefined) {
      const { datagram, supportsTls } = adapter as RuntimeAdapter;
      if (datagram !== undefined && typeof datagram !== "function") {
        argument = "adapter.datagram";
        wrong = "expected a function or undefined";
      } else if (
        supportsTls !== undefined && typeof supportsTls !== "boolean"
      ) {
        argument = "adapter.supportsTls";
        wrong = "expected true, false or undefined";
      }
    }
  } catch (thrown) {
    wrong = "could not be read";
    cause = thrown;
  }
  if (wrong !== undefined) {
    throw refuse(METHOD, argument, adapter, wrong, cause);
  }
}

/**
 * The checks of `markNodeUnhealthy` and `markNodeHealthy` (`method`): an
 * address and a reason that are strings. A reason that is none would
 * reach the events, the log (where building its line threw, uncaught,
 * for a symbol or a throwing `toString`) and the pool's clear error.
 *
 * @throws {InvalidArgumentError} naming `address` or `reason`.
 */
export function checkMarkArguments(
  method: string,
  address: unknown,
  reason: unknown,
): void {
  if (typeof address !== "string") {
    throw refuse(method, "address", address, "expected a string (host:port)");
  }
  if (typeof reason !== "string") {
    throw refuse(method, "reason", reason, "expected a string");
  }
}

/**
 * Refuses a `connect()` signal that is no `AbortSignal`: read as one, a
 * string failed every node's first connection (each marked unhealthy)
 * and a throwing `aborted` getter escaped raw.
 *
 * @throws {InvalidArgumentError} naming `signal`.
 */
export function checkConnectSignal(value: unknown): void {
  if (value === undefined) return;
  const wrong = signal(value);
  if (wrong !== undefined) {
    throw refuse("ConnectionManager.connect", "signal", value, wrong);
  }
}

/**
 * Reads the arguments of the manager's `addEventListener` and
 * `removeEventListener`, checked against the names it dispatches.
 *
 * @throws {InvalidArgumentError} naming the bad argument.
 */
export const readManagerListener: ListenerDoor = listenerDoor(
  "ConnectionManager",
  MANAGER_EVENT_NAMES,
);

/**
 * Refuses what the booking methods (`recordRequestSuccess`,
 * `recordRequestFailure`, `recordLatency`) cannot book: a `node` that is
 * no object (read as a node, it failed with a TypeError from inside), a
 * `count` that is no integer of 0 or more (added to the node's counts, a
 * NaN or a fraction spoilt them for good), a time that is no number (a
 * string was subtracted as one). A node object that is no member any
 * more (removed) is the method's to ignore.
 *
 * @throws {InvalidArgumentError} naming the argument.
 */
export function checkBooking(
  method: string,
  node: unknown,
  count: unknown = 1,
  started: unknown = 0,
  now: unknown = 0,
): void {
  const at = `ConnectionManager.${method}`;
  if (typeof node !== "object" || node === null) {
    throw refuse(at, "node", node, "expected a node of this manager");
  }
  if (!Number.isSafeInteger(count) || (count as number) < 0) {
    throw refuse(at, "count", count, "expected an integer of 0 or more");
  }
  if (typeof started !== "number") {
    throw refuse(at, "started", started, "expected a number (ms)");
  }
  if (typeof now !== "number") {
    throw refuse(at, "now", now, "expected a number (ms)");
  }
}
