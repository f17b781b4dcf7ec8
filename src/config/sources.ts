/**
 * Where a client's configuration comes from: a config object, a connection
 * string with an object of overrides merged over it, or, when neither is
 * given, the connection string in `NODEWIRE_URL`. The precedence is
 * documented in docs/CONNECTION_STRING.md.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { type EnvReader, readEnvVariable } from "../runtime/env.ts";
import type { ConnectionConfig } from "./shapes.ts";
import { parseConnectionString } from "./url.ts";
import { SECTION_DEFAULTS } from "./defaults.ts";
import { CONFIG_KEYS } from "./resolve.ts";
import { TLS_DEFAULTS } from "./tls.ts";
import { optionNames, rejectUnknownKeys } from "./option_names.ts";
import { readable } from "./validate.ts";

/** The environment variable `Client.connect()` reads without arguments. */
export const URL_VARIABLE = "NODEWIRE_URL";

/** The sections an override merges into field by field. */
/**
 * The sections that merge field by field, and the fields each has: a
 * field a read finds but a spread does not (a class's getter) is still
 * merged.
 */
const SECTIONS: ReadonlyMap<string, readonly string[]> = new Map(
  Object.entries({ tls: TLS_DEFAULTS, ...SECTION_DEFAULTS })
    .map(([name, defaults]) => [name, Object.keys(defaults)]),
);

/**
 * The configuration `Client.connect(first, overrides)` asks for, before
 * validation:
 *
 * - a config object: itself, complete on its own (the environment is not
 *   read: a stray `NODEWIRE_URL` must not redirect or add credentials to a
 *   configuration written out in code);
 * - a string: the connection string, with `overrides` merged over it;
 * - `undefined`: the connection string in `NODEWIRE_URL`, with `overrides`
 *   merged over it.
 *
 * `readEnv` is for tests.
 *
 * @throws {ConfigError} for a bad connection string or overrides, and when
 *   `NODEWIRE_URL` is needed but unset, empty or not readable.
 */
export function configFromArguments(
  first: unknown,
  overrides: unknown,
  readEnv: EnvReader = readEnvVariable,
): ConnectionConfig {
  return readable(
    "config",
    // A string is never quoted: it may hold a password.
    typeof first === "string" ? "[redacted]" : first,
    () => fromArguments(first, overrides, readEnv),
  );
}

function fromArguments(
  first: unknown,
  overrides: unknown,
  readEnv: EnvReader,
): ConnectionConfig {
  if (typeof first === "string") {
    return mergeConfig(parseConnectionString(first, "url"), overrides);
  }
  if (first === undefined) {
    const reading = readEnv(URL_VARIABLE);
    if (reading.state === "set") {
      return mergeConfig(
        parseConnectionString(reading.value, URL_VARIABLE),
        overrides,
      );
    }
    throw new ConfigError(
      URL_VARIABLE,
      undefined,
      `no configuration given, and ${
        reading.state === "unset"
          ? `${URL_VARIABLE} is not set`
          : reading.reason
      }: pass Client.connect a connection string or a config object, or ` +
        `set ${URL_VARIABLE}`,
    );
  }
  if (typeof first !== "object" || first === null || Array.isArray(first)) {
    throw new ConfigError(
      "config",
      first,
      "expected a connection string or a config object",
    );
  }
  // A misspelt "hosts" is named as such, not as a missing one.
  rejectUnknownKeys("config", first, CONFIG_KEYS);
  if (!("hosts" in first)) {
    throw new ConfigError(
      "hosts",
      undefined,
      "expected an array of host strings (a config object is complete on " +
        `its own; to take the rest from ${URL_VARIABLE}, pass the object ` +
        "as overrides: Client.connect(undefined, overrides))",
    );
  }
  return first as ConnectionConfig;
}

/**
 * `overrides` merged over `base`: each option given in `overrides` replaces
 * the base's, except the sections (`tls`, `poolConfig`, `retryConfig`,
 * `retryBudget`, `hedging`, `healthConfig`, `outlierEjection`), which
 * merge field by field when both are objects. An option set to
 * `undefined` is not given. Unknown options pass through, for
 * `resolveConfig` to refuse by name.
 *
 * @throws {ConfigError} when `overrides` is not an object, or cannot be
 *   read (a getter or a proxy's trap throws): naming `overrides`.
 */
export function mergeConfig(
  base: ConnectionConfig,
  overrides: unknown,
): ConnectionConfig {
  return readable("overrides", overrides, () => merge(base, overrides));
}

function merge(base: ConnectionConfig, overrides: unknown): ConnectionConfig {
  if (overrides === undefined) return base;
  if (!isPlainObject(overrides)) {
    throw new ConfigError(
      "overrides",
      // A string here is most likely a second connection string.
      typeof overrides === "string" ? "[redacted]" : overrides,
      "expected an object",
    );
  }
  const merged: Record<string, unknown> = { ...base };
  // Read as resolveConfig reads a config: Object.entries would drop an
  // option given non-enumerable, inherited or as a class's getter.
  for (const key of new Set([...optionNames(overrides), ...CONFIG_KEYS])) {
    const value = overrides[key];
    if (value === undefined) continue;
    const under = merged[key];
    merged[key] = SECTIONS.has(key) && isPlainObject(under) &&
        isPlainObject(value)
      ? { ...under, ...definedFields(value, SECTIONS.get(key)!) }
      : value;
  }
  return merged as unknown as ConnectionConfig;
}

/**
 * The fields of a section given in overrides, read as resolveConfig reads
 * them: non-enumerable and inherited ones too (a spread would drop them),
 * unknown ones kept for resolveConfig to refuse by name.
 */
function definedFields(
  value: object,
  known: readonly string[],
): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const key of new Set([...optionNames(value), ...known])) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) fields[key] = v;
  }
  return fields;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
