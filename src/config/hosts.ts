/**
 * Host entries: `host`, `host:port`, `[ipv6]:port` or a bare IPv6 literal,
 * parsed into a {@linkcode HostAddress} whose canonical `address` keys the
 * node everywhere else.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { fieldOf } from "../errors/base.ts";
import { DEFAULT_PORT } from "./defaults.ts";
import { IPV4_LOOKING, isDnsName, isIPv4, isIPv6 } from "./host_name.ts";
import type { HostAddress } from "./shapes.ts";

const PORT = /^[0-9]{1,5}$/;

/**
 * Parses one host entry: `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a
 * bare IPv6 literal. `field` names the entry in errors. Parsing is strict:
 * a DNS name is made of valid labels, an IPv4 address is a dotted quad of
 * 0–255, an IPv6 address has at most eight groups and one `::` (with an
 * optional IPv4 tail and `%zone`), and nothing may follow the port.
 *
 * @throws {ConfigError} for a malformed host or a port outside 1–65535.
 * @example
 * ```ts
 * import { parseHost } from "@nodewire/client/core";
 * parseHost("[::1]:7001"); // { hostname: "::1", port: 7001, address: "[::1]:7001" }
 * ```
 */
export function parseHost(entry: string, field = "host"): HostAddress {
  if (typeof entry !== "string") {
    throw new ConfigError(field, entry, "expected a string host");
  }
  const text = entry.trim();
  const fail = (expected: string): never => {
    throw new ConfigError(field, entry, expected);
  };
  if (text === "") fail("expected host, host:port or [ipv6]:port");
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text) || text.includes("@")) {
    // Not quoted: a URL or user@ may hold a password.
    throw new ConfigError(
      field,
      "[redacted]",
      "a URL is not a host: give the node as host:port (no scheme such as " +
        '"nodewire://", no user@, no path)',
    );
  }
  let hostname: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) fail("an IPv6 address needs a closing ]");
    hostname = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) fail("expected :port after ]");
      portText = rest.slice(1);
    }
    if (!isIPv6(hostname)) fail("not a valid IPv6 address");
  } else if (text.indexOf(":") !== text.lastIndexOf(":")) {
    // More than one colon and no brackets: a bare IPv6 literal, no port.
    hostname = text;
    if (!isIPv6(hostname)) {
      fail(
        "not a valid IPv6 address (with a port, an IPv6 address goes in " +
          "brackets: [::1]:7000)",
      );
    }
  } else {
    const colon = text.indexOf(":");
    hostname = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (hostname === "") fail("the host is missing before :port");
    if (IPV4_LOOKING.test(hostname)) {
      if (!isIPv4(hostname)) {
        fail("not a valid IPv4 address (four numbers 0–255, a.b.c.d)");
      }
    } else if (!isDnsName(hostname)) {
      fail("expected host, host:port or [ipv6]:port");
    }
  }
  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (portText === "") fail("the port is missing after :");
    if (!PORT.test(portText)) fail("the port must be a number");
    port = Number(portText);
    if (port < 1 || port > 65535) fail("the port must be within 1–65535");
  }
  const address = hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
  return { hostname, port, address };
}

/**
 * The `hosts` list read once into a plain array of strings, entry by
 * index: a hole is a missing entry, not one skipped (as `map` would), and
 * a proxy's odd length is refused, not read as 0.
 *
 * @throws {ConfigError} naming `hosts`, or the entry `hosts[i]`.
 */
export function readHostList(hosts: unknown): unknown[] {
  if (!Array.isArray(hosts)) {
    throw new ConfigError("hosts", hosts, "expected an array of host strings");
  }
  const length: unknown = hosts.length;
  if (
    typeof length !== "number" || !Number.isSafeInteger(length) || length < 0
  ) {
    throw new ConfigError("hosts", hosts, "expected an array of host strings");
  }
  if (length === 0) {
    throw new ConfigError("hosts", hosts, "at least one host is required");
  }
  const list: unknown[] = [];
  for (let i = 0; i < length; i++) {
    const entry: unknown = hosts[i];
    // The first hole ends it, whatever the length claims.
    if (typeof entry !== "string") {
      throw new ConfigError(`hosts[${i}]`, entry, hostExpected(entry));
    }
    list.push(entry);
  }
  return list;
}

/**
 * What a hosts entry that is no string should have been. A parsed host is
 * what a copy of a resolved config (`{ ...client.config, timeoutMs }`)
 * holds: saying only "a string" left the caller with nothing to change.
 */
function hostExpected(entry: unknown): string {
  // fieldOf: a getter that throws is no parsed host of ours either.
  const parsed = typeof entry === "object" && entry !== null &&
    typeof fieldOf(entry, "address") === "string";
  return parsed
    ? "expected a string host, not a parsed one as a resolved config holds " +
      "(a copy of a ResolvedConfig is no ConnectionConfig: pass the " +
      "resolved config itself, or the ConnectionConfig with the change)"
    : "expected a string host";
}

/**
 * Parses the `hosts` list of a configuration (see
 * {@linkcode readHostList}): none twice, however spelt (`a` and `a:7000`,
 * `DB1` and `db1.`, `[::1]` and `[0::1]`).
 *
 * @throws {ConfigError} naming `hosts` or the bad entry, `hosts[i]`.
 */
export function parseHosts(hosts: unknown): HostAddress[] {
  const list = readHostList(hosts);
  const seen = new Set<string>();
  return list.map((entry, i) => {
    const parsed = parseHost(entry as string, `hosts[${i}]`);
    const key = sameNodeKey(parsed);
    if (seen.has(key)) {
      throw new ConfigError(`hosts[${i}]`, entry, "duplicate host");
    }
    seen.add(key);
    return parsed;
  });
}

/**
 * The same for every spelling of one node (DNS case and final dot, IPv6
 * case, zeros and `::`, as the URL parser writes a host); the address as
 * written stays its name. For duplicate checks (`ConnectionManager.addNode`
 * may use it too).
 */
export function sameNodeKey({ hostname, port }: HostAddress): string {
  const name = hostname.endsWith(".") ? hostname.slice(0, -1) : hostname;
  const host = name.includes(":") ? `[${name}]` : name;
  try {
    return `${new URL(`http://${host}/`).hostname}:${port}`;
  } catch {
    // An IPv6 zone, which URLs cannot hold.
    return `${host.toLowerCase()}:${port}`;
  }
}
