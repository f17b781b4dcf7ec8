/**
 * Protocol negotiation on the wire: the transport protocols, their fixed
 * priority (TLS > TCP > UDP), the policy that narrows what a client accepts,
 * the one selection rule both sides run, and the NEGOTIATE / NEGOTIATE_OK
 * payloads (docs/PROTOCOL.md, "Protocol negotiation").
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError } from "../errors.ts";
import { shown, strings } from "./foreign_values.ts";
import { decodeJson } from "./messages.ts";
import { PROTOCOL_PRIORITY, type ProtocolType } from "../protocol_type.ts";

/**
 * What the client does about TLS: `"require"` offers only TLS (the default
 * when `enableTls` is true), `"prefer"` offers TLS beside the rest so it
 * wins whenever both sides have it, `"disable"` never offers it (the
 * default otherwise).
 *
 * @example
 * ```ts
 * import type { TlsPolicy } from "@nodewire/client";
 * const policy: TlsPolicy = "require";
 * ```
 */
export type TlsPolicy = "require" | "prefer" | "disable";

/**
 * Sorts protocols by priority, dropping duplicates and names that are not
 * protocols (a newer peer may know transports this one does not).
 *
 * @throws {InvalidArgumentError} when `protocols` is not an array of
 *   strings (`"tcp"` alone, say).
 * @example
 * ```ts
 * import { sortProtocols } from "@nodewire/client/protocol";
 * sortProtocols(["udp", "quic", "tls", "udp"]); // ["tls", "udp"]
 * ```
 */
export function sortProtocols(
  protocols: readonly string[],
): ProtocolType[] {
  const set = new Set<unknown>(strings(protocols, "protocols"));
  return PROTOCOL_PRIORITY.filter((p) => set.has(p));
}

/**
 * The selection rule, run by both sides: the highest-priority protocol that
 * is in both sets, or `undefined` when they share none. It is symmetric, so
 * the client and the node reach the same answer from the same two sets.
 *
 * @throws {InvalidArgumentError} when `a` or `b` is not an array of
 *   strings (`"tcp"` alone, say).
 * @example
 * ```ts
 * import { selectProtocol } from "@nodewire/client/protocol";
 * selectProtocol(["tcp", "udp"], ["tls", "tcp", "udp"]); // "tcp"
 * selectProtocol(["tls"], ["tcp"]); // undefined
 * ```
 */
export function selectProtocol(
  a: readonly string[],
  b: readonly string[],
): ProtocolType | undefined {
  const inA = new Set<unknown>(strings(a, "a"));
  const inB = new Set<unknown>(strings(b, "b"));
  return PROTOCOL_PRIORITY.find((p) => inA.has(p) && inB.has(p));
}

/**
 * The protocols a client's policy allows, best first: `protocols` narrowed
 * by the TLS policy (`"require"` keeps only TLS, `"disable"` drops it).
 *
 * @throws {InvalidArgumentError} for any other policy, or `protocols`
 *   that are not an array of strings.
 * @example
 * ```ts
 * import { allowedProtocols } from "@nodewire/client/protocol";
 * allowedProtocols("disable", ["tls", "tcp", "udp"]); // ["tcp", "udp"]
 * allowedProtocols("require", ["tls", "tcp"]); // ["tls"]
 * ```
 */
export function allowedProtocols(
  tlsPolicy: TlsPolicy,
  protocols: readonly ProtocolType[],
): ProtocolType[] {
  const sorted = sortProtocols(protocols);
  if (tlsPolicy === "require") return sorted.filter((p) => p === "tls");
  if (tlsPolicy === "disable") return sorted.filter((p) => p !== "tls");
  // Not a silent "prefer" for "requir": TLS would no longer be required.
  if (tlsPolicy === "prefer") return sorted;
  throw new InvalidArgumentError(
    "tlsPolicy",
    tlsPolicy,
    'expected "require", "prefer" or "disable"',
  );
}

/**
 * The client's NEGOTIATE payload: what it offers, best first.
 *
 * @example
 * ```ts
 * import type { NegotiatePayload } from "@nodewire/client/protocol";
 * const offer: NegotiatePayload = { protocols: ["tcp"] };
 * ```
 */
