/**
 * The small engine behind the argument checks of the client layer: a rule
 * per option name, and a walk over an options object that reports its
 * first problem (not an object, an unknown name with a "did you mean", a
 * bad value, a read that threw) as an {@linkcode InvalidArgumentError}.
 * Built for the cold paths; `Client.request` has its own allocation-free
 * check (arguments.ts).
 *
 * @module
 */

import { durationProblem } from "../config/validate.ts";
import { unknownOption } from "../config/suggest.ts";
import { InvalidArgumentError, messageOf } from "../errors.ts";

/** What is wrong at `path`, in the words of an error. */
export interface Problem {
  /** The option's path, such as `options.timeoutMs`. */
  path: string;
  /** The bad value, rendered into the message. */
  value: unknown;
  /** What was expected. */
  expected: string;
  /** What reading the value threw, if it did. */
  cause?: unknown;
}

/**
 * A rule for one option at `path`: what it should be, or `undefined` when
 * it is; a nested object's rule reports its own problem.
 */
export type Rule = (
  value: unknown,
  path: string,
) => string | Problem | undefined;

/** The options a method takes, by name. */
export type Rules = Readonly<Record<string, Rule>>;

/** A duration above 0, by the config's one rule. */
export const duration: Rule = (value) => durationProblem(value);

/** `true` or `false`, nothing truthy or falsy in their place. */
export const boolean: Rule = (value) =>
  typeof value === "boolean" ? undefined : "expected true or false";

/** A real `AbortSignal`. */
export const signal: Rule = (value) =>
  isAbortSignal(value) ? undefined : "expected an AbortSignal";

/** A function. */
export const func: Rule = (value) =>
  typeof value === "function" ? undefined : "expected a function";

/** A non-empty string. */
export const text: Rule = (value) =>
  typeof value === "string" && value !== ""
    ? undefined
    : "expected a non-empty string";

/** An integer within `[min, max]`. */
export function integer(min: number, max: number): Rule {
  return (value) =>
    Number.isInteger(value) && (value as number) >= min &&
      (value as number) <= max
      ? undefined
      : `expected an integer in ${min}–${max}`;
}

/** An object with these methods (a clock, an adapter). */
export function objectWith(...methods: string[]): Rule {
  return (value) =>
    typeof value === "object" && value !== null &&
      methods.every((m) =>
        typeof (value as Record<string, unknown>)[m] === "function"
      )
      ? undefined
      : `expected an object with ${methods.join(", ")}`;
}

/** A nested options object, checked by its own `rules`. */
export function nested(rules: Rules): Rule {
  return (value, path) => problemOf(value, rules, path);
}

/**
 * A real `AbortSignal`: `instanceof` for the type, and its own `aborted`
 * getter, which throws for an object that only borrowed the prototype.
 */
export function isAbortSignal(value: unknown): value is AbortSignal {
  try {
    return value instanceof AbortSignal &&
      typeof (value as AbortSignal).aborted === "boolean";
  } catch {
    // The getter's brand check refused it (or a proxy's trap threw).
    return false;
  }
}

/**
 * The first problem with `options` by `rules`, as the error of `method`,
 * or `undefined` when there is none. `undefined` options mean the
 * defaults.
 */
export function optionsError(
  method: string,
  options: unknown,
  rules: Rules,
  path = "options",
): InvalidArgumentError | undefined {
  const problem = problemOf(options, rules, path);
  return problem === undefined ? undefined : problemError(method, problem);
}

/** `problem` as the error of `method`. */
export function problemError(
  method: string,
  problem: Problem,
): InvalidArgumentError {
  return new InvalidArgumentError(
    problem.path,
    problem.value,
    problem.expected,
    { method, cause: problem.cause },
  );
}

/**
 * The first problem with `options` (at `path`) by `rules`: not an object,
 * an unknown name (own or inherited, as a read would find it), a bad
 * value, or a read that threw. With `required`, the object and every one
 * of its options must be there.
 */
export function problemOf(
  options: unknown,
  rules: Rules,
  path: string,
  { required = false }: { required?: boolean } = {},
): Problem | undefined {
  if (options === undefined && !required) return undefined;
  let key = "";
  try {
    // Inside the try: even Array.isArray throws for a revoked proxy.
    if (
      typeof options !== "object" || options === null ||
      Array.isArray(options)
    ) {
      return {
        path,
        value: options,
        expected: "expected an object of options",
      };
    }
    for (key in options) {
      if (!Object.hasOwn(rules, key)) {
        return {
          path: `${path}.${key}`,
          value: key,
          expected: unknownOption(key, Object.keys(rules)),
        };
      }
    }
    for (key of Object.keys(rules)) {
      const value = (options as Record<string, unknown>)[key];
      if (value === undefined) {
        if (!required) continue;
        return { path: `${path}.${key}`, value, expected: "required" };
      }
      const expected = rules[key](value, `${path}.${key}`);
      if (typeof expected === "string") {
        return { path: `${path}.${key}`, value, expected };
      }
      if (expected !== undefined) return expected;
    }
  } catch (error) {
    return {
      path: key === "" ? path : `${path}.${key}`,
      value: options,
      expected: `could not be read (${messageOf(error)})`,
      cause: error,
    };
  }
  return undefined;
}

/**
 * Options valid on a second look though the first refused them: a getter
 * or proxy that answers differently each time.
 */
export function changedWhileRead(
  method: string,
  options: unknown,
): InvalidArgumentError {
  return new InvalidArgumentError(
    "options",
    options,
    "its values changed while being read (a getter or proxy that answers " +
      "differently each time)",
    { method },
  );
}
