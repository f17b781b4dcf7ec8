/**
 * The arguments of an event target's `addEventListener` and
 * `removeEventListener`, checked at the door of each SDK object that
 * dispatches events (the client, a pool, a manager) by the names it
 * dispatches.
 *
 * @module
 */

import { bool, readOptions, refuse, type Rules, signal } from "./options.ts";
import { isCallable } from "./validate.ts";

/** What `addEventListener` takes as options, read once into a copy. */
export interface ReadListenerOptions {
  /** Removed after it first runs. */
  once?: boolean;
  /** Removed when it aborts. */
  signal?: AbortSignal;
  /** Registered for the capture phase. */
  capture?: boolean;
  /** Will not call `preventDefault()`. */
  passive?: boolean;
}

const LISTENER_RULES: Rules = {
  once: bool,
  capture: bool,
  passive: bool,
  signal,
};

/**
 * Checks the arguments of `method` (an `addEventListener` or
 * `removeEventListener`): an event name among `names`, a function or
 * `handleEvent` object (or `null`, a no-op as for `EventTarget`), and
 * `boolean` or known options (on removal too, so the options given to the
 * add can be given again). Returns the options to go on with: a boolean or
 * `undefined` as given, an object read once into a copy (the event target
 * reads `capture`, `once`, `signal` and `passive` again, and a getter must
 * not be asked twice). A name nothing dispatches is refused: a listener
 * under a misspelt name would wait for ever, unheard.
 *
 * @throws {InvalidArgumentError} naming the bad argument.
 */
export function readListenerArguments(
  method: string,
  names: ReadonlySet<string>,
  type: unknown,
  listener: unknown,
  options: unknown,
): boolean | ReadListenerOptions | undefined {
  if (typeof type !== "string" || !names.has(type)) {
    throw refuse(
      method,
      "type",
      type,
      `expected an event name: ${[...names].join(", ")}`,
    );
  }
  let callable: boolean;
  try {
    callable = listener === null || isCallable(listener) ||
      (typeof listener === "object" &&
        typeof (listener as { handleEvent?: unknown }).handleEvent ===
          "function");
  } catch (error) {
    throw refuse(method, "listener", listener, "could not be read", error);
  }
  if (!callable) {
    throw refuse(
      method,
      "listener",
      listener,
      typeof listener === "function"
        ? "could not be read (a revoked proxy of a function?)"
        : "expected a function or an object with a handleEvent method",
    );
  }
  if (typeof options === "boolean" || options === undefined) return options;
  return readOptions(method, options, LISTENER_RULES);
}

/**
 * Reads the arguments of an object's `addEventListener` or
 * `removeEventListener` (`method`).
 */
export type ListenerDoor = (
  method: "addEventListener" | "removeEventListener",
  type: unknown,
  listener: unknown,
  options: unknown,
) => boolean | ReadListenerOptions | undefined;

/**
 * The door of `owner`'s listener methods (`owner` as errors name it:
 * `ConnectionPool`, `ConnectionManager`): {@linkcode readListenerArguments}
 * by the `names` it dispatches, the method named after its owner.
 */
export function listenerDoor(
  owner: string,
  names: ReadonlySet<string>,
): ListenerDoor {
  return (method, type, listener, options) =>
    readListenerArguments(`${owner}.${method}`, names, type, listener, options);
}
