/**
 * The frame header's 16 bytes: written (checked for a caller's frame, or
 * unchecked on the hot path), read field by field, and judged by the
 * stream's rules. Apart from codec.ts because the stream's decoder, the
 * frame writer and the datagram codec all read and write headers; the
 * codec keeps what is its own: a stream's state and its payloads.
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError } from "../errors.ts";
import { shown } from "./foreign_values.ts";
import {
  HEADER_SIZE,
  isKnownTypeNumber,
  KNOWN_FLAGS,
  MAX_SEQUENCE,
  PROTOCOL_VERSION,
} from "./frame.ts";

/** 2^32: the weight of a sequence number's high 32 bits. */
export const TWO_32 = 0x1_0000_0000;

/**
 * Writes a frame header into `target` at `offset`. Validates the fields, so a
 * bug upstream cannot put a malformed frame on the wire.
 *
 * @throws {ProtocolError} for an unknown type, reserved flags, or a sequence
 * or length out of range.
 * @throws {InvalidArgumentError} when it does not fit `target`.
 * @example
 * ```ts
 * import { HEADER_SIZE, MessageType, writeHeader } from "@nodewire/client/protocol";
 * const header = new Uint8Array(HEADER_SIZE);
 * writeHeader(header, 0, MessageType.Ping, 0, 7, 0);
 * ```
 */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  sequence: number,
  length: number,
): void {
  // Each a number first: the bit tests below throw a raw TypeError on a
  // BigInt (a u64 sequence held as one, say) or a symbol.
  if (typeof type !== "number" || !isKnownTypeNumber(type)) {
    throw new ProtocolError(`cannot encode unknown message type ${hex(type)}`);
  }
  // Equal only for an integer with no bit outside KNOWN_FLAGS.
  if (typeof flags !== "number" || (flags & KNOWN_FLAGS) !== flags) {
    throw new ProtocolError(`cannot encode reserved flag bits ${hex(flags)}`);
  }
  if (!Number.isInteger(sequence) || sequence < 0 || sequence > MAX_SEQUENCE) {
    throw new ProtocolError(`sequence ${shown(sequence)} is out of range`);
  }
  // A length that wrapped would frame bytes that are not the payload.
  if (typeof length !== "number" || length >>> 0 !== length) {
    throw new ProtocolError(`payload length ${shown(length)} is out of range`);
  }
  // A header cut short at the end of `target` would go unnoticed.
  if (
    !(target instanceof Uint8Array) || typeof offset !== "number" ||
    offset >>> 0 !== offset || offset > target.length - HEADER_SIZE
  ) {
    throw new InvalidArgumentError("offset", offset, "expected room for it");
  }
  writeHeaderUnchecked(target, offset, type, flags, sequence, length);
}

/**
 * Writes a frame header without validating the fields: for internal callers
 * on the hot path whose type and flags are constants and whose sequence
 * numbers they generated or decoded themselves.
 */
export function writeHeaderUnchecked(
  target: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  sequence: number,
  length: number,
): void {
  const hi = Math.floor(sequence / TWO_32);
  const lo = sequence >>> 0;
  target[offset] = PROTOCOL_VERSION;
  target[offset + 1] = type;
  target[offset + 2] = flags >>> 8;
  target[offset + 3] = flags & 0xff;
  writeU32(target, offset + 4, hi);
  writeU32(target, offset + 8, lo);
  writeU32(target, offset + 12, length);
}

/**
 * {@linkcode writeHeaderUnchecked} through a DataView over the target's
 * buffer (`offset` counted from the view's start): four 32-bit stores
 * instead of sixteen byte stores, each with its bounds check. For the
 * frame writer's slab, on every request's path; its view lives as long
 * as the slab.
 */
export function writeHeaderInto(
  view: DataView,
  offset: number,
  type: number,
  flags: number,
  sequence: number,
  length: number,
): void {
  view.setUint32(offset, (PROTOCOL_VERSION << 24 | type << 16 | flags) >>> 0);
  view.setUint32(offset + 4, Math.floor(sequence / TWO_32));
  view.setUint32(offset + 8, sequence >>> 0);
  view.setUint32(offset + 12, length);
}

/**
 * What is wrong with the frame header at `at` by the stream's rules (a
 * payload over `max` bytes included), or `undefined`: the one check of
 * the stream's decoder and the datagram's.
 */
export function headerFault(
  bytes: Uint8Array,
  at: number,
  max: number,
): string | undefined {
  const type = bytes[at + 1];
  const flags = (bytes[at + 2] << 8) | bytes[at + 3];
  const length = readU32(bytes, at + 12);
  return bytes[at] !== PROTOCOL_VERSION
    ? `unsupported protocol version ${bytes[at]} (expected ${PROTOCOL_VERSION})`
    : !isKnownTypeNumber(type)
    ? `unknown message type ${hex(type)}`
    : (flags & ~KNOWN_FLAGS) !== 0
    ? `reserved flag bits set: ${hex(flags)}`
    : readU32(bytes, at + 4) > 0x1f_ffff
    ? "sequence number above 2^53 - 1"
    : length > max
    ? `frame payload of ${length} bytes exceeds the maximum of ${max}`
    : undefined;
}

/** The sequence number of the frame header at `at` (64 bits, big-endian). */
export function readSequence(bytes: Uint8Array, at: number): number {
  return readU32(bytes, at + 4) * TWO_32 + readU32(bytes, at + 8);
}

/** The big-endian u32 at `at` (the header's fields: see docs/PROTOCOL.md). */
export function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) |
    bytes[at + 3]) >>> 0;
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

/** A field in a message: hex when it is a number; never throws. */
function hex(n: unknown): string {
  return typeof n === "number"
    ? "0x" + n.toString(16).padStart(2, "0")
    : shown(n);
}
