/**
 * What a host name is, without a port or brackets: a DNS name, a dotted
 * quad or an IPv6 address. Read by the host parser and by the check of
 * `tls.serverName`, with no import of its own (the config's types import
 * the latter).
 *
 * @module
 */

// A DNS name: dot-separated labels of letters, digits, `-` and `_` (for
// service names such as `my_db` in a container network), none empty, none
// starting or ending with `-`; a final dot (a fully qualified name) is
// allowed.
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
/** Digits and dots only: an IPv4 address, or no valid name at all. */
export const IPV4_LOOKING = /^[0-9.]+$/;
const OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
// A zone names an interface (at most 15 characters on Linux, a number on
// Windows): 64 leaves room, and keeps a name of thousands of characters
// from passing as an address.
const ZONE = /^[A-Za-z0-9_.~-]{1,64}$/;

/**
 * Whether `text` is a host name as an entry of `hosts` may hold one,
 * without a port or brackets: a DNS name, a dotted quad or an IPv6
 * address. For a name given apart from a host, as `tls.serverName`.
 */
export function isHostName(text: string): boolean {
  if (text.includes(":")) return isIPv6(text);
  return IPV4_LOOKING.test(text) ? isIPv4(text) : isDnsName(text);
}

/** A dotted quad, each part 0–255 in decimal without leading zeros. */
export function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 &&
    parts.every((part) => OCTET.test(part) && Number(part) <= 255);
}

/** A DNS name of at most 253 characters (a final dot aside). */
export function isDnsName(text: string): boolean {
  const name = text.endsWith(".") ? text.slice(0, -1) : text;
  return name.length > 0 && name.length <= 253 &&
    name.split(".").every((label) => LABEL.test(label));
}

/**
 * An IPv6 address as RFC 4291 writes it: eight groups of 1–4 hex digits,
 * or fewer with one `::` standing for the missing ones; the last two may be
 * an IPv4 dotted quad; an optional `%zone` (RFC 4007) of at most 64
 * characters follows.
 */
export function isIPv6(text: string): boolean {
  let address = text;
  const percent = text.indexOf("%");
  if (percent >= 0) {
    if (!ZONE.test(text.slice(percent + 1))) return false;
    address = text.slice(0, percent);
  }
  const halves = address.split("::");
  if (halves.length > 2) return false;
  const compressed = halves.length === 2;
  const groups: string[] = [];
  for (const half of halves) {
    if (half !== "") groups.push(...half.split(":"));
  }
  let count = groups.length;
  const last = groups[groups.length - 1];
  // Only the address's very end may be IPv4, never a group before "::".
  if (halves[halves.length - 1] !== "" && last.includes(".")) {
    // An IPv4 tail takes the place of the last two groups.
    if (!isIPv4(last)) return false;
    groups.pop();
    count++;
  }
  if (!groups.every((group) => HEX_GROUP.test(group))) return false;
  // "::" stands for at least one group of zeros.
  return compressed ? count <= 7 : count === 8;
}
