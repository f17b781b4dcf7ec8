/**
 * The UDP session token (docs/PROTOCOL.md, "UDP"): the 16 bytes that open
 * every datagram and tie it to the TCP connection that negotiated UDP. Here
 * it is made, shown as NEGOTIATE_OK carries it, read back, and checked on
 * each datagram received. Apart from the datagram layout (datagram.ts),
 * which only puts the token in front of its frames: the token names a
 * session, it is no part of a frame, and NEGOTIATE_OK's reader needs it
 * without the rest of the layout.
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError } from "../errors.ts";
import { lengthOf } from "./payload_length.ts";
import { shown } from "./foreign_values.ts";

/**
 * Bytes in a UDP session token.
 *
 * @example
 * ```ts
 * import { UDP_TOKEN_SIZE } from "@nodewire/client/protocol";
 * console.log(UDP_TOKEN_SIZE); // 16
 * ```
 */
export const UDP_TOKEN_SIZE = 16;

/**
 * Throws unless `token` is a Uint8Array of 16 bytes; `method` names the
 * public call in the error. Shared by every call that takes a token.
 */
export function checkToken(token: unknown, method: string): void {
  if (!(token instanceof Uint8Array) || lengthOf(token) !== UDP_TOKEN_SIZE) {
    throw new InvalidArgumentError(
      "token",
      token,
      `expected a Uint8Array of ${UDP_TOKEN_SIZE} bytes`,
      { method },
    );
  }
}

/**
 * Whether `bytes` starts with `token`. A datagram without the right token
 * is someone else's, or a forgery: the receiver drops it unread.
 *
 * @example
 * ```ts
 * import { hasToken } from "@nodewire/client/protocol";
 * hasToken(new Uint8Array(40).fill(1), new Uint8Array(16).fill(1)); // true
 * ```
 * @throws {InvalidArgumentError} for bytes that are no Uint8Array or a
 *   token of other than 16 bytes.
 */
export function hasToken(bytes: Uint8Array, token: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError("bytes", bytes, "expected a Uint8Array", {
      method: "hasToken",
    });
  }
  checkToken(token, "hasToken");
  return hasTokenUnchecked(bytes, token);
}

/**
 * {@linkcode hasToken} without its checks, for the transport's receive:
 * a datagram from the socket and the session's own token.
 */
export function hasTokenUnchecked(
  bytes: Uint8Array,
  token: Uint8Array,
): boolean {
  if (bytes.byteLength < UDP_TOKEN_SIZE) return false;
  // Not constant-time: the token travels in clear in every datagram, so
  // timing would reveal nothing a listener does not already see.
  for (let i = 0; i < UDP_TOKEN_SIZE; i++) {
    if (bytes[i] !== token[i]) return false;
  }
  return true;
}

/**
 * A new random session token (`crypto.getRandomValues`), as 16 bytes.
 *
 * @example
 * ```ts
 * import { newUdpToken, formatUdpToken } from "@nodewire/client/protocol";
 * console.log(formatUdpToken(newUdpToken()).length); // 32
 * ```
 */
export function newUdpToken(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(UDP_TOKEN_SIZE));
}

/**
 * A token as NEGOTIATE_OK carries it: 32 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { formatUdpToken } from "@nodewire/client/protocol";
 * formatUdpToken(new Uint8Array(16).fill(171)); // "abababababababababababababababab"
 * ```
 * @throws {InvalidArgumentError} for a token of other than 16 bytes.
 */
export function formatUdpToken(token: Uint8Array): string {
  checkToken(token, "formatUdpToken");
  let out = "";
  for (let i = 0; i < token.byteLength; i++) out += HEX[token[i]];
  return out;
}

/**
 * Reads NEGOTIATE_OK's `udpToken`.
 *
 * @throws {ProtocolError} unless `text` is exactly 32 hex digits.
 * @example
 * ```ts
 * import { parseUdpToken } from "@nodewire/client/protocol";
 * parseUdpToken("000102030405060708090a0b0c0d0e0f")[15]; // 15
 * ```
 */
export function parseUdpToken(text: unknown): Uint8Array {
  if (typeof text !== "string" || !/^[0-9a-fA-F]{32}$/.test(text)) {
    // shown(): a caller's value may be any size or depth.
    throw new ProtocolError(
      `udpToken ${shown(text)} is not ${UDP_TOKEN_SIZE} bytes in hex`,
    );
  }
  const token = new Uint8Array(UDP_TOKEN_SIZE);
  for (let i = 0; i < UDP_TOKEN_SIZE; i++) {
    token[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return token;
}

const HEX = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);
