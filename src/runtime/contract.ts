/**
 * What a custom runtime adapter hands the client is checked against its
 * contract before it is used: a value that is not what the adapter's type
 * says gets a typed error naming what is missing, not a TypeError from
 * deep inside the first call made on it.
 *
 * @module
 */

/** Why a value breaks the contract, and what threw while checking it. */
export interface ContractProblem {
  /** What is wrong, as a clause: "it has no write() method". */
  readonly wrong: string;
  /**
   * What a getter or a proxy's trap threw, if that is why: the key is
   * there only then (even for a thrown `undefined`).
   */
  readonly cause?: unknown;
}

/**
 * Why `value` is not an object with every method in `names`, or undefined
 * when it is. Each name is read once; a read that throws is the problem.
 * `callable` says what counts as a method (by default a `typeof`
 * function; a stricter rule may also refuse a revoked proxy).
 */
export function missingMethod(
  value: unknown,
  names: readonly string[],
  callable: (method: unknown) => boolean = isFunction,
): ContractProblem | undefined {
  if (typeof value !== "object" || value === null) {
    return { wrong: "it is no object" };
  }
  for (const name of names) {
    try {
      if (!callable((value as Record<string, unknown>)[name])) {
        return { wrong: `it has no ${name}() method` };
      }
    } catch (cause) {
      return { wrong: `its ${name} could not be read`, cause };
    }
  }
  return undefined;
}

const isFunction = (method: unknown) => typeof method === "function";

/**
 * The peer's address as `channel` reports it, or undefined when it does
 * not: also when a custom channel's `remoteAddress` cannot be read (its
 * getter throws) or is no address (no text hostname, no port from 0 to
 * 65535). Read once, and handed out as a fresh object, so that what the
 * caller gets is what was checked.
 */
export function reportedAddress(
  channel: { readonly remoteAddress: unknown },
): { hostname: string; port: number } | undefined {
  try {
    const value = channel.remoteAddress as
      | { hostname: unknown; port: unknown }
      | null
      | undefined;
    if (typeof value !== "object" || value === null) return undefined;
    const { hostname, port } = value;
    return typeof hostname === "string" && hostname !== "" &&
        Number.isInteger(port) && (port as number) >= 0 &&
        (port as number) <= 65535
      ? { hostname, port: port as number }
      : undefined;
  } catch {
    // A getter or a proxy's trap threw: the channel reports nothing usable.
    return undefined;
  }
}

/**
 * The bytes `channel` says it has queued, or 0 when it says nothing
 * usable: also when a custom channel's `bufferedAmount` cannot be read
 * (its getter throws) or is no positive number (a string `"12"` would
 * have been concatenated, not added).
 */
export function reportedQueuedBytes(
  channel: { readonly bufferedAmount: unknown },
): number {
  let queued: unknown;
  try {
    queued = channel.bufferedAmount;
  } catch {
    // Not on the request path: a gauge read, which must not fail.
    queued = 0;
  }
  return typeof queued === "number" && queued > 0 ? queued : 0;
}
