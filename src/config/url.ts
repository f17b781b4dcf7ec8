/**
 * Connection strings: `nodewire://user:password@host1:port,host2/?option=value`
 * read into a {@linkcode ConnectionConfig}. The grammar is documented in
 * docs/CONNECTION_STRING.md. Parsing only converts text; `resolveConfig`
 * validates the result like any config object.
 *
 * The password never reaches an error: the user information is everything
 * before the last `@`, so nothing after it (hosts, parameters) can hold the
 * password; errors about the user information, or about the shape of the
 * string, quote none of it; and in a string with no `@`, where a
 * forgotten `@` would leave `user:password` as the first host, a host is
 * quoted only up to its first colon.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { Secret } from "../secret.ts";
import { parseHost } from "./hosts.ts";
import type { ConnectionConfig, HostAddress } from "./shapes.ts";
import {
  ALIASES,
  convertParameter,
  isParameter,
  PLAIN_NAME,
} from "./url_parameters.ts";

const SCHEME = "nodewire://";
const ANY_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const REDACTED = "[redacted]";
// Characters the user information must carry percent-encoded: each would
// end it, or the authority, for any other URL reader.
const RAW_IN_USERINFO = /[/?#[\]@]/;
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/**
 * Reads a connection string into a configuration object: hosts from the
 * authority, `username` and `password` (percent-decoded; the password
 * wrapped in a {@linkcode Secret}) from the user information, and one
 * option per query parameter. `source` names the string in errors about
 * its shape: `"url"`, or `"NODEWIRE_URL"` when it came from there.
 *
 * @throws {ConfigError} for a string that breaks the grammar, an unknown
 *   parameter, a parameter given twice, or a value not of its option's
 *   type. No error quotes the password.
 * @example
 * ```ts
 * import { parseConnectionString, resolveConfig } from "@nodewire/client/core";
 * const config = parseConnectionString(
 *   "nodewire://app:s%40cret@db1:7000,[::1]:7002/?tls=require&poolMax=50",
 * );
 * console.log(config.hosts, config.tlsPolicy); // ["db1:7000", "[::1]:7002"] "require"
 * console.log(resolveConfig(config).poolConfig.maxConnections); // 50
 * ```
 */
