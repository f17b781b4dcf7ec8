/**
 * The query parameters of a connection string: which configuration option
 * each one sets, how its text becomes a value, the short aliases, and the
 * options that text cannot express. The values are only converted here;
 * `resolve.ts` validates them, so a parameter and the same option in an
 * object are refused in the same words.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import {
  DEFAULT_HEALTH_CONFIG,
  DEFAULT_HEDGING,
  DEFAULT_OUTLIER_EJECTION,
  DEFAULT_POOL_CONFIG,
  DEFAULT_RETRY_BUDGET,
  DEFAULT_RETRY_CONFIG,
} from "./defaults.ts";
import { closestName } from "./suggest.ts";

/** How a parameter's text becomes the option's value. */
export type ParameterKind = "number" | "boolean" | "text" | "list";

/**
 * Every option a parameter can set, by its full dotted name, with its kind.
 * The three sections follow their defaults, so an option added to one is a
 * parameter at once, with the kind of its default.
 */
export const PARAMETERS: ReadonlyMap<string, ParameterKind> = new Map<
  string,
  ParameterKind
>([
  ["enableTls", "boolean"],
  ["tlsPolicy", "text"],
  ["protocols", "list"],
  ["timeoutMs", "number"],
  ["requestTimeoutMs", "number"],
  ["maxFrameSize", "number"],
  ["maxDatagramSize", "number"],
  ["loadBalancing", "text"],
  ["whenNoHealthyNodes", "text"],
  ["panicThreshold", "number"],
  ["runtime", "text"],
  ["clientName", "text"],
  ["tls.serverName", "text"],
  ["tls.dangerouslySkipVerify", "boolean"],
  ["tls.handshakeTimeoutMs", "number"],
  ["tls.direct", "boolean"],
  ...sectionParameters("poolConfig", DEFAULT_POOL_CONFIG),
  ...sectionParameters("retryConfig", DEFAULT_RETRY_CONFIG),
  ...sectionParameters("healthConfig", DEFAULT_HEALTH_CONFIG),
  // On or off as a whole (retryBudget=false, hedging=true), or field by
  // field, which turns it on.
  ["retryBudget", "boolean"],
  ...sectionParameters("retryBudget", DEFAULT_RETRY_BUDGET),
  ["hedging", "boolean"],
  ...sectionParameters("hedging", { ...DEFAULT_HEDGING, delayMs: 0 }),
  ["outlierEjection", "boolean"],
  ...sectionParameters("outlierEjection", DEFAULT_OUTLIER_EJECTION),
]);

/**
 * Short names for the options set most often, the way libpq has `sslmode`
 * and MongoDB `tls` and `maxPoolSize`: a URL kept in an environment
 * variable or a secret store is read by people, and
 * `poolConfig.maxConnections=50` is a mouthful there.
 */
export const ALIASES: ReadonlyMap<string, string> = new Map([
  ["tls", "tlsPolicy"],
  ["poolMin", "poolConfig.minConnections"],
  ["poolMax", "poolConfig.maxConnections"],
  ["retries", "retryConfig.maxRetries"],
]);

const OVERRIDES = "pass it in Client.connect's overrides";

/**
 * Names that are options, or look like them, but are not parameters, and
 * what to do instead. A value given to one is never shown: it may be a
 * password.
 */
const NOT_PARAMETERS: ReadonlyMap<string, string> = new Map([
  ["hosts", "the hosts go after the scheme: nodewire://host1:port,host2:port"],
  [
    "username",
    "the user name goes before the hosts: nodewire://user:password@host",
  ],
  [
    "password",
    "the password goes before the hosts (nodewire://user:password@host), " +
    `or ${OVERRIDES}, { password }`,
  ],
  [
    "tls.ca",
    "a PEM certificate cannot be written in a connection string, and the " +
    `client reads no files: ${OVERRIDES}, { tls: { ca } }`,
  ],
  [
    "logger",
    `a function cannot be written in a connection string: ${OVERRIDES}`,
  ],
  ["clock", `an object cannot be written in a connection string: ${OVERRIDES}`],
  ...["poolConfig", "retryConfig", "healthConfig"].map((
    section,
  ): [string, string] => [
    section,
    `a section is given field by field, as ${section}.<field>=<value>`,
  ]),
]);

/**
 * A parameter name that errors may show: one that looks like an option's,
 * not like a piece of a mangled string that could hold a password.
 */
export const PLAIN_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Whether `name` is a parameter (an option's or an alias): only then may
 * errors show its value or, given without one, its name. A password put in
 * the query by mistake (`?password=...`, or `bob:pass?word` without
 * `@host`) is neither.
 */
export function isParameter(name: string): boolean {
  return PARAMETERS.has(ALIASES.get(name) ?? name);
}

/** A number as a person writes one: digits, a sign, a decimal point. */
const NUMBER = /^-?[0-9]+(\.[0-9]+)?$/;

/** The option a parameter sets and its value, converted from text. */
export interface ParameterValue {
  /** The option's full dotted name, such as `poolConfig.maxConnections`. */
  option: string;
  /** The value, typed by the option's kind. */
  value: number | boolean | string | string[];
}

/**
 * Converts the parameter `name=text` into the option it sets and its value.
 * `source` names the whole connection string in errors that cannot name a
 * parameter.
 *
 * @throws {ConfigError} for an unknown name (with the likeliest meant one),
 *   a name that is not a parameter, or text that is not of the option's
 *   kind (numbers are decimal, booleans `true` or `false`).
 */
export function convertParameter(
  name: string,
  text: string,
  source: string,
): ParameterValue {
  const option = ALIASES.get(name) ?? name;
  const kind = PARAMETERS.get(option);
  if (kind === undefined) {
    const instead = NOT_PARAMETERS.get(name);
    if (instead !== undefined) {
      throw new ConfigError(name, `${name}=…`, `not a parameter: ${instead}`);
    }
    const plain = PLAIN_NAME.test(name);
    const guess = plain ? closestName(name, knownNames()) : undefined;
    throw new ConfigError(
      plain ? name : source,
      plain ? name : "[redacted]",
      `unknown parameter${
        guess === undefined ? "" : ` (did you mean "${guess}"?)`
      }; the parameters are the options' names, dotted within a section ` +
        "(poolConfig.maxConnections), and the aliases " +
        `${[...ALIASES.keys()].join(", ")}`,
    );
  }
  return { option, value: convert(name, text, kind) };
}

function convert(
  name: string,
  text: string,
  kind: ParameterKind,
): number | boolean | string | string[] {
  switch (kind) {
    case "number":
      if (!NUMBER.test(text)) {
        throw new ConfigError(
          name,
          text,
          "expected a number (decimal digits, such as 5000 or 1.5)",
        );
      }
      return Number(text);
    case "boolean":
      if (text !== "true" && text !== "false") {
        throw new ConfigError(name, text, "expected true or false");
      }
      return text === "true";
    case "list":
      return text.split(",");
    case "text":
      return text;
  }
}

/** Every name a parameter may have: the options' and the aliases. */
export function knownNames(): string[] {
  return [...PARAMETERS.keys(), ...ALIASES.keys()];
}

function sectionParameters(
  section: string,
  defaults: object,
): [string, ParameterKind][] {
  return Object.entries(defaults).map(([field, value]) => [
    `${section}.${field}`,
    typeof value === "boolean" ? "boolean" : "number",
  ]);
}
