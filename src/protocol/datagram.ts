/**
 * The UDP datagram layout (docs/PROTOCOL.md, "UDP"): a 16-byte session
 * token, then exactly one frame with the usual 16-byte header, or, on a
 * connection that agreed `"udp-batch"` in HELLO / HELLO_OK, one or more
 * frames back to back. The token ties the datagram to the TCP connection
 * that negotiated UDP (and authenticated); each frame is the same as on
 * the stream.
 *
 * ```
 * offset  size  field
 * 0       16    session token (from NEGOTIATE_OK's udpToken)
 * 16      16    frame header (version, type, flags, sequence, length)
 * 32      n     payload; length must equal n exactly
 * ```
 *
 * Here: the layout's sizes, and building and taking apart datagrams of
 * one frame and of several. The token itself (making, showing, reading
 * and matching it) is udp_token.ts, re-exported from here.
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError } from "../errors.ts";
import { lengthOf } from "./payload_length.ts";
import { itemsOf } from "../errors/base.ts";
import {
  headerFault,
  readSequence,
  readU32,
  writeHeaderUnchecked,
} from "./header_bytes.ts";
import { HEADER_SIZE, MAX_SEQUENCE, type Message } from "./frame.ts";
import { fieldsOf, MESSAGE_FIELDS } from "./foreign_values.ts";
import { checkToken, UDP_TOKEN_SIZE } from "./udp_token.ts";

// The token's own API, re-exported: the protocol entry and the transports
// take the whole UDP layout from this file.
export {
  formatUdpToken,
  hasToken,
  hasTokenUnchecked,
  newUdpToken,
  parseUdpToken,
  UDP_TOKEN_SIZE,
} from "./udp_token.ts";

/**
 * Bytes of every datagram that are not payload: the token and the frame
 * header.
 *
 * @example
 * ```ts
 * import { DATAGRAM_OVERHEAD } from "@nodewire/client/protocol";
 * console.log(DATAGRAM_OVERHEAD); // 32
 * ```
 */
export const DATAGRAM_OVERHEAD: number = UDP_TOKEN_SIZE + HEADER_SIZE;

/**
 * The default largest datagram a client sends, in bytes (token, header and
 * payload): 1200, which fits the 1280-byte minimum IPv6 MTU with room for
 * the IP and UDP headers, so no datagram is ever fragmented (QUIC picks
 * the same figure). That leaves 1168 bytes of request payload.
 *
 * @example
 * ```ts
 * import { DATAGRAM_OVERHEAD, DEFAULT_MAX_DATAGRAM_SIZE } from "@nodewire/client/protocol";
 * console.log(DEFAULT_MAX_DATAGRAM_SIZE - DATAGRAM_OVERHEAD); // 1168
 * ```
 */
export const DEFAULT_MAX_DATAGRAM_SIZE = 1200;

/**
 * The largest UDP payload over IPv4: 65 535 minus the 20-byte IP and
 * 8-byte UDP headers. No datagram can be larger.
 *
 * @example
 * ```ts
 * import { MAX_DATAGRAM_SIZE } from "@nodewire/client/protocol";
 * console.log(MAX_DATAGRAM_SIZE); // 65507
 * ```
 */
export const MAX_DATAGRAM_SIZE = 65_507;

/**
 * The smallest `maxDatagramSize` accepted: room for the token, the header
 * and a 32-byte payload. Anything smaller could not carry a useful request.
 *
 * @example
 * ```ts
 * import { MIN_DATAGRAM_SIZE } from "@nodewire/client/protocol";
 * console.log(MIN_DATAGRAM_SIZE); // 64
 * ```
 */
export const MIN_DATAGRAM_SIZE = 64;

/**
 * A datagram taken apart: its token (a view) and its one message.
 *
 * @example
 * ```ts
 * import type { DecodedDatagram } from "@nodewire/client/protocol";
 * const show = (d: DecodedDatagram) => d.message.sequence;
 * ```
 */
export interface DecodedDatagram {
  /** The 16 token bytes, a view into the datagram. */
  token: Uint8Array;
  /** The frame; its payload is a view into the datagram. */
  message: Message;
}

/**
 * Builds one datagram: `token`, then the frame. The fields must fit their
 * bytes, but are not held to the protocol (an unknown type or a reserved
 * flag bit is written, for a tool that tests a receiver): a receiver drops
 * such a datagram.
 *
 * @throws {InvalidArgumentError} for a token of other than 16 bytes, a
 *   type, flags or sequence that does not fit its field, or a payload that
 *   is no Uint8Array.
 *
 * @example
 * ```ts
 * import { encodeDatagram, MessageType } from "@nodewire/client/protocol";
 * const token = new Uint8Array(16);
 * const datagram = encodeDatagram(token, MessageType.Ping, 0, 1, new Uint8Array(0));
 * console.log(datagram.byteLength); // 32
 * ```
 */
export function encodeDatagram(
  token: Uint8Array,
  type: number,
  flags: number,
  sequence: number,
  payload: Uint8Array,
): Uint8Array {
  const method = "encodeDatagram";
  checkToken(token, method);
  checkFrame(method, "", type, flags, sequence, payload);
  return encodeDatagramUnchecked(token, type, flags, sequence, payload);
}

