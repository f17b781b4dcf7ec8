/**
 * The one vocabulary of checks on user input, and the configuration's use
 * of it. A {@linkcode Check} turns a value into what it was expected to be
 * (the `expected` text of an error) or `undefined` when the value passes,
 * so a rule is written once and says the same words wherever it runs: here
 * for the client's configuration, thrown as a {@linkcode ConfigError}
 * naming the field; in `options.ts` for a method's options, as an
 * `InvalidArgumentError` naming the option. Durations and numbers are
 * validated here and nowhere else, so one field means the same thing
 * wherever it is read.
 *
 * @module
 */

import { ConfigError, messageOf, NodewireError } from "../errors.ts";
import { rejectUnknownKeys } from "./option_names.ts";
import { missingMethod } from "../runtime/contract.ts";
import { MAX_NODE_ID_BYTES, nodeIdProblem } from "../protocol/node_id.ts";
import { isHostName } from "./host_name.ts";

/**
 * The longest delay a runtime timer can hold: 2^31 - 1 ms, about 24.8 days.
 * Deno, Bun and Node store `setTimeout` delays as signed 32-bit integers; a
 * longer one overflows and fires at once (Node warns), which would turn a
 * "wait a long time" into a busy loop.
 */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

/**
 * What {@linkcode duration} accepts besides a finite number of milliseconds
 * in `(0, MAX_TIMER_DELAY_MS]`.
 */
export interface DurationOptions {
  /**
   * Accept 0, for fields where 0 means "off" or "never" (an idle timeout,
   * a lifetime, a heartbeat interval) or "at once" (a backoff, a wait).
   * Default false: the value must be above 0.
   */
  allowZero?: boolean;
}

/**
 * Whether `value` is a duration: a number (not a string, not `NaN`, not
 * ±`Infinity`) of milliseconds above 0 (or 0 with `allowZero`) and at
 * most {@linkcode MAX_TIMER_DELAY_MS}. The one rule for every duration,
 * in the config and per call; it allocates nothing, for the request path.
 */
export function isDuration(
  value: unknown,
  allowZero = false,
): value is number {
  return typeof value === "number" &&
    (allowZero ? value >= 0 : value > 0) && value <= MAX_TIMER_DELAY_MS;
}

/**
 * What is wrong with a value, as the `expected` text of an error about
 * it, or `undefined` when nothing is.
 */
export type Check = (value: unknown) => string | undefined;

/** A check from a test and the words for a value that fails it. */
export const is =
  (ok: (value: unknown) => boolean, expected: string): Check =>
  (
    value,
  ) => ok(value) ? undefined : expected;

/**
 * The duration check (see {@linkcode isDuration}): what a duration is
 * expected to be, as the `expected` text of an error about `value`, or
 * `undefined` when `value` is one. Errors of any class use it, so a
 * config field and a per-call option are refused in the same words.
 */
export function durationProblem(
  value: unknown,
  options: DurationOptions = {},
): string | undefined {
  const allowZero = options.allowZero === true;
  return isDuration(value, allowZero)
    ? undefined
    : typeof value === "number" && value > MAX_TIMER_DELAY_MS &&
        value < Infinity
    ? `expected at most ${MAX_TIMER_DELAY_MS} ms (2^31 - 1, the longest ` +
      "delay a timer can hold; a longer one fires at once)"
    : `expected a finite number of milliseconds ${allowZero ? "≥" : ">"} 0`;
}

/** A duration above 0 (see {@linkcode isDuration}). */
export const ms: Check = (value) => durationProblem(value);

const ZERO_ALLOWED: DurationOptions = Object.freeze({ allowZero: true });

/** A duration of 0 or more: 0 for "off", "never" or "at once". */
export const msOrZero: Check = (value) => durationProblem(value, ZERO_ALLOWED);

/** `true` or `false`, nothing truthy or falsy in their place. */
export const bool: Check = is(
  (v) => typeof v === "boolean",
  "expected true or false",
);

/**
 * Whether `value` is a function that can be called: `typeof` says
 * "function" of a revoked proxy of one too, whose every call throws a
 * TypeError (so does a proxy whose `getPrototypeOf` trap throws).
 */
export function isCallable(
  value: unknown,
): value is (...args: never[]) => unknown {
  if (typeof value !== "function") return false;
  try {
    Reflect.getPrototypeOf(value);
    return true;
  } catch {
    return false;
  }
}

