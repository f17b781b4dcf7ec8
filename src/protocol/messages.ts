/**
 * Payloads of the control messages. Control messages are rare, so they carry
 * UTF-8 JSON objects: easy to extend, and easy to implement in any language.
 * Here: the JSON payloads, and HELLO / HELLO_OK with the features they
 * agree. Apart: the ERROR payload (error_payload.ts), binary because it
 * also answers hot-path requests, and the reading of a caller's or a peer's
 * values (foreign_values.ts); both re-exported here, where their importers
 * name them.
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError } from "../errors.ts";
import { clipped, messageOf, quoted, textOf } from "../errors/base.ts";
import { fieldsOf, shown, strings } from "./foreign_values.ts";
import { MIN_FRAME_SIZE } from "./frame.ts";
import { nodeIdProblem } from "./node_id.ts";

export {
  decodeError,
  encodeError,
  type ErrorPayload,
  RemoteErrorCode,
} from "./error_payload.ts";
export { fieldsOf, MESSAGE_FIELDS } from "./foreign_values.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * An optional protocol feature, agreed in HELLO / HELLO_OK (docs/PROTOCOL.md,
 * "Features"): `"udp-batch"` lets a UDP datagram carry several frames.
 *
 * @example
 * ```ts
 * import type { ProtocolFeature } from "@nodewire/client/protocol";
 * const wanted: ProtocolFeature[] = ["udp-batch"];
 * ```
 */
export type ProtocolFeature = "udp-batch";

/**
 * Every feature this package implements, in the order it offers them. A
 * name outside this list, in either message, is ignored: a peer may know
 * features this version does not.
 *
 * @example
 * ```ts
 * import { PROTOCOL_FEATURES } from "@nodewire/client/protocol";
 * console.log(PROTOCOL_FEATURES.includes("udp-batch")); // true
 * ```
 */
export const PROTOCOL_FEATURES: readonly ProtocolFeature[] = Object.freeze([
  "udp-batch",
]);

/**
 * The client's HELLO payload.
 *
 * @example
 * ```ts
 * import { encodeHello, type HelloPayload, PROTOCOL_VERSION } from "@nodewire/client/protocol";
 * const hello: HelloPayload = { version: PROTOCOL_VERSION, client: "billing", maxFrameSize: 1024 * 1024 };
 * const payload = encodeHello(hello); // the HELLO frame's payload
 * ```
 */
export interface HelloPayload {
  /** Highest protocol version the client speaks. */
  version: number;
  /** Free-form client name, for the node's logs. */
  client: string;
  /** Largest payload the client accepts. */
  maxFrameSize: number;
  /**
   * Optional features the client offers; absent means none. Decoding
   * keeps only the names this package knows.
   */
  features?: readonly ProtocolFeature[];
}

/**
 * The node's HELLO_OK payload.
 *
 * @example
 * ```ts
 * import type { Handshake } from "@nodewire/client/core";
 * // What Connection.connect's handshake hook is handed, once HELLO_OK came.
 * const requireAuth: Handshake = (_connection, hello) =>
 *   hello.auth === "scram-sha-256"
 *     ? Promise.resolve()
 *     : Promise.reject(new Error(`${hello.nodeId} does not authenticate`));
 * ```
 */
export interface HelloOkPayload {
  /**
   * The node's stable id: 1 to 255 UTF-8 bytes, with no control, format or
   * separator character.
   */
  nodeId: string;
  /** Largest payload the node accepts. */
  maxFrameSize: number;
  /** Authentication mechanism the node requires, or `"none"`. */
  auth: "none" | "scram-sha-256";
  /** Transport protocols the node supports, when it advertises them. */
  protocols?: string[];
  /**
   * The features agreed for this connection: those the node supports out
   * of the client's offer, never one the client did not offer. Absent
   * means none. Decoding keeps only the names this package knows.
   */
  features?: readonly ProtocolFeature[];
}

/**
 * Encodes a JSON control payload: an object, as {@linkcode decodeJson}
 * reads it back.
 *
 * @throws {InvalidArgumentError} for what is no object in JSON (undefined,
 *   a number, an array) or cannot be written as JSON (a BigInt, a cycle).
 * @example
 * ```ts
 * import { encodeJson } from "@nodewire/client/protocol";
 * encodeJson({ reason: "draining" }).byteLength; // 21
 * ```
 */
