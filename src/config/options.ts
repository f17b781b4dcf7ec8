/**
 * Reading a method's options object once, by a rule per option, for the
 * cold calls of the layers below the client (a pool's constructor and
 * acquires, `Connection.connect`, `receiveMessage`, `sendMessage`): the
 * first problem (not an object, an unknown name, a bad value, a read that
 * threw) is an `InvalidArgumentError` naming the method and the option.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { unknownOption } from "./suggest.ts";
import { durationProblem } from "./validate.ts";

/** What is wrong with a value, or `undefined` when nothing is. */
export type Rule = (value: unknown) => string | undefined;

/** A rule from a test and the words for a value that fails it. */
export const is = (ok: (value: unknown) => boolean, expected: string): Rule =>
(
  value,
) => ok(value) ? undefined : expected;

/** A duration above 0, by the config's one rule. */
export const duration: Rule = (value) => durationProblem(value);
/** A function. */
export const func: Rule = is(
  (v) => typeof v === "function",
  "expected a function",
);
/** A non-empty string. */
export const text: Rule = is(
  (v) => typeof v === "string" && v !== "",
  "expected a non-empty string",
);
/** `true` or `false`. */
export const bool: Rule = is(
  (v) => typeof v === "boolean",
  "expected true or false",
);
/** A real `AbortSignal`. */
export const signal: Rule = is((v) => {
  try {
    return v instanceof AbortSignal;
  } catch {
    return false; // a revoked proxy
  }
}, "expected an AbortSignal");

/** An integer in `[min, max]`. */
export const integer = (min: number, max: number): Rule =>
  is(
    (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max,
    `expected an integer in ${min}–${max}`,
  );

/** An object with these methods (a clock, an adapter). */
export const methods = (...names: string[]): Rule =>
  is(
    (v) =>
      typeof v === "object" && v !== null &&
      names.every((m) =>
        typeof (v as Record<string, unknown>)[m] === "function"
      ),
    `expected an object with ${names.join(", ")}`,
  );

/**
 * `options` read once by `rules`, as a copy: each value read once
 * (inherited ones too) and checked unless `undefined`, which `required`
 * names refuse.
 *
 * @throws {InvalidArgumentError} naming `method` and the first problem.
 */
export function readOptions<T>(
  method: string,
  options: unknown,
  rules: Record<string, Rule>,
  required: string[] = [],
): T {
  let path = "options";
  let value: unknown = options;
  let expected: string | undefined;
  let cause: unknown;
  const copy: Record<string, unknown> = {};
  try {
    if (typeof options !== "object" || options === null) {
      expected = "expected an object of options";
    } else {
      for (const key in options) {
        if (!Object.hasOwn(rules, key)) {
          path = `options.${key}`;
          value = key;
          expected = unknownOption(key, Object.keys(rules));
          break;
        }
      }
      for (const key in rules) {
        if (expected !== undefined) break;
        path = `options.${key}`;
        value = copy[key] = (options as Record<string, unknown>)[key];
        if (value !== undefined) expected = rules[key](value);
        else if (required.includes(key)) expected = "required";
      }
    }
  } catch (error) {
    value = options;
    expected = "could not be read";
    cause = error;
  }
  if (expected === undefined) return copy as T;
  throw new InvalidArgumentError(path, value, expected, { method, cause });
}