export function parseConnectionString(
  text: string,
  source = "url",
): ConnectionConfig {
  if (typeof text !== "string") {
    throw new ConfigError(source, text, "expected a connection string");
  }
  if (text.slice(0, SCHEME.length).toLowerCase() !== SCHEME) {
    const scheme = ANY_SCHEME.exec(text)?.[1];
    throw new ConfigError(
      source,
      scheme === undefined ? REDACTED : `${scheme}://…`,
      `expected a connection string starting with "${SCHEME}"`,
    );
  }
  const rest = text.slice(SCHEME.length);
  const at = rest.lastIndexOf("@");
  const config: Record<string, unknown> = {};
  if (at >= 0) readUserInfo(rest.slice(0, at), source, config);
  const afterUser = rest.slice(at + 1);
  const end = afterUser.search(/[/?#]/);
  const hostsText = end < 0 ? afterUser : afterUser.slice(0, end);
  const tail = end < 0 ? "" : afterUser.slice(end);
  if (tail.includes("#")) {
    throw new ConfigError(
      source,
      REDACTED,
      'a "#" must be percent-encoded as %23 (a connection string has no ' +
        "fragment)",
    );
  }
  const query = tail.indexOf("?");
  const path = query < 0 ? tail : tail.slice(0, query);
  if (path !== "" && path !== "/") {
    throw new ConfigError(
      source,
      REDACTED,
      'expected "/" or "?" after the hosts: a connection string has no path ' +
        '(a "/" in a password is written %2F)',
    );
  }
  config.hosts = readHosts(hostsText, at >= 0);
  if (query >= 0) readParameters(tail.slice(query + 1), source, config);
  return config as unknown as ConnectionConfig;
}

/** `user[:password]`, each percent-decoded. */
function readUserInfo(
  text: string,
  source: string,
  config: Record<string, unknown>,
): void {
  if (RAW_IN_USERINFO.test(text)) {
    throw new ConfigError(
      source,
      REDACTED,
      'the user name and password (before the last "@") hold a "/", "?", ' +
        '"#", "[", "]" or "@" as is: percent-encode them (%2F, %3F, %23, ' +
        '%5B, %5D, %40), and an "@" in a parameter as %40',
    );
  }
  const colon = text.indexOf(":");
  const user = colon < 0 ? text : text.slice(0, colon);
  config.username = decode(user, "username", REDACTED);
  if (colon >= 0) {
    config.password = new Secret(
      decode(text.slice(colon + 1), "password", REDACTED),
    );
  }
}

/**
 * The comma-separated hosts. An entry the host parser refuses is quoted
 * whole only when the string has user information; without it, only up to
 * its port's colon, since a forgotten `@` would leave `user:password`
 * as the first entry.
 */
function readHosts(text: string, hasUserInfo: boolean): string[] {
  if (text === "") {
    throw new ConfigError(
      "hosts",
      "",
      "the connection string names no host: expected " +
        "nodewire://host[:port][,host[:port]...]",
    );
  }
  return text.split(",").map((raw, i) => {
    const field = `hosts[${i}]`;
    const shown = hasUserInfo ? raw : withoutPort(raw);
    if (raw === "") {
      throw new ConfigError(field, "", "expected a host between the commas");
    }
    // RFC 6874: a zone in a URL's IPv6 literal is written %25zone.
    const entry = raw.startsWith("[") ? raw.replace("%25", "%") : raw;
    if (
      !entry.startsWith("[") && entry.indexOf(":") !== entry.lastIndexOf(":")
    ) {
      throw new ConfigError(
        field,
        shown,
        "an IPv6 address goes in brackets in a connection string, as " +
          "[::1]:7000",
      );
    }
    try {
      parseHost(entry, field);
    } catch (error) {
      if (!(error instanceof ConfigError) || hasUserInfo) throw error;
      throw new ConfigError(field, shown, reasonOf(error));
    }
    return entry;
  });
}

/**
 * Parses a host entry that may be `user:password` given by mistake (a
 * forgotten `@host`): an error quotes it only up to its port's colon, as
 * a connection string without user information does. For addresses from
 * a command line.
 *
 * @throws {ConfigError} naming `field`, never the text after the colon.
 */
export function parseUnsureHost(entry: string, field: string): HostAddress {
  try {
    return parseHost(entry, field);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(field, withoutPort(entry), reasonOf(error));
  }
}

/**
 * `host:…` for `host:anything`, `--name=…` for an option after `--`
 * (`--password=...`); an entry with neither as it is.
 */
function withoutPort(entry: string): string {
  const bracket = entry.startsWith("[") ? entry.indexOf("]:") : -1;
  const colon = bracket >= 0 ? bracket + 1 : entry.search(/[:=]/);
  return colon < 0 ? entry : entry.slice(0, colon + 1) + "…";
}

/** The `expected` part of a {@linkcode ConfigError}'s message. */
function reasonOf(error: ConfigError): string {
  const start = `invalid ${error.field}: `.length;
  const end = error.message.lastIndexOf(", got ");
  return end > start ? error.message.slice(start, end) : "not a valid host";
}

/** `name=value&...`, percent-decoded; each option at most once. */
function readParameters(
  query: string,
  source: string,
  config: Record<string, unknown>,
): void {
  const given = new Map<string, string>();
  for (const pair of query.split("&")) {
    // Tolerated: a string built by appending "&name=value" pieces.
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    const rawName = equals < 0 ? pair : pair.slice(0, equals);
    const name = decode(rawName, source, REDACTED);
    if (equals < 0) {
      // Shown only when it is a parameter: `nodewire://bob:pass?word`
      // (no `@host`) makes the end of a password a name with no value.
      const shown = isParameter(name);
      throw new ConfigError(
        shown ? name : source,
        shown ? name : REDACTED,
        "expected name=value (a parameter with no value)",
      );
    }
    const rawValue = pair.slice(equals + 1);
    const { option, value } = convertParameter(
      name,
      // Decoded first, so its error shows the value only for a parameter:
      // `?password=...%` must not quote the password.
      decode(
        rawValue,
        PLAIN_NAME.test(name) ? name : source,
        isParameter(name) ? rawValue : REDACTED,
      ),
      source,
    );
    const before = given.get(option);
    if (before !== undefined) {
      throw new ConfigError(
        name,
        rawValue,
        before === name
          ? "given twice: each parameter may appear once"
          : `given twice, as ${before} and as ${name} (${
            ALIASES.has(before) ? before : name
          } stands for ${option})`,
      );
    }
    given.set(option, name);
    setOption(config, option, value);
  }
}

function setOption(
  config: Record<string, unknown>,
  option: string,
  value: unknown,
): void {
  const dot = option.indexOf(".");
  if (dot < 0) {
    // `retryBudget=true` / `hedging=true` beside some of their fields:
    // the fields say more, and they already turn it on.
    if (typeof config[option] === "object") {
      if (value === true) return;
      if (value === false) {
        throw new ConfigError(
          option,
          false,
          `${option}=false turns it off, so its fields cannot be set as well`,
        );
      }
    }
    config[option] = value === true && option === "retryBudget" ? {} : value;
    return;
  }
  const section = option.slice(0, dot);
  if (config[section] === false) {
    throw new ConfigError(
      section,
      false,
      `${section}=false turns it off, so ${option} cannot be set as well`,
    );
  }
  if (typeof config[section] !== "object") config[section] = {};
  const fields = config[section] as Record<string, unknown>;
  fields[option.slice(dot + 1)] = value;
}

/**
 * Percent-decodes `text` (a `+` stays a `+`, as RFC 3986 has it).
 *
 * @throws {ConfigError} naming `field` and showing `shown` for a `%` that
 *   starts no `%XX`, or bytes that are not UTF-8.
 */
function decode(text: string, field: string, shown: string): string {
  if (!text.includes("%")) return text;
  if (!BAD_PERCENT.test(text)) {
    try {
      return decodeURIComponent(text);
    } catch {
      // Falls through: %XX escapes that are not UTF-8.
    }
  }
  throw new ConfigError(
    field,
    shown,
    'expected percent-encoding as %XX hexadecimal bytes of UTF-8 (a "%" ' +
      "itself is %25)",
  );
}

/**
 * Refuses a connection string, or anything holding credentials, inside
 * `hosts`, before the host parser would quote it: such an entry may hold a
 * password.
 *
 * @throws {ConfigError} naming the entry, without its text.
 */
export function rejectUrlsInHosts(hosts: unknown): void {
  if (!Array.isArray(hosts)) return;
  hosts.forEach((entry, i) => rejectUrlInHost(entry, `hosts[${i}]`));
}

/**
 * The same check for one entry named `field` (a host given to `addNode`).
 *
 * @throws {ConfigError} naming `field`, without the entry's text.
 */
export function rejectUrlInHost(entry: unknown, field: string): void {
  if (typeof entry !== "string") return;
  const text = entry.trim();
  if (text.slice(0, SCHEME.length).toLowerCase() === SCHEME) {
    throw new ConfigError(
      field,
      REDACTED,
      "looks like a connection string: pass it as Client.connect's first " +
        'argument, Client.connect("nodewire://…"), not inside hosts',
    );
  }
  if (ANY_SCHEME.test(text) || text.includes("@")) {
    throw new ConfigError(
      field,
      REDACTED,
      "expected host, host:port or [ipv6]:port: a host has no scheme and " +
        "no user@ (credentials go in username and password)",
    );
  }
}
