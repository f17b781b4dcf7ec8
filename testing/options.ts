/**
 * Option checks for the test kit's entry points: an unknown name (a typo
 * such as `prot` for `port`) is a {@linkcode ConfigError}, as it is in a
 * client's configuration, never silently ignored.
 *
 * @module
 */

import { rejectUnknownKeys } from "../src/config/validate.ts";
import { ConfigError } from "../src/errors.ts";

/**
 * The names an options type takes, as a record keyed by every one of them,
 * so that the compiler refuses a list that misses one:
 * `const NAMES: OptionNames<TestNodeOptions> = { port: true, ... }`.
 */
export type OptionNames<T> = Readonly<Record<keyof T, true>>;

/**
 * Checks that `options` is `undefined` or an object whose names are all in
 * `known` (with `required`, `undefined` is refused too). `name` says whose
 * options they are, in the error.
 *
 * @throws {ConfigError} naming the first unknown option and the known one
 *   it most likely misspells.
 */
export function checkOptions(
  name: string,
  options: unknown,
  known: Readonly<Record<string, true>>,
  { required = false }: { required?: boolean } = {},
): void {
  if (options === undefined && !required) return;
  try {
    // Inside the try: even Array.isArray throws for a revoked proxy.
    if (
      typeof options !== "object" || options === null ||
      Array.isArray(options)
    ) {
      throw new ConfigError(name, options, "expected an object of options");
    }
    rejectUnknownKeys(name, options, new Set(Object.keys(known)));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(name, options, "could not be read", {
      cause: error,
    });
  }
}

/** {@linkcode checkOptions} as a rejected promise, for methods that return one. */
export function optionsRejection(
  name: string,
  options: unknown,
  known: Readonly<Record<string, true>>,
  settings: { required?: boolean } = {},
): Promise<never> | undefined {
  try {
    checkOptions(name, options, known, settings);
    return undefined;
  } catch (error) {
    return Promise.reject(error);
  }
}