/**
 * {@linkcode encodeDatagram} without its checks, for the transport's send:
 * the fields are constants and sequence numbers it made.
 */
export function encodeDatagramUnchecked(
  token: Uint8Array,
  type: number,
  flags: number,
  sequence: number,
  payload: Uint8Array,
): Uint8Array {
  const length = lengthOf(payload); // the real one: see codec.ts
  const out = new Uint8Array(DATAGRAM_OVERHEAD + length);
  out.set(token, 0);
  writeHeaderUnchecked(out, UDP_TOKEN_SIZE, type, flags, sequence, length);
  out.set(payload, DATAGRAM_OVERHEAD);
  return out;
}

/**
 * Takes a datagram apart, checking the frame by the stream's rules plus
 * one: the header's length must account for every byte after it (one
 * frame per datagram, no trailing bytes, no truncation).
 *
 * @throws {ProtocolError} for a short datagram, a bad version, an unknown
 *   type, reserved flags, an out-of-range sequence, or a length that does
 *   not match the datagram.
 * @example
 * ```ts
 * import { decodeDatagram, encodeDatagram, MessageType } from "@nodewire/client/protocol";
 * const token = new Uint8Array(16).fill(7);
 * const bytes = encodeDatagram(token, MessageType.Request, 1, 42, new Uint8Array([1, 104, 105]));
 * const { message } = decodeDatagram(bytes);
 * console.log(message.sequence, message.payload); // 42 Uint8Array(3) [ 1, 104, 105 ]
 * ```
 */
export function decodeDatagram(bytes: Uint8Array): DecodedDatagram {
  checkSize(bytes, "decodeDatagram");
  const message = readFrame(bytes, UDP_TOKEN_SIZE);
  const end = DATAGRAM_OVERHEAD + message.payload.byteLength;
  if (end !== bytes.byteLength) {
    throw new ProtocolError(
      `frame length ${message.payload.byteLength} does not match the ${
        bytes.byteLength - DATAGRAM_OVERHEAD
      } payload bytes of its datagram`,
    );
  }
  return { token: bytes.subarray(0, UDP_TOKEN_SIZE), message };
}

/**
 * A datagram of a session that agreed `"udp-batch"`, taken apart: its
 * token (a view) and its frames, in order.
 *
 * @example
 * ```ts
 * import type { DecodedDatagramFrames } from "@nodewire/client/protocol";
 * const count = (d: DecodedDatagramFrames) => d.messages.length;
 * ```
 */
export interface DecodedDatagramFrames {
  /** The 16 token bytes, a view into the datagram. */
  token: Uint8Array;
  /** The frames, at least one; each payload is a view into the datagram. */
  messages: Message[];
}

/**
 * One frame to put in a datagram with {@linkcode encodeDatagramFrames}.
 *
 * @example
 * ```ts
 * import { type DatagramFrame, MessageType } from "@nodewire/client/protocol";
 * const ping: DatagramFrame = { type: MessageType.Ping, flags: 0, sequence: 1, payload: new Uint8Array(0) };
 * ```
 */
export type DatagramFrame = Message;

/**
 * Builds one datagram carrying several frames back to back after the
 * token: the layout of a session that agreed `"udp-batch"`. The fields
 * are checked as {@linkcode encodeDatagram} checks them, but nothing
 * checks the size against a limit (see {@linkcode DatagramPacker} for
 * that). With one frame the bytes are those of {@linkcode encodeDatagram}.
 *
 * @throws {InvalidArgumentError} as {@linkcode encodeDatagram} does, or
 *   for frames that are no array of objects, or an empty one (a datagram
 *   of the layout carries at least one frame).
 *
 * @example
 * ```ts
 * import { encodeDatagramFrames, MessageType } from "@nodewire/client/protocol";
 * const bytes = encodeDatagramFrames(new Uint8Array(16), [
 *   { type: MessageType.Ping, flags: 0, sequence: 1, payload: new Uint8Array(0) },
 *   { type: MessageType.Ping, flags: 0, sequence: 2, payload: new Uint8Array(0) },
 * ]);
 * console.log(bytes.byteLength); // 48
 * ```
 */
