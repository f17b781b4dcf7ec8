/**
 * The transport protocols, by their wire names, and their fixed priority
 * (TLS > TCP > UDP). A leaf module: errors, config and the wire format all
 * name protocols, and none of them should import another for it.
 *
 * @module
 */

/**
 * The transport protocols a node may serve, by their wire names.
 *
 * @example
 * ```ts
 * import { ProtocolType } from "@nodewire/client";
 * console.log(ProtocolType.Tls); // "tls"
 * ```
 */
export const ProtocolType = {
  /** TLS over TCP: encrypted and authenticated by certificate. */
  Tls: "tls",
  /** Plain TCP. */
  Tcp: "tcp",
  /** UDP, one frame per datagram. */
  Udp: "udp",
} as const;

/** One of the wire names in {@linkcode ProtocolType}. */
export type ProtocolType = typeof ProtocolType[keyof typeof ProtocolType];

/**
 * Every protocol, best first. The order is the selection priority: security
 * first (TLS), then reliable delivery (TCP), then UDP.
 *
 * @example
 * ```ts
 * import { PROTOCOL_PRIORITY } from "@nodewire/client/protocol";
 * console.log(PROTOCOL_PRIORITY); // ["tls", "tcp", "udp"]
 * ```
 */
export const PROTOCOL_PRIORITY: readonly ProtocolType[] = Object.freeze([
  "tls",
  "tcp",
  "udp",
]);

/**
 * Whether `value` is a protocol wire name.
 *
 * @example
 * ```ts
 * import { isProtocolType } from "@nodewire/client/protocol";
 * isProtocolType("tcp"); // true
 * isProtocolType("quic"); // false
 * ```
 */
export function isProtocolType(value: unknown): value is ProtocolType {
  return value === "tls" || value === "tcp" || value === "udp";
}
