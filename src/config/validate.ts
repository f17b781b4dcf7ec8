/**
 * The validation helpers every layer uses for user input: each checks one
 * value, names the field and the bad value in a {@linkcode ConfigError},
 * and returns the value typed. Durations and numbers are validated here
 * and nowhere else, so one field means the same thing wherever it is read.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { unknownOption } from "./suggest.ts";

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
 * What a duration is expected to be, as the `expected` text of an error
 * about `value`, or `undefined` when `value` is one (by
 * {@linkcode isDuration}). Errors of any class use it, so a config field
 * and a per-call option are refused in the same words.
 */
export function durationProblem(
  value: unknown,
  options: DurationOptions = {},
): string | undefined {
  const allowZero = options.allowZero === true;
  if (isDuration(value, allowZero)) return undefined;
  if (
    typeof value === "number" && Number.isFinite(value) &&
    value > MAX_TIMER_DELAY_MS
  ) {
    return `expected at most ${MAX_TIMER_DELAY_MS} ms (2^31 - 1, the longest ` +
      "delay a timer can hold; a longer one fires at once)";
  }
  return `expected a finite number of milliseconds ${allowZero ? "≥" : ">"} 0`;
}

/**
 * The problem with `value` as a duration, or `undefined` when it is one
 * (see {@linkcode isDuration}). For callers that report the error rather
 * than throw it (a rejected promise); the rest use {@linkcode duration}.
 */
export function invalidDuration(
  field: string,
  value: unknown,
  options: DurationOptions = {},
): ConfigError | undefined {
  const problem = durationProblem(value, options);
  return problem === undefined
    ? undefined
    : new ConfigError(field, value, problem);
}

/**
 * Validates a duration in milliseconds; see {@linkcode invalidDuration} for
 * what is accepted.
 *
 * @throws {ConfigError} naming `field`, for anything else.
 */
export function duration(
  field: string,
  value: unknown,
  options?: DurationOptions,
): number {
  const error = invalidDuration(field, value, options);
  if (error !== undefined) throw error;
  return value as number;
}

/**
 * `value`, or `fallback` when it is `undefined`. Unlike `??` it keeps
 * `null` for the check to refuse: a default would hide the mistake.
 */
export function orDefault(value: unknown, fallback: unknown): unknown {
  return value === undefined ? fallback : value;
}

/**
 * Validates an integer within `[min, max]`; `max` may be `Infinity` for
 * no upper bound.
 *
 * @throws {ConfigError} naming `field`, for a non-number, a fraction, `NaN`
 *   or a value out of range.
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
    throw new ConfigError(
      field,
      value,
      max === Infinity
        ? `expected an integer ≥ ${min}`
        : `expected an integer in ${min}–${max}`,
    );
  }
  return value;
}

/** Bounds for {@linkcode finiteIn}; each is optional. */
export interface Bounds {
  /** Exclusive lower bound. */
  above?: number;
  /** Inclusive lower bound. */
  atLeast?: number;
  /** Inclusive upper bound. */
  atMost?: number;
}

/**
 * Validates a finite number (not `NaN`, not ±`Infinity`) within `bounds`.
 *
 * @throws {ConfigError} naming `field` and the bounds.
 */
export function finiteIn(
  field: string,
  value: unknown,
  bounds: Bounds,
): number {
  const { above, atLeast, atMost } = bounds;
  if (
    typeof value !== "number" || !Number.isFinite(value) ||
    (above !== undefined && value <= above) ||
    (atLeast !== undefined && value < atLeast) ||
    (atMost !== undefined && value > atMost)
  ) {
    const parts: string[] = [];
    if (above !== undefined) parts.push(`> ${above}`);
    if (atLeast !== undefined) parts.push(`≥ ${atLeast}`);
    if (atMost !== undefined) parts.push(`≤ ${atMost}`);
    throw new ConfigError(
      field,
      value,
      `expected a finite number ${parts.join(" and ")}`.trimEnd(),
    );
  }
  return value;
}

/**
 * Validates an optional non-empty string.
 *
 * @throws {ConfigError} naming `field`, for anything but `undefined` or a
 *   non-empty string.
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
 * @throws {ConfigError} naming the first unknown key, the known one it
 *   most likely misspells, and listing the known.
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
        unknownOption(key, known),
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
