/**
 * The ERROR payload: binary, not JSON as the other control messages are,
 * because it also answers hot-path requests. Flags (bit 0: retryable), a
 * code, then UTF-8 text; and the codes a node puts in it.
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError } from "../errors.ts";
import { fieldsOf } from "./foreign_values.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Error codes a node puts in an ERROR frame (see docs/PROTOCOL.md).
 *
 * @example
 * ```ts
 * import { RemoteErrorCode } from "@nodewire/client";
 * console.log(RemoteErrorCode.Overloaded); // 4
 * ```
 */
export const RemoteErrorCode = {
  /** The node failed in a way it did not expect. */
  Internal: 1,
  /** The request was malformed for the node's operation set. */
  BadRequest: 2,
  /** The key or object does not exist. */
  NotFound: 3,
  /** The node sheds load; it did not execute the request. */
  Overloaded: 4,
  /** The node is draining or starting; it did not execute the request. */
  Unavailable: 5,
  /** The node requires authentication before requests. */
  AuthRequired: 6,
  /** The credentials were rejected. */
  AuthFailed: 7,
  /** The node cannot serve the protocol or feature asked for. */
  Unsupported: 8,
} as const;

/**
 * A decoded ERROR payload.
 *
 * @example
 * ```ts
 * import { RemoteErrorCode } from "@nodewire/client";
 * import { decodeError, encodeError } from "@nodewire/client/protocol";
 * const bytes = encodeError({ code: RemoteErrorCode.Overloaded, retryable: true, message: "busy" });
 * const { code, retryable, message } = decodeError(bytes);
 * console.log(code, retryable, message); // 4 true "busy"
 * ```
 */
export interface ErrorPayload {
  /** One of {@linkcode RemoteErrorCode}, or a node-specific code. */
  code: number;
  /** Whether the node did not execute the request and a retry is safe. */
  retryable: boolean;
  /** Human-readable text. */
  message: string;
}

/**
 * Encodes an ERROR payload: flags (u8, bit 0 = retryable), code (u16 BE),
 * then the UTF-8 message.
 *
 * @throws {InvalidArgumentError} for an error that is no object, a code
 *   that is not an integer in 0–65535 (it would wrap), a message that is
 *   no string or a `retryable` that is no boolean.
 * @example
 * ```ts
 * import { RemoteErrorCode } from "@nodewire/client";
 * import { encodeError } from "@nodewire/client/protocol";
 * encodeError({ code: RemoteErrorCode.NotFound, retryable: false, message: "no such key" });
 * ```
 */
export function encodeError(error: ErrorPayload): Uint8Array {
  const method = "encodeError";
  // Each field read once and checked: null was a raw TypeError, and a
  // message or retryable of another kind was coerced (undefined went out
  // as empty text, an object as "[object Object]").
  const { code, retryable, message } = fieldsOf<ErrorPayload>(
    method,
    "error",
    error,
    ["code", "retryable", "message"],
  );
  const bad = (name: string, value: unknown, expected: string) =>
    new InvalidArgumentError(`error.${name}`, value, expected, { method });
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) {
    throw bad("code", code, "expected an integer in 0–65535");
  }
  if (typeof message !== "string") {
    throw bad("message", message, "expected a string");
  }
  if (typeof retryable !== "boolean") {
    throw bad("retryable", retryable, "expected a boolean");
  }
  const text = encoder.encode(message);
  const out = new Uint8Array(3 + text.byteLength);
  out[0] = retryable ? 1 : 0;
  out[1] = code >>> 8;
  out[2] = code & 0xff;
  out.set(text, 3);
  return out;
}

/**
 * Decodes an ERROR payload.
 *
 * @throws {ProtocolError} when it is shorter than 3 bytes or not UTF-8.
 * @throws {InvalidArgumentError} for a payload that is no Uint8Array.
 * @example
 * ```ts
 * import { decodeError, encodeError } from "@nodewire/client/protocol";
 * decodeError(encodeError({ code: 4, retryable: true, message: "busy" })).retryable; // true
 * ```
 */
export function decodeError(payload: Uint8Array): ErrorPayload {
  // null was a raw TypeError, an array a ProtocolError about UTF-8.
  if (!(payload instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      "payload",
      payload,
      "expected a Uint8Array",
      {
        method: "decodeError",
      },
    );
  }
  if (payload.byteLength < 3) {
    throw new ProtocolError(
      `ERROR payload of ${payload.byteLength} bytes is shorter than 3`,
    );
  }
  let message: string;
  try {
    message = decoder.decode(payload.subarray(3));
  } catch (cause) {
    throw new ProtocolError("ERROR message is not UTF-8", { cause });
  }
  return {
    retryable: (payload[0] & 1) === 1,
    code: (payload[1] << 8) | payload[2],
    message,
  };
}