export function encodeDatagramFrames(
  token: Uint8Array,
  frames: readonly DatagramFrame[],
): Uint8Array {
  const method = "encodeDatagramFrames";
  checkToken(token, method);
  // itemsOf: Array.isArray threw on a revoked proxy, and a hole, which
  // map() skips, failed later as a TypeError; in the copy it is undefined.
  const items = itemsOf(frames);
  if (items === undefined) {
    throw new InvalidArgumentError("frames", frames, "expected an array", {
      method,
    });
  }
  // A token alone is no datagram of the layout: decodeDatagramFrames
  // refuses it (too short for a frame), so the node would drop it.
  if (items.length === 0) {
    throw new InvalidArgumentError(
      "frames",
      frames,
      "expected at least one frame (a datagram carries one or more)",
      { method },
    );
  }
  // Each frame read once, into a copy, and checked before any is written.
  const copies = items.map((frame, i) => {
    const at = `frames[${i}]`;
    const f = fieldsOf<Message>(method, at, frame, MESSAGE_FIELDS);
    checkFrame(method, `${at}.`, f.type, f.flags, f.sequence, f.payload);
    return f;
  });
  let size = UDP_TOKEN_SIZE;
  for (const { payload } of copies) size += HEADER_SIZE + lengthOf(payload);
  const out = new Uint8Array(size);
  out.set(token, 0);
  let at = UDP_TOKEN_SIZE;
  for (const { type, flags, sequence, payload } of copies) {
    const length = lengthOf(payload);
    writeHeaderUnchecked(out, at, type, flags, sequence, length);
    out.set(payload, at + HEADER_SIZE);
    at += HEADER_SIZE + length;
  }
  return out;
}

/**
 * Throws unless each field fits its bytes in the header (an unknown type
 * does), and the payload is a Uint8Array; `at` prefixes the names.
 */
export function checkFrame(
  method: string,
  at: string,
  type: unknown,
  flags: unknown,
  sequence: unknown,
  payload: unknown,
): void {
  const fields: [string, unknown, number][] = [
    ["type", type, 0xff],
    ["flags", flags, 0xffff],
    ["sequence", sequence, MAX_SEQUENCE],
  ];
  for (const [name, value, max] of fields) {
    if (
      !Number.isInteger(value) || !((value as number) >= 0) ||
      (value as number) > max
    ) {
      throw new InvalidArgumentError(
        at + name,
        value,
        `expected an integer in 0–${max}`,
        { method },
      );
    }
  }
  if (!(payload instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      `${at}payload`,
      payload,
      "expected a Uint8Array",
      { method },
    );
  }
}

/**
 * Takes apart a datagram of a session that agreed `"udp-batch"`: the
 * token, then one or more frames back to back, the last ending exactly at
 * the datagram's end. Every frame is checked before any is returned, so a
 * datagram with one bad frame, or a partial frame at its end, is refused
 * whole: the receiver drops it and acts on none of its frames. Which
 * types a direction allows is the receiver's check, frame by frame.
 *
 * @throws {ProtocolError} for a datagram shorter than a token and a
 *   header, any frame breaking a rule of the stream (version, type,
 *   flags, sequence), or a last frame cut short.
 * @example
 * ```ts
 * import { decodeDatagramFrames, encodeDatagramFrames, MessageType } from "@nodewire/client/protocol";
 * const bytes = encodeDatagramFrames(new Uint8Array(16), [
 *   { type: MessageType.Request, flags: 0, sequence: 3, payload: new Uint8Array([1]) },
 *   { type: MessageType.Ping, flags: 0, sequence: 4, payload: new Uint8Array(0) },
 * ]);
 * console.log(decodeDatagramFrames(bytes).messages.map((m) => m.sequence)); // [ 3, 4 ]
 * ```
 */
export function decodeDatagramFrames(
  bytes: Uint8Array,
): DecodedDatagramFrames {
  const size = checkSize(bytes, "decodeDatagramFrames");
  const messages: Message[] = [];
  let at = UDP_TOKEN_SIZE;
  while (at < size) {
    if (size - at < HEADER_SIZE) {
      throw new ProtocolError(
        `datagram ends ${size - at} bytes into a frame header at offset ${at}`,
      );
    }
    const message = readFrame(bytes, at);
    messages.push(message);
    at += HEADER_SIZE + message.payload.byteLength;
  }
  return { token: bytes.subarray(0, UDP_TOKEN_SIZE), messages };
}

/** The size of `bytes`, which must be a datagram's worth of a Uint8Array. */
function checkSize(bytes: Uint8Array, method: string): number {
  // One cheap test, on the path of every datagram received.
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError("bytes", bytes, "expected a Uint8Array", {
      method,
    });
  }
  const size = bytes.byteLength;
  if (size < DATAGRAM_OVERHEAD) {
    throw new ProtocolError(
      `datagram of ${size} bytes is shorter than a token and a frame header (${DATAGRAM_OVERHEAD})`,
    );
  }
  return size;
}

/**
 * The frame whose header starts at `at` (there are at least HEADER_SIZE
 * bytes from `at`), checked by the stream's rules; its payload is a view.
 */
function readFrame(bytes: Uint8Array, at: number): Message {
  const fault = headerFault(bytes, at, Infinity);
  if (fault !== undefined) throw new ProtocolError(fault);
  const length = readU32(bytes, at + 12);
  const start = at + HEADER_SIZE;
  if (length > bytes.byteLength - start) {
    throw new ProtocolError(
      `frame length ${length} runs past the ${
        bytes.byteLength - start
      } bytes left in its datagram`,
    );
  }
  return {
    type: bytes[at + 1],
    flags: (bytes[at + 2] << 8) | bytes[at + 3],
    sequence: readSequence(bytes, at),
    payload: bytes.subarray(start, start + length),
  };
}
