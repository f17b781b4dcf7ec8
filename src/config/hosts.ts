/**
 * Host entries: `host`, `host:port`, `[ipv6]:port` or a bare IPv6 literal,
 * parsed into a {@linkcode HostAddress} whose canonical `address` keys the
 * node everywhere else.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { DEFAULT_PORT } from "./defaults.ts";
import type { HostAddress } from "./shapes.ts";

const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

/**
 * Parses one host entry: `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a
 * bare IPv6 literal. `field` names the entry in errors.
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
  let hostname: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) {
      throw new ConfigError(field, entry, "an IPv6 address needs a closing ]");
    }
    hostname = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        throw new ConfigError(field, entry, "expected :port after ]");
      }
      portText = rest.slice(1);
    }
    if (!IPV6.test(hostname) || !hostname.includes(":")) {
      throw new ConfigError(field, entry, "not a valid IPv6 address");
    }
  } else if ((text.match(/:/g) ?? []).length > 1) {
    // More than one colon and no brackets: a bare IPv6 literal, no port.
    hostname = text;
    if (!IPV6.test(hostname)) {
      throw new ConfigError(field, entry, "not a valid IPv6 address");
    }
  } else {
    const colon = text.indexOf(":");
    hostname = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (!HOSTNAME.test(hostname) || hostname.includes("..")) {
      throw new ConfigError(
        field,
        entry,
        "expected host, host:port or [ipv6]:port",
      );
    }
  }
  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) {
      throw new ConfigError(field, entry, "the port must be a number");
    }
    port = Number(portText);
    if (port < 1 || port > 65535) {
      throw new ConfigError(field, entry, "the port must be within 1–65535");
    }
  }
  const address = hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
  return { hostname, port, address };
}

/**
 * Parses the `hosts` list of a configuration: a non-empty array of host
 * entries, none twice (after canonicalisation, so `a` and `a:7000` clash).
 *
 * @throws {ConfigError} naming `hosts` or the bad entry, `hosts[i]`.
 */
export function parseHosts(hosts: unknown): HostAddress[] {
  if (!Array.isArray(hosts)) {
    throw new ConfigError("hosts", hosts, "expected an array of host strings");
  }
  if (hosts.length === 0) {
    throw new ConfigError("hosts", hosts, "at least one host is required");
  }
  const seen = new Set<string>();
  return hosts.map((entry, i) => {
    const parsed = parseHost(entry, `hosts[${i}]`);
    if (seen.has(parsed.address)) {
      throw new ConfigError(`hosts[${i}]`, entry, "duplicate host");
    }
    seen.add(parsed.address);
    return parsed;
  });
}
