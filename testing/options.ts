/**
 * Option checks for the test kit's entry points: an unknown name (a typo
 * such as `prot` for `port`) or a value of the wrong kind (NaN for a
 * delay, a string for a port) is a {@linkcode ConfigError}, as it is in a
 * client's configuration, never silently ignored.
 *
 * @module
 */

import { integer, methods } from "../src/config/options.ts";
import type { Check as Rule } from "../src/config/validate.ts";
import { durationProblem } from "../src/config/validate.ts";
import { rejectUnknownKeys } from "../src/config/option_names.ts";
import { ConfigError, InvalidArgumentError } from "../src/errors.ts";
import { printable, quoted } from "../src/errors/base.ts";
import { nodeIdProblem } from "../src/protocol/node_id.ts";
import { isProtocolType } from "../src/protocol_type.ts";

/**
 * The names an options type takes, as a record keyed by every one of them,
 * so that the compiler refuses a list that misses one:
 * `const NAMES: OptionNames<TestNodeOptions> = { port: integer(0, 65535), ... }`.
 * `true` takes any value; a rule checks one that is not `undefined`.
 */
export type OptionNames<T> = Readonly<Record<keyof T, true | Rule>>;

/** A port number, 0 for a free one. */
export const port: Rule = integer(0, 65535);
const RUNTIMES: readonly string[] = ["deno", "bun", "node", "memory"];
/** The runtime's name, or an adapter. */
export const runtime: Rule = (v) =>
  typeof v !== "string"
    ? methods("listen", "connect")(v)
    // Checked here, so that the error names the option: getAdapter's
    // named only "runtime".
    : RUNTIMES.includes(v)
    ? undefined
    : 'expected "deno", "bun", "node", "memory" or an adapter';
/** A clock. */
export const clock: Rule = methods("now", "setTimeout", "clearTimeout");
/** A delay in ms: 0 is none. */
export const delay: Rule = (v) => durationProblem(v, { allowZero: true });
/**
 * A node's id, by the rule the client reads HELLO_OK with: a node the kit
 * starts is one a client accepts. The CLI's `node --id` is checked by this
 * rule too.
 */
export const nodeId: Rule = (v) => {
  const sized = "expected a non-empty string of at most 255 UTF-8 bytes";
  if (typeof v !== "string") return sized;
  if (nodeIdProblem(v) === undefined) return undefined;
  return printable(v) === v
    ? sized
    : "expected no control or format characters";
};
/**
 * The protocols a node serves, by a client's rule for its `protocols`:
 * empty, the node could serve nothing and every connect would fail far
 * from the option; a protocol given twice is refused as a slip, as the
 * client refuses it.
 */
export const protocols: Rule = (v) => {
  if (!Array.isArray(v) || v.length === 0 || !v.every(isProtocolType)) {
    return 'expected a non-empty array of "tls", "tcp" and "udp"';
  }
  const repeat = v.findIndex((p, i) => v.indexOf(p) !== i);
  return repeat === -1
    ? undefined
    : `duplicate protocol ${quoted(v[repeat])} at [${repeat}]`;
};
/** A count of bytes or things: 0 is none. */
export const count: Rule = integer(0, Number.MAX_SAFE_INTEGER);
/** Options whose value is never shown in an error. */
const SECRETS = new Set(["credentials", "key"]);

/** More items than any list option of the kit takes. */
const MAX_ITEMS = 1024;
const TOO_LONG = Symbol("too long");

/**
 * A copy of `list`, holes as `undefined`; {@linkcode TOO_LONG} past
 * {@linkcode MAX_ITEMS}, rather than walking (or spreading, which ends the
 * process) a sparse array four billion long.
 */
function listed(list: unknown[]): unknown[] | typeof TOO_LONG {
  const length = list.length;
  return length <= MAX_ITEMS
    ? Array.from({ length }, (_, i) => list[i])
    : TOO_LONG;
}

/**
 * Checks that `options` is `undefined` or an object whose names are all in
 * `known` and whose values pass their rules (with `required`, `undefined`
 * is refused too, and so is an option in `needs` left out). `name` says
 * whose options they are, in the error.
 *
 * Returns the options read once, as a copy (`{}` for `undefined`): each
 * value is read once and an array is copied before its rule checks it, so
 * the caller goes on with what was checked, and a getter that would answer
 * differently later is never asked again. An option given as `undefined`
 * stays in the copy: `setFaults` tells it from one not given.
 *
 * @throws {ConfigError} naming the first unknown option and the known one
 *   it most likely misspells, or the first bad value.
 */
export function checkOptions<T>(
  name: string,
  options: unknown,
  known: Readonly<Record<string, true | Rule>>,
  { required = false, needs = [] }: {
    required?: boolean;
    needs?: readonly string[];
  } = {},
): T {
  const copy: Record<string, unknown> = {};
  if (options === undefined && !required) return copy as T;
  let at = name;
  try {
    // Inside the try: even Array.isArray throws for a revoked proxy.
    if (
      typeof options !== "object" || options === null ||
      Array.isArray(options)
    ) {
      throw new ConfigError(name, options, "expected an object of options");
    }
    rejectUnknownKeys(name, options, new Set(Object.keys(known)));
    for (const [key, rule] of Object.entries(known)) {
      at = `${name}.${key}`;
      const read = (options as Record<string, unknown>)[key];
      const value = Array.isArray(read) ? listed(read) : read;
      const problem = value === undefined
        ? needs.includes(key) ? "required" : undefined
        : value === TOO_LONG
        ? `expected at most ${MAX_ITEMS} items`
        : rule === true
        ? undefined
        : rule(value);
      if (problem !== undefined) {
        const shown = SECRETS.has(key) ? "[redacted]" : read;
        throw new ConfigError(at, shown, problem);
      }
      if (value !== undefined || Object.hasOwn(options, key)) {
        copy[key] = value;
      }
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(at, options, "could not be read", {
      cause: error,
    });
  }
  return copy as T;
}

/** Options an entry point checked: the only ones its class takes. */
const CHECKED = new WeakSet<object>();

/** `options`, checked by the caller, for its class's constructor. */
export function checked<T extends object>(options: T): T {
  CHECKED.add(options);
  return options;
}

/**
 * @throws {InvalidArgumentError} of `method` unless `options` came from
 *   {@linkcode checked}: the class is built by `entry`, which checks them.
 */
export function refuseUnchecked(
  options: unknown,
  method: string,
  entry: string,
): void {
  if (!CHECKED.has(options as object)) {
    throw new InvalidArgumentError("options", options, `call ${entry}`, {
      method,
    });
  }
}
