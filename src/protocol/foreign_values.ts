/**
 * Values from outside the package, read without a raw TypeError: a
 * caller's object read field by field, once ({@linkcode fieldsOf}), a
 * caller's list of strings ({@linkcode strings}), and a peer's value
 * quoted in an error message ({@linkcode shown}). Shared by the codecs of
 * every payload and frame.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { clipped, itemsOf, printable } from "../errors/base.ts";

/** The fields of a {@linkcode Message}, as {@linkcode fieldsOf} reads them. */
export const MESSAGE_FIELDS: readonly string[] = [
  "type",
  "flags",
  "sequence",
  "payload",
];

/**
 * The `names` fields of `value`, the `argument` of `method`, each read
 * once: an {@linkcode InvalidArgumentError}, not a raw TypeError, for
 * something that is no object (`expected` says what it should be) or
 * whose read throws: naming the field whose read threw (a getter, a
 * proxy's trap), or `argument` itself when nothing of it can be read (a
 * revoked proxy).
 */
export function fieldsOf<T>(
  method: string,
  argument: string,
  value: unknown,
  names: readonly string[],
  expected = "expected an object",
): T {
  if (typeof value !== "object" || value === null) {
    throw new InvalidArgumentError(argument, value, expected, { method });
  }
  const copy: Record<string, unknown> = {};
  let name: string | undefined;
  try {
    for (name of names) copy[name] = (value as Record<string, unknown>)[name];
    return copy as T;
  } catch (cause) {
    throw new InvalidArgumentError(
      unreadable(value) ? argument : `${argument}.${name}`,
      value,
      "could not be read",
      { method, cause },
    );
  }
}

/** Whether nothing of `value` can be read: a revoked proxy, for one. */
function unreadable(value: object): boolean {
  try {
    Reflect.getPrototypeOf(value);
    return false;
  } catch {
    return true;
  }
}

/**
 * A peer's value in an error message: JSON (so one line, quoted), cut to
 * 64 characters, with {@linkcode printable} escapes. Never throws: `String()` does on `{"toString": 1}`.
 */
export function shown(value: unknown): string {
  // JSON writes Infinity (what 1e400 parses to) and NaN as null: the
  // message would name a value the peer never sent.
  if (typeof value === "number") return String(value);
  // JSON.stringify gives undefined for one: it would read as undefined.
  if (typeof value === "symbol") return "a symbol";
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // JSON.parse takes nesting deeper than JSON.stringify's recursion can
    // walk (a RangeError on Node and Bun for a few kB of brackets): the
    // kind of value says enough, and the error it goes into is typed. A
    // BigInt (from a caller: JSON has none) throws a TypeError there.
    text = typeof value === "bigint"
      ? `${value}n`
      : `(${
        Array.isArray(value) ? "an array" : "an object"
      } nested too deep to show)`;
  }
  return printable(clipped(text ?? "undefined", 64));
}

/**
 * An argument that must be an array of strings: a string would be read
 * as a list of its letters, anything else throws a TypeError from inside.
 */
export function strings(value: unknown, argument: string): string[] {
  // itemsOf, not Array.isArray, which throws on a revoked proxy; and a
  // copy, whose holes are undefined, where every() skipped them.
  const items = itemsOf(value);
  if (items === undefined || !items.every((s) => typeof s === "string")) {
    throw new InvalidArgumentError(
      argument,
      value,
      "expected an array of strings",
    );
  }
  return items as string[];
}
