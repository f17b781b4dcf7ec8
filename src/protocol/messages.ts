/**
 * Payloads of the control messages. Control messages are rare, so they carry
 * UTF-8 JSON objects: easy to extend, and easy to implement in any language.
 * The error payload is binary because it also answers hot-path requests.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";

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

/** The client's HELLO payload. */
export interface HelloPayload {
  /** Highest protocol version the client speaks. */
  version: number;
  /** Free-form client name, for the node's logs. */
  client: string;
  /** Largest payload the client accepts. */
  maxFrameSize: number;
}

/** The node's HELLO_OK payload. */
export interface HelloOkPayload {
  /** The node's stable id. */
  nodeId: string;
  /** Largest payload the node accepts. */
  maxFrameSize: number;
  /** Authentication mechanism the node requires, or `"none"`. */
  auth: "none" | "scram-sha-256";
  /** Transport protocols the node supports, when it advertises them. */
  protocols?: string[];
}

/** A decoded ERROR payload. */
export interface ErrorPayload {
  /** One of {@linkcode RemoteErrorCode}, or a node-specific code. */
  code: number;
  /** Whether the node did not execute the request and a retry is safe. */
  retryable: boolean;
  /** Human-readable text. */
  message: string;
}

/**
 * Encodes a JSON control payload.
 *
 * @example
 * ```ts
 * import { encodeJson } from "@nodewire/client/protocol";
 * encodeJson({ reason: "draining" }).byteLength; // 21
 * ```
 */
export function encodeJson(value: object): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/**
 * Decodes a JSON control payload that must be an object.
 *
 * @throws {ProtocolError} for bytes that are not UTF-8 JSON of an object.
 * @example
 * ```ts
 * import { decodeJson, encodeJson } from "@nodewire/client/protocol";
 * decodeJson(encodeJson({ a: 1 }), "test"); // { a: 1 }
 * ```
 */
export function decodeJson(
  payload: Uint8Array,
  what: string,
): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch (cause) {
    throw new ProtocolError(`${what} payload is not UTF-8 JSON`, { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${what} payload is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Decodes and checks a HELLO_OK payload.
 *
 * @throws {ProtocolError} when a field is missing or of the wrong type.
 * @example
 * ```ts
 * import { decodeHelloOk, encodeJson } from "@nodewire/client/protocol";
 * const ok = decodeHelloOk(encodeJson({ nodeId: "n1", maxFrameSize: 1024, auth: "none" }));
 * console.log(ok.nodeId); // "n1"
 * ```
 */
export function decodeHelloOk(payload: Uint8Array): HelloOkPayload {
  const v = decodeJson(payload, "HELLO_OK");
  if (typeof v.nodeId !== "string" || v.nodeId.length === 0) {
    throw new ProtocolError("HELLO_OK has no nodeId string");
  }
  if (
    typeof v.maxFrameSize !== "number" || !Number.isInteger(v.maxFrameSize) ||
    v.maxFrameSize < 1
  ) {
    throw new ProtocolError("HELLO_OK has no valid maxFrameSize");
  }
  if (v.auth !== "none" && v.auth !== "scram-sha-256") {
    throw new ProtocolError(`HELLO_OK names unknown auth ${String(v.auth)}`);
  }
  const protocols = Array.isArray(v.protocols) &&
      v.protocols.every((p) => typeof p === "string")
    ? v.protocols as string[]
    : undefined;
  return {
    nodeId: v.nodeId,
    maxFrameSize: v.maxFrameSize,
    auth: v.auth,
    protocols,
  };
}

/**
 * Encodes an ERROR payload: flags (u8, bit 0 = retryable), code (u16 BE),
 * then the UTF-8 message.
 *
 * @example
 * ```ts
 * import { RemoteErrorCode } from "@nodewire/client";
 * import { encodeError } from "@nodewire/client/protocol";
 * encodeError({ code: RemoteErrorCode.NotFound, retryable: false, message: "no such key" });
 * ```
 */
export function encodeError(error: ErrorPayload): Uint8Array {
  const text = encoder.encode(error.message);
  const out = new Uint8Array(3 + text.byteLength);
  out[0] = error.retryable ? 1 : 0;
  out[1] = (error.code >>> 8) & 0xff;
  out[2] = error.code & 0xff;
  out.set(text, 3);
  return out;
}

/**
 * Decodes an ERROR payload.
 *
 * @throws {ProtocolError} when it is shorter than 3 bytes or not UTF-8.
 * @example
 * ```ts
 * import { decodeError, encodeError } from "@nodewire/client/protocol";
 * decodeError(encodeError({ code: 4, retryable: true, message: "busy" })).retryable; // true
 * ```
 */
export function decodeError(payload: Uint8Array): ErrorPayload {
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