export interface NegotiatePayload {
  /** Protocols the client offers: allowed by its policy and available to it. */
  protocols: ProtocolType[];
}

/**
 * The node's NEGOTIATE_OK payload.
 *
 * @example
 * ```ts
 * import type { NegotiateOkPayload } from "@nodewire/client/protocol";
 * const answer: NegotiateOkPayload = { protocols: ["tcp", "udp"], selected: "tcp", udpPort: 7001 };
 * ```
 */
export interface NegotiateOkPayload {
  /** Every protocol the node serves, best first. */
  protocols: ProtocolType[];
  /** The node's choice, or `null` when the two sets share nothing. */
  selected: ProtocolType | null;
  /** The node's UDP port, present when it serves UDP. */
  udpPort?: number;
  /**
   * The UDP session token, 32 hex digits, present when `selected` is
   * `"udp"`: every datagram of this connection starts with its 16 bytes.
   */
  udpToken?: string;
}

/**
 * Decodes and checks a NEGOTIATE payload (node side). Unknown protocol
 * names are dropped, not rejected, so a newer client can offer more.
 *
 * @throws {ProtocolError} when `protocols` is not an array of strings.
 * @example
 * ```ts
 * import { decodeNegotiate, encodeJson } from "@nodewire/client/protocol";
 * decodeNegotiate(encodeJson({ protocols: ["tcp", "quic"] })); // { protocols: ["tcp"] }
 * ```
 */
export function decodeNegotiate(payload: Uint8Array): NegotiatePayload {
  const v = decodeJson(payload, "NEGOTIATE");
  return { protocols: protocolList(v.protocols, "NEGOTIATE") };
}

/**
 * Decodes and checks a NEGOTIATE_OK payload (client side).
 *
 * @throws {ProtocolError} for a missing or ill-typed field, a `selected`
 *   that is not among the listed `protocols`, a `udpPort` outside 1–65535
 *   while the node lists UDP, or a `udpToken` that is not 32 hex digits.
 * @example
 * ```ts
 * import { decodeNegotiateOk, encodeJson } from "@nodewire/client/protocol";
 * decodeNegotiateOk(encodeJson({ protocols: ["tcp"], selected: "tcp" })).selected; // "tcp"
 * ```
 */
export function decodeNegotiateOk(payload: Uint8Array): NegotiateOkPayload {
  const v = decodeJson(payload, "NEGOTIATE_OK");
  const protocols = protocolList(v.protocols, "NEGOTIATE_OK");
  // A choice the node does not list is no choice of its own.
  const selected = v.selected === null
    ? null
    : protocols.find((p) => p === v.selected);
  if (selected === undefined) {
    throw new ProtocolError(
      `NEGOTIATE_OK selected ${shown(v.selected)}, expected one of ${
        shown(protocols)
      } or null`,
    );
  }
  const out: NegotiateOkPayload = { protocols, selected };
  if (v.udpPort !== undefined) {
    if (
      typeof v.udpPort !== "number" || !Number.isInteger(v.udpPort) ||
      v.udpPort < 1 || v.udpPort > 65535
    ) {
      throw new ProtocolError(
        `NEGOTIATE_OK udpPort ${shown(v.udpPort)} is not a port in 1–65535`,
      );
    }
    out.udpPort = v.udpPort;
  } else if (protocols.includes("udp")) {
    throw new ProtocolError("NEGOTIATE_OK lists udp but gives no udpPort");
  }
  if (v.udpToken !== undefined) {
    if (typeof v.udpToken !== "string" || !/^[0-9a-f]{32}$/i.test(v.udpToken)) {
      throw new ProtocolError(
        "NEGOTIATE_OK udpToken is not 32 hex digits (a 16-byte token)",
      );
    }
    out.udpToken = v.udpToken;
  }
  return out;
}

function protocolList(value: unknown, what: string): ProtocolType[] {
  if (!Array.isArray(value) || !value.every((p) => typeof p === "string")) {
    throw new ProtocolError(`${what} has no protocols array of strings`);
  }
  return sortProtocols(value);
}
