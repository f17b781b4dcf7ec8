/**
 * The frame layout and message types of the wire protocol, as documented
 * byte by byte in docs/PROTOCOL.md.
 *
 * ```
 * offset size field
 *  0     1    version        (1)
 *  1     1    message type
 *  2     2    flags          (u16, big-endian)
 *  4     8    sequence       (u64, big-endian)
 * 12     4    payload length (u32, big-endian)
 * 16     n    payload
 * ```
 *
 * @module
 */

/**
 * The protocol version this SDK speaks.
 *
 * @example
 * ```ts
 * import { decodeHello, PROTOCOL_VERSION } from "@nodewire/client/protocol";
 * declare const helloBytes: Uint8Array; // a HELLO frame's payload, on the node's side
 * const hello = decodeHello(helloBytes);
 * const version = Math.min(hello.version, PROTOCOL_VERSION); // the highest both speak
 * ```
 */
export const PROTOCOL_VERSION = 1;

/**
 * Bytes in a frame header.
 *
 * @example
 * ```ts
 * import { HEADER_SIZE } from "@nodewire/client/protocol";
 * declare const chunk: Uint8Array; // bytes read from the socket
 * const length = new DataView(chunk.buffer, chunk.byteOffset).getUint32(12);
 * console.log(`frame of ${HEADER_SIZE + length} bytes`);
 * ```
 */
export const HEADER_SIZE = 16;

/**
 * Message types. Control messages are rare; PING/PONG and REQUEST/RESPONSE
 * are the hot path.
 *
 * @example
 * ```ts
 * import { MessageType } from "@nodewire/client/protocol";
 * console.log(MessageType.Request); // 32
 * ```
 */
export const MessageType = {
  /** Client → node, first frame on a connection: who the client is. */
  Hello: 0x01,
  /** Node → client: node id, limits, whether auth is required. */
  HelloOk: 0x02,
  /** Client → node: the transport protocols the client offers. */
  Negotiate: 0x03,
  /** Node → client: the protocols the node supports and its choice. */
  NegotiateOk: 0x04,
  /** Client → node: SCRAM client-first message. */
  AuthStart: 0x05,
  /** Node → client: SCRAM server-first message. */
  AuthChallenge: 0x06,
  /** Client → node: SCRAM client-final message. */
  AuthFinal: 0x07,
  /** Node → client: SCRAM server-final message; authenticated. */
  AuthOk: 0x08,
  /** Either side: liveness probe; the payload is echoed. */
  Ping: 0x10,
  /** Answer to a ping, same sequence number. */
  Pong: 0x11,
  /** Client → node: an application request. */
  Request: 0x20,
  /** Node → client: the answer to the request with the same sequence. */
  Response: 0x21,
  /** Node → client: the request (or the connection, sequence 0) failed. */
  Error: 0x30,
  /** Either side: I am closing or draining; send nothing new. */
  Goodbye: 0x31,
} as const;

/**
 * A message type value.
 *
 * @example
 * ```ts
 * import { MessageType, type MessageTypeValue } from "@nodewire/client/protocol";
 * const names = new Map<MessageTypeValue, string>(
 *   Object.entries(MessageType).map(([name, value]) => [value, name]),
 * );
 * console.log(names.get(MessageType.Response)); // "Response"
 * ```
 */
export type MessageTypeValue = typeof MessageType[keyof typeof MessageType];

// A table, not a Set: this is checked for every frame in and out.
const KNOWN_TYPES = new Uint8Array(256);
for (const t of Object.values(MessageType)) KNOWN_TYPES[t] = 1;

/**
 * Whether `type` is a message type this version knows: false for anything
 * else, a value that is no number (a BigInt, a string) included.
 *
 * @example
 * ```ts
 * import { isKnownMessageType } from "@nodewire/client/protocol";
 * isKnownMessageType(0x20); // true
 * isKnownMessageType(16n); // false
 * ```
 */
