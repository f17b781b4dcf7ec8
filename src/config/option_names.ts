/**
 * The option names an object holds, as a read of it finds them, and the
 * refusal of any that is not known: own keys enumerable or not, the
 * enumerable ones it inherits, a class's getters. The configuration's
 * sections (`section` in `validate.ts`), its sources, a method's options
 * (`options.ts`) and the test kit's options all look for a misspelt name
 * the same way, so that none is silently ignored, however the object
 * holds it.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { nameShown, unknownOption } from "./suggest.ts";

/**
 * The option names a caller may have meant in `value`: its own string
 * keys, enumerable or not (`Object.defineProperty`), the enumerable ones
 * it inherits (`Object.create`), and the getters and other values of a
 * class's prototype ({@linkcode inheritedNames}), as a read finds them.
 * Not a class's methods: a settings class may have its own.
 */
export function optionNames(value: object): string[] {
  const names = new Set(Object.getOwnPropertyNames(value));
  for (const key in value) names.add(key);
  for (const key of inheritedNames(value)) names.add(key);
  return [...names];
}

/**
 * Most prototypes {@linkcode inheritedNames} walks: a proxy can make up a
 * chain without end.
 */
const MAX_PROTOTYPES = 64;

/**
 * The names `value` inherits, enumerable or not, from the prototypes
 * between it and the root of its chain (`Object.prototype`, of whichever
 * realm, is not looked at): a class's getters, which a read finds as it
 * finds an own field, and values set on a prototype. Not `constructor`,
 * nor a method (a value that is a function): a settings class may have
 * its own. None, and no array made, for a plain object.
 */
export function inheritedNames(value: object): readonly string[] {
  let proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return NONE;
  const names: string[] = [];
  for (let depth = 0; depth < MAX_PROTOTYPES; depth++) {
    const next = Object.getPrototypeOf(proto);
    if (next === null) break;
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === "constructor") continue;
      const field = Object.getOwnPropertyDescriptor(proto, name);
      if (field !== undefined && typeof field.value !== "function") {
        names.push(name);
      }
    }
    proto = next;
  }
  return names;
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * Refuses any key of `value` ({@linkcode optionNames}) that `known` does
 * not hold: a misspelt option is an error, never silently ignored, however
 * the object holds it. `name` is the section's field path; `"config"` for
 * the top level, whose keys are named bare.
 *
 * @throws {ConfigError} naming the first unknown key, the known one it
 *   most likely misspells, and listing the known.
 */
export function rejectUnknownKeys(
  name: string,
  value: object,
  known: ReadonlySet<string>,
): void {
  for (const key of optionNames(value)) {
    if (!known.has(key)) {
      throw new ConfigError(
        name === "config" ? nameShown(key) : `${name}.${nameShown(key)}`,
        key,
        unknownOption(key, known),
      );
    }
  }
}