/** A function that can be called ({@linkcode isCallable}). */
export const func: Check = is(isCallable, "expected a function");

/** A non-empty string. */
export const text: Check = is(
  (v) => typeof v === "string" && v !== "",
  "expected a non-empty string",
);

/**
 * What a TLS server name may be (the name sent in SNI and looked for in the
 * certificate), as an entry of `hosts` holds a host: an RFC 1123 host name
 * (letters, digits, `-`, and `_` for container service names) of at most
 * 253 characters, an IPv4 address, or an IPv6 address with an optional
 * zone; no port, no brackets. A NUL, a control character or thousands of
 * characters reached a custom adapter's TLS unchecked.
 */
export const serverName: Check = (value) =>
  typeof value === "string" && isHostName(value)
    ? undefined
    : "expected a DNS name of at most 253 characters or an IP address, " +
      "without a port or brackets";

/**
 * A client name by the node id's rule (1 to 255 UTF-8 bytes, each
 * character one that shows as it is): it travels in every HELLO, where a
 * huge one made every connect fail as "frame too large", blamed on the
 * node, and it is written to the node's logs, where a control character
 * would forge or hide lines.
 */
export const clientName: Check = (value) => {
  const problem = text(value);
  if (problem !== undefined) return problem;
  const wrong = nodeIdProblem(value as string);
  return wrong === undefined
    ? undefined
    : `expected a name of 1 to ${MAX_NODE_ID_BYTES} UTF-8 bytes with no control or format character (it ${wrong})`;
};

/**
 * A real `AbortSignal`, as the runtime made it: its prototype is
 * `AbortSignal.prototype` itself, its own `aborted` getter answers (it
 * throws for an object that only borrowed the prototype), and no own
 * property stands in for its state (`aborted`, `reason`), which the SDK
 * reads long after the door let the signal in: a getter put there that
 * throws would escape raw from deep inside the call. (Its listener
 * methods may be wrapped, to count listeners for one.)
 */
export function isAbortSignal(value: unknown): value is AbortSignal {
  try {
    return typeof value === "object" && value !== null &&
      Object.getPrototypeOf(value) === AbortSignal.prototype &&
      typeof (value as AbortSignal).aborted === "boolean" &&
      !Object.hasOwn(value, "aborted") && !Object.hasOwn(value, "reason");
  } catch {
    // The getter's brand check refused it (or a proxy's trap threw).
    return false;
  }
}

/** A real `AbortSignal` (see {@linkcode isAbortSignal}). */
export const signal: Check = is(
  isAbortSignal,
  "expected an AbortSignal (as the runtime made it: not one that borrowed " +
    "its prototype or has its aborted or reason replaced)",
);

/**
 * A number in `[min, max]` (`(min, max]` when `above`) that passes `ok`
 * (by default a finite one), `kind` saying what it is in the error: every
 * numeric rule, integers included, so that a range reads the same
 * everywhere (`in 1–65535`, `≥ 0`, `> 0 and ≤ 1`). `NaN` never passes.
 */
export function numberIn(
  min = -Infinity,
  max = Infinity,
  ok: (value: number) => boolean = Number.isFinite,
  kind = "a finite number",
  above = false,
): Check {
  const upper = max === Infinity ? "" : `≤ ${max}`;
  return is(
    (v) =>
      typeof v === "number" && ok(v) && (above ? v > min : v >= min) &&
      v <= max,
    `expected ${kind} ${
      min === -Infinity
        ? upper
        : above
        ? `> ${min}${upper && ` and ${upper}`}`
        : upper
        ? `in ${min}–${max}`
        : `≥ ${min}`
    }`.trimEnd(),
  );
}

/** An integer in `[min, max]`; no upper bound by default. */
export const integer = (min: number, max?: number): Check =>
  numberIn(min, max, Number.isInteger, "an integer");

/** One of `options`, listed in the error. */
export const oneOf = (options: readonly string[]): Check =>
  is(
    (v) => options.includes(v as string),
    `expected one of "${options.join('", "')}"`,
  );

/**
 * An object with these methods (a clock, an adapter), by the one rule of
 * `missingMethod`, each one that can be called ({@linkcode isCallable}): a
 * revoked proxy of a function would pass `typeof`, and throw at its first
 * call, deep inside. What a getter threw is thrown on, for the caller's
 * "could not be read".
 */