export function isKnownMessageType(type: unknown): type is MessageTypeValue {
  // A BigInt or a symbol made the bit test below throw a raw TypeError.
  return typeof type === "number" && isKnownTypeNumber(type);
}

/**
 * {@linkcode isKnownMessageType} for a value known to be a number (a
 * header's byte, as decoders read it per frame), without the `typeof`.
 */
export function isKnownTypeNumber(type: number): type is MessageTypeValue {
  // Not 16.5, nor NaN: only a byte is a type.
  return (type & 0xff) === type && KNOWN_TYPES[type] === 1;
}

/**
 * Frame flags. Bits not listed here are reserved and must be zero.
 *
 * @example
 * ```ts
 * import { FrameFlags } from "@nodewire/client/protocol";
 * const flags = FrameFlags.Idempotent;
 * ```
 */
export const FrameFlags = {
  /** REQUEST: safe to execute more than once, so safe to retry after send. */
  Idempotent: 0x0001,
} as const;

/**
 * Every flag bit this version defines.
 *
 * @example
 * ```ts
 * import { KNOWN_FLAGS } from "@nodewire/client/protocol";
 * declare const flags: number; // from a frame header
 * if ((flags & ~KNOWN_FLAGS) !== 0) throw new Error(`reserved flag bits set: 0x${flags.toString(16)}`);
 * ```
 */
export const KNOWN_FLAGS = 0x0001;

/**
 * Largest sequence number: 2^53 − 1, so it fits a JavaScript number. A
 * connection that sends a million messages a second takes 285 years to
 * reach it.
 *
 * @example
 * ```ts
 * import { MAX_SEQUENCE } from "@nodewire/client/protocol";
 * let sequence = 0;
 * function nextSequence(): number {
 *   // Past it writeHeader refuses the frame: a new connection starts over.
 *   if (sequence === MAX_SEQUENCE) throw new Error("sequence numbers used up");
 *   return ++sequence;
 * }
 * console.log(nextSequence(), nextSequence()); // 1 2
 * ```
 */
export const MAX_SEQUENCE: number = Number.MAX_SAFE_INTEGER;

/**
 * One decoded or to-be-encoded frame. `payload` is a view into the bytes it
 * was decoded from, valid as long as the caller keeps it.
 *
 * @example
 * ```ts
 * import { type Message, MessageType } from "@nodewire/client/protocol";
 * const ping: Message = {
 *   type: MessageType.Ping,
 *   flags: 0,
 *   sequence: 1,
 *   payload: new Uint8Array(0),
 * };
 * ```
 */
export interface Message {
  /** One of {@linkcode MessageType}. */
  type: number;
  /** Bit set of {@linkcode FrameFlags}. */
  flags: number;
  /** Sequence number; 0 for messages that answer nothing. */
  sequence: number;
  /** Payload bytes. */
  payload: Uint8Array;
}

/**
 * Default maximum frame payload: 16 MiB. A peer may agree on less or more,
 * up to {@linkcode MAX_FRAME_SIZE_LIMIT}.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_FRAME_SIZE } from "@nodewire/client/protocol";
 * console.log(DEFAULT_MAX_FRAME_SIZE); // 16777216
 * ```
 */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;

/**
 * The protocol's hard ceiling on a frame payload: 1 GiB.
 *
 * @example
 * ```ts
 * import { MAX_FRAME_SIZE_LIMIT } from "@nodewire/client/protocol";
 * console.log(MAX_FRAME_SIZE_LIMIT); // 1073741824
 * ```
 */
export const MAX_FRAME_SIZE_LIMIT = 1024 * 1024 * 1024;

/**
 * The least `maxFrameSize` either side may announce, and the floor of
 * every `maxFrameSize` option: below it a peer could take neither the
 * handshake's messages nor most requests.
 *
 * @example
 * ```ts
 * import { MIN_FRAME_SIZE } from "@nodewire/client/protocol";
 * console.log(MIN_FRAME_SIZE); // 1024
 * ```
 */
export const MIN_FRAME_SIZE = 1024;
