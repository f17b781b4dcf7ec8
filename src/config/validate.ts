/**
 * The validation helpers for user input: each checks one value, names the
 * field and the bad value in a {@linkcode ConfigError}, and returns the
 * value typed.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/**
 * Validates an integer within `[min, max]`.
 *
 * @throws {ConfigError} naming `field`, for a non-number, a fraction, `NaN`
 *   or a value out of range.
 * @example
 * ```ts
 * import { integerIn } from "./validate.ts";
 * integerIn("poolConfig.maxConnections", 8, 1, 10_000); // 8
 * ```
 */
export function integerIn(
  field: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw new ConfigError(field, value, `expected an integer in ${min}–${max}`);
  }
  return value;
}

/**
 * Validates a finite number of at least `min`.
 *
 * @throws {ConfigError} naming `field`.
 * @example
 * ```ts
 * import { finiteAtLeast } from "./validate.ts";
 * finiteAtLeast("retryConfig.backoffMultiplier", 1.5, 1); // 1.5
 * ```
 */
export function finiteAtLeast(
  field: string,
  value: unknown,
  min: number,
): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new ConfigError(field, value, `expected a finite number ≥ ${min}`);
  }
  return value;
}

/**
 * Validates a finite number of milliseconds ≥ 0.
 *
 * @throws {ConfigError} naming `field`.
 * @example
 * ```ts
 * import { nonNegativeTime } from "./validate.ts";
 * nonNegativeTime("poolConfig.idleTimeoutMs", 0); // 0
 * ```
 */
export function nonNegativeTime(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(
      field,
      value,
      "expected a finite number of milliseconds ≥ 0",
    );
  }
  return value;
}

/**
 * Validates a finite number of milliseconds > 0.
 *
 * @throws {ConfigError} naming `field`.
 * @example
 * ```ts
 * import { positiveTime } from "./validate.ts";
 * positiveTime("timeoutMs", 250); // 250
 * ```
 */
export function positiveTime(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(
      field,
      value,
      "expected a finite number of milliseconds > 0",
    );
  }
  return value;
}

/**
 * Validates an optional non-empty string.
 *
 * @throws {ConfigError} naming `field`, for anything but `undefined` or a
 *   non-empty string.
 * @example
 * ```ts
 * import { optionalString } from "./validate.ts";
 * optionalString("clientName", undefined) ?? "nodewire"; // "nodewire"
 * ```
 */
export function optionalString(
  field: string,
  value: unknown,
): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0) {
    throw new ConfigError(field, value, "expected a non-empty string");
  }
  return value;
}

/**
 * Validates an optional boolean: `true`, `false` or `undefined`, nothing
 * truthy or falsy in their place.
 *
 * @throws {ConfigError} naming `field`, for any other value.
 * @example
 * ```ts
 * import { optionalBoolean } from "./validate.ts";
 * optionalBoolean("enableTls", undefined) ?? false; // false
 * ```
 */
export function optionalBoolean(
  field: string,
  value: unknown,
): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") {
    throw new ConfigError(field, value, "expected true or false");
  }
  return value;
}

/**
 * Validates that `value` is one of `options`.
 *
 * @throws {ConfigError} naming `field` and listing the options.
 * @example
 * ```ts
 * import { oneOf } from "./validate.ts";
 * oneOf("whenNoHealthyNodes", "fail", ["fail", "tryAll"] as const); // "fail"
 * ```
 */
export function oneOf<T extends string>(
  field: string,
  value: unknown,
  options: readonly T[],
): T {
  if (!options.includes(value as T)) {
    throw new ConfigError(
      field,
      value,
      `expected one of ${options.map((o) => `"${o}"`).join(", ")}`,
    );
  }
  return value as T;
}

/**
 * Refuses any key of `value` that `known` does not hold: a misspelt option
 * is an error, never silently ignored. `name` is the section's field path;
 * `"config"` for the top level, whose keys are named bare.
 *
 * @throws {ConfigError} naming the first unknown key and listing the known.
 * @example
 * ```ts
 * import { rejectUnknownKeys } from "./validate.ts";
 * rejectUnknownKeys("poolConfig", { max: 5 }, new Set(["maxConnections"]));
 * // throws: invalid poolConfig.max: unknown option (known: maxConnections)
 * ```
 */
export function rejectUnknownKeys(
  name: string,
  value: object,
  known: ReadonlySet<string>,
): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) {
      throw new ConfigError(
        name === "config" ? key : `${name}.${key}`,
        key,
        `unknown option (known: ${[...known].join(", ")})`,
      );
    }
  }
}

/**
 * Checks that a config section is an object with only the keys of
 * `defaults`, and returns `defaults` overlaid with its defined values. The
 * values themselves are left for the caller to validate.
 *
 * @throws {ConfigError} for a non-object or an unknown key.
 * @example
 * ```ts
 * import { section } from "./validate.ts";
 * section("retryConfig", { maxRetries: 5 }, { maxRetries: 3, jitter: false });
 * // { maxRetries: 5, jitter: false }
 * ```
 */
export function section<T extends object>(
  name: string,
  value: Partial<T> | undefined,
  defaults: Readonly<T>,
): T {
  if (value === undefined) return { ...defaults };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(name, value, "expected an object");
  }
  rejectUnknownKeys(name, value, new Set(Object.keys(defaults)));
  const merged = { ...defaults } as Record<string, unknown>;
  for (const [key, v] of Object.entries(value)) {
    if (v !== undefined) merged[key] = v;
  }
  return merged as T;
}