export const methods = (...names: string[]): Check => {
  const expected = `expected an object with ${names.join(", ")}`;
  return (v) => {
    const problem = missingMethod(v, names, isCallable);
    if (problem === undefined) return undefined;
    if ("cause" in problem) throw problem.cause;
    return expected;
  };
};

const clockMethods = methods("now", "setTimeout", "clearTimeout");

/**
 * A clock: `now`, `setTimeout` and `clearTimeout`, and a `now()` that can
 * be called and reads as a finite number of ms. Read once here, so that a
 * method taken off its object (`{ now: performance.now }` throws so on
 * Node) or one that gives NaN or a string is refused at the door, not
 * met as a raw TypeError, or a wait that never ends, deep inside.
 */
export const clock: Check = (value) =>
  clockMethods(value) ?? readingProblem(value);

const nowMethod = methods("now");

/**
 * What reads the time and nothing more (a balancer's clock): a `now()`
 * that can be called and reads as a finite number of ms, as for
 * {@linkcode clock}.
 */
export const timeSource: Check = (value) =>
  nowMethod(value) ?? readingProblem(value);

/** What is wrong with `value.now()`'s reading, or undefined. */
function readingProblem(value: unknown): string | undefined {
  let now: unknown;
  try {
    now = (value as { now(): unknown }).now();
  } catch (error) {
    return `expected a clock whose now() can be called (it threw ${
      messageOf(error)
    })`;
  }
  return typeof now === "number" && Number.isFinite(now)
    ? undefined
    : `expected a clock whose now() returns a finite number of ms (it ` +
      `returned ${messageOf(now)})`;
}

/**
 * `value`, typed, when `check` passes it.
 *
 * @throws {ConfigError} naming `field`, the value and what was expected.
 */
export function checked<T>(field: string, value: unknown, check: Check): T {
  const expected = check(value);
  if (expected === undefined) return value as T;
  throw new ConfigError(field, value, expected);
}

/**
 * `value` checked by `check`, or `fallback` when it is `undefined`. A
 * `null` is checked, and refused: a default would hide the mistake.
 *
 * @throws {ConfigError} naming `field`, the value and what was expected.
 */
export function optional<T>(
  field: string,
  value: unknown,
  check: Check,
  fallback?: T,
): T {
  return value === undefined ? fallback as T : checked(field, value, check);
}

/**
 * Validates a duration in milliseconds; see {@linkcode isDuration} for
 * what is accepted.
 *
 * @throws {ConfigError} naming `field`, for anything else.
 */
export function duration(
  field: string,
  value: unknown,
  options: DurationOptions = {},
): number {
  return checked(field, value, options.allowZero ? msOrZero : ms);
}

/**
 * Checks that a config section is an object with only the keys of
 * `defaults`, and returns `defaults` overlaid with its defined values,
 * each checked by its rule in `rules` (in their order) unless it is
 * `undefined` (a field without a default).
 *
 * @throws {ConfigError} for a non-object, an unknown key or a bad value,
 *   naming the field as `name.key`.
 */
export function section<T extends object>(
  name: string,
  value: Partial<T> | undefined,
  defaults: Readonly<T>,
  rules: { readonly [K in keyof T]?: Check } = {},
): T {
  const merged = { ...defaults } as Record<string, unknown>;
  if (value !== undefined) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ConfigError(name, value, "expected an object");
    }
    const known = Object.keys(defaults);
    rejectUnknownKeys(name, value, new Set(known));
    // Each known field read as `value.key` reads it, once: Object.entries
    // saw only own enumerable ones, so a non-enumerable, inherited or
    // class-getter field was dropped for its default without a word.
    for (const key of known) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) merged[key] = v;
    }
  }
  for (const [key, check] of Object.entries(rules)) {
    const v = merged[key];
    if (v !== undefined) checked(`${name}.${key}`, v, check as Check);
  }
  return merged as T;
}

/**
 * `read()`, over a caller's `value`: what it throws that is not a
 * NodewireError (a getter, a revoked proxy's trap) becomes a ConfigError
 * naming `field`, with what was thrown as its cause. What cannot be read
 * is not a configuration, and the caller gets the typed error promised.
 */
export function readable<T>(field: string, value: unknown, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof NodewireError) throw error;
    throw new ConfigError(
      field,
      value,
      `could not be read (${messageOf(error)})`,
      { cause: error },
    );
  }
}