export function encodeJson(value: object): Uint8Array {
  let text: string | undefined;
  let cause: unknown;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    cause = error;
  }
  // Only an object's JSON is a control payload: undefined went out as no
  // bytes at all, and an array or a number as JSON no decodeJson takes.
  if (text === undefined || text[0] !== "{") {
    throw new InvalidArgumentError(
      "value",
      value,
      cause === undefined
        ? "expected an object, as JSON"
        : `expected what JSON can hold (${clipped(messageOf(cause), 120)})`,
      { method: "encodeJson", cause },
    );
  }
  return encoder.encode(text);
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
    // The parser's complaint goes into the message, which escapes it: it
    // quotes the payload ("Unexpected token ... is not valid JSON"), and
    // as a cause it would reach a terminal or a log raw.
    throw new ProtocolError(
      `${what} payload is not UTF-8 JSON: ${
        clipped(textOf((cause as Error)?.message ?? cause), 120)
      }`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${what} payload is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Encodes a HELLO payload; `features` is left out when empty, so a client
 * that offers none sends what a client from before features sent.
 *
 * @throws {InvalidArgumentError} for a field of the wrong type.
 * @example
 * ```ts
 * import { decodeHello, encodeHello } from "@nodewire/client/protocol";
 * const bytes = encodeHello({ version: 1, client: "app", maxFrameSize: 1024, features: ["udp-batch"] });
 * console.log(decodeHello(bytes).features); // [ "udp-batch" ]
 * ```
 */
export function encodeHello(hello: HelloPayload): Uint8Array {
  const method = "encodeHello";
  const { version, client, maxFrameSize, features } = fieldsOf<HelloPayload>(
    method,
    "hello",
    hello,
    ["version", "client", "maxFrameSize", "features"],
  );
  const bad = (name: string, value: unknown, expected: string) =>
    new InvalidArgumentError(`hello.${name}`, value, expected, { method });
  if (!Number.isInteger(version)) {
    throw bad("version", version, "expected an integer");
  }
  if (typeof client !== "string") {
    throw bad("client", client, "expected a string");
  }
  if (!Number.isInteger(maxFrameSize)) {
    throw bad("maxFrameSize", maxFrameSize, "expected an integer");
  }
  if (
    features !== undefined &&
    !(Array.isArray(features) && features.every((f) => typeof f === "string"))
  ) throw bad("features", features, "expected an array of strings");
  const fields = { version, client, maxFrameSize };
  return encodeJson(features?.length ? { ...fields, features } : fields);
}

/**
 * Decodes and checks a HELLO payload (the node's side).
 *
 * @throws {ProtocolError} when a field is missing or of the wrong type, or
 *   `maxFrameSize` is below 1024.
 * @example
 * ```ts
 * import { decodeHello, encodeJson } from "@nodewire/client/protocol";
 * const hello = decodeHello(encodeJson({ version: 1, client: "app", maxFrameSize: 1024, features: ["udp-batch", "future"] }));
 * console.log(hello.features); // [ "udp-batch" ]
 * ```
 */
export function decodeHello(payload: Uint8Array): HelloPayload {
  const v = decodeJson(payload, "HELLO");
  if (!isPositiveInteger(v.version)) {
    throw new ProtocolError("HELLO has no valid version");
  }
  if (typeof v.client !== "string") {
    throw new ProtocolError("HELLO has no client string");
  }
  return {
    version: v.version,
    client: v.client,
    maxFrameSize: frameSize(v.maxFrameSize, "HELLO"),
    features: decodeFeatures(v.features, "HELLO"),
  };
}

/**
 * The features of `offered` that `supported` also has, in the offer's
 * order: what a node puts in HELLO_OK, so it never announces a feature
 * the client did not offer.
 *
 * @example
 * ```ts
 * import { agreeFeatures } from "@nodewire/client/protocol";
 * agreeFeatures(["udp-batch"], []); // []
 * ```
 */
export function agreeFeatures(
  offered: readonly ProtocolFeature[] | undefined,
  supported: readonly ProtocolFeature[],
): ProtocolFeature[] {
  const agreed = strings(supported, "supported");
  return strings(offered ?? [], "offered").filter((f) =>
    agreed.includes(f)
  ) as ProtocolFeature[];
}

/**
 * Decodes and checks a HELLO_OK payload.
 *
 * @throws {ProtocolError} when a field is missing or of the wrong type,
 *   `maxFrameSize` is below 1024, or `nodeId` is over 255 UTF-8 bytes or
 *   has a character no log could show as it is (a control, format or
 *   separator character).
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
  // It goes into every RemoteError message, event and log line of the
  // connection: a node that sends one no log can show as it is, or too
  // long to quote, breaks the protocol before anything is built on it.
  const problem = nodeIdProblem(v.nodeId);
  if (problem !== undefined) {
    throw new ProtocolError(`HELLO_OK nodeId ${quoted(v.nodeId)} ${problem}`);
  }
  const maxFrameSize = frameSize(v.maxFrameSize, "HELLO_OK");
  if (v.auth !== "none" && v.auth !== "scram-sha-256") {
    throw new ProtocolError(`HELLO_OK names unknown auth ${shown(v.auth)}`);
  }
  const protocols = v.protocols;
  // Not "absent": a node that lists its protocols wrongly must not pass
  // for one that predates negotiation (whose stream counts as TCP).
  if (
    protocols !== undefined &&
    !(Array.isArray(protocols) && protocols.every((p) => typeof p === "string"))
  ) {
    throw new ProtocolError(
      `HELLO_OK protocols ${shown(protocols)} is not an array of strings`,
    );
  }
  const features = decodeFeatures(v.features, "HELLO_OK");
  return {
    nodeId: v.nodeId,
    maxFrameSize,
    auth: v.auth,
    protocols: protocols as string[] | undefined,
    ...(features === undefined ? {} : { features }),
  };
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1;
}

/**
 * A peer's `maxFrameSize`. One that takes less than the floor could take
 * neither the handshake's messages nor most requests: refused now, not
 * request by request.
 */
function frameSize(value: unknown, what: string): number {
  if (!isPositiveInteger(value) || value < MIN_FRAME_SIZE) {
    throw new ProtocolError(
      `${what} maxFrameSize is ${
        shown(value)
      }, expected an integer of at least ${MIN_FRAME_SIZE} (the least accepted)`,
    );
  }
  return value;
}

/**
 * A `features` field: absent stays absent; otherwise it must be an array
 * of strings, of which the names this package knows are kept (once each).
 */
function decodeFeatures(
  value: unknown,
  what: string,
): ProtocolFeature[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((f) => typeof f === "string")) {
    throw new ProtocolError(`${what} features is not an array of strings`);
  }
  return PROTOCOL_FEATURES.filter((f) => value.includes(f));
}
