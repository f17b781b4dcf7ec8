/**
 * A method's options object, read once by a rule per option: the one walk
 * behind every argument check, from the client's door down to a pool's
 * constructor and `Connection.connect`. The first problem (not an object,
 * an unknown name with a "did you mean", a bad value, a read that threw)
 * is an {@linkcode InvalidArgumentError} naming the method and the
 * option's path, in the words of the checks in `validate.ts`. Cold paths
 * only: `Client.request` keeps its own allocation-free check.
 *
 * @module
 */

import { InvalidArgumentError, messageOf } from "../errors.ts";
import { nameShown, unknownOption } from "./suggest.ts";
import { inheritedNames } from "./option_names.ts";
// The checks the rule tables of every layer use; `duration` is a
// duration above 0, by the config's one rule.
export {
  bool,
  clientName,
  clock,
  func,
  integer,
  is,
  methods,
  ms as duration,
  serverName,
  signal,
  text,
  timeSource,
} from "./validate.ts";

/**
 * A rule for one option at `path` of a `method`'s options: a check of
 * `validate.ts`, or a nested object's rule that builds its own error.
 */
export type Rule = (
  value: unknown,
  path: string,
  method: string,
) => string | InvalidArgumentError | undefined;

/** The options a method takes, by name. */
export type Rules = Readonly<Record<string, Rule>>;

/** A nested options object, checked by its own `rules`. */
export const nested = (rules: Rules): Rule => (value, path, method) =>
  optionsError(method, value, rules, undefined, path);

/**
 * The first problem with `options` (at `path`) by `rules`, as the error of
 * `method`: not an object, an unknown name (own or inherited, as a read
 * would find it), a bad value, or a read that threw; `undefined` when
 * there is none. `undefined` options mean the defaults unless `required`
 * is given: then the object must be there, and so must the options it
 * names (`true`: every one). Each value read lands in `copy`.
 */
export function optionsError(
  method: string,
  options: unknown,
  rules: Rules,
  required?: readonly string[] | true,
  path = "options",
  copy: Record<string, unknown> = {},
): InvalidArgumentError | undefined {
  if (options === undefined && required === undefined) return;
  let at = path;
  let value = options;
  let expected: ReturnType<Rule>;
  let cause: unknown;
  try {
    // Inside the try: even Array.isArray throws for a revoked proxy.
    if (
      typeof options !== "object" || options === null ||
      Array.isArray(options)
    ) {
      expected = "expected an object of options";
      // A string in an object's place may be a connection string, with
      // its password: never quoted.
      if (typeof options === "string") value = "[redacted]";
    } else {
      const unknown = unknownName(options, rules);
      if (unknown !== undefined) {
        at = `${path}.${nameShown(unknown)}`;
        value = unknown;
        expected = unknownOption(unknown, Object.keys(rules));
      }
      // `in`, not Object.keys: no array per call for a pool's acquire.
      for (const key in rules) {
        if (expected !== undefined) break;
        at = `${path}.${key}`;
        value = copy[key] = (options as Record<string, unknown>)[key];
        expected = value !== undefined
          ? rules[key](value, at, method)
          : required === true || required?.includes(key)
          ? "required"
          : undefined;
      }
    }
  } catch (error) {
    value = options;
    expected = `could not be read (${messageOf(error)})`;
    cause = error;
  }
  return typeof expected === "string"
    ? refuse(method, at, value, expected, cause)
    : expected;
}

/**
 * The first name of `options` that `rules` do not know, as a read would
 * find it: own or inherited and enumerable, or a class's getter
 * ({@linkcode inheritedNames}; only looked for past a plain object).
 */
export function unknownName(
  options: object,
  rules: Rules,
): string | undefined {
  // `in`, not Object.keys: no array per call for a pool's acquire.
  for (const key in options) {
    if (!Object.hasOwn(rules, key)) return key;
  }
  for (const key of inheritedNames(options)) {
    if (!Object.hasOwn(rules, key)) return key;
  }
}

/**
 * The error of `method` about its `argument` (a parameter, or an option's
 * path): `value` is not what was `expected`, or reading it threw `cause`.
 */
export const refuse = (
  method: string,
  argument: string,
  value: unknown,
  expected: string,
  cause?: unknown,
): InvalidArgumentError =>
  new InvalidArgumentError(argument, value, expected, { method, cause });

/**
 * What `read()` returns when it is a number `ok` takes, else the error of
 * `method` about `options.${option}`, for what it returned or threw: for
 * a user's function called on a timer or a socket's data, where a throw
 * would escape and a NaN would never be due.
 */
export function readNumber(
  read: () => unknown,
  ok: (n: number) => boolean,
  method: string,
  option: string,
  expected: string,
): number | InvalidArgumentError {
  let value: unknown;
  try {
    value = read();
  } catch (error) {
    value = error;
  }
  return typeof value === "number" && ok(value)
    ? value
    : refuse(method, `options.${option}`, value, expected);
}

/** `random()`'s number in [0, 1), or `method`'s error for what it gave. */
export const readRandom = (
  random: () => number,
  method: string,
): number | InvalidArgumentError =>
  readNumber(
    random,
    (n) => n >= 0 && n < 1,
    method,
    "random",
    "expected a function returning [0, 1)",
  );

/**
 * `options` (at `path`) read once by `rules`, as a copy: each value read
 * once, inherited ones too, and checked unless `undefined` (see
 * {@linkcode optionsError} for `required`).
 *
 * @throws {InvalidArgumentError} naming `method` and the first problem.
 */
export function readOptions<T>(
  method: string,
  options: unknown,
  rules: Rules,
  required?: readonly string[] | true,
  path?: string,
): T {
  const copy = {};
  const error = optionsError(method, options, rules, required, path, copy);
  if (error) throw error;
  return copy as T;
}

/**
 * The error of `method` for `options` that a first look refused: the
 * problem `rules` find, or, when a second look finds none, a getter or
 * proxy that answers differently each time.
 */
export const refusal = (
  method: string,
  options: unknown,
  rules: Rules,
): InvalidArgumentError =>
  optionsError(method, options, rules) ?? changedWhileRead(method, options);

/**
 * Options valid on a second look though the first refused them: a getter
 * or proxy that answers differently each time.
 */
export function changedWhileRead(
  method: string,
  options: unknown,
): InvalidArgumentError {
  return refuse(
    method,
    "options",
    options,
    "its values changed while being read (a getter or proxy that answers " +
      "differently each time)",
  );
}
