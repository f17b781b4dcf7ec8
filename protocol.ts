/**
 * The wire format, for tools and for nodes written in TypeScript: frame
 * constants, the incremental {@linkcode MessageCodec}, control-message
 * payloads, protocol negotiation and the UDP datagram codec. Byte by byte
 * in docs/PROTOCOL.md.
 *
 * @example Encoding and decoding a frame
 * ```ts
 * import { HEADER_SIZE, MessageCodec, MessageType, writeHeader } from "@nodewire/client/protocol";
 * const frame = new Uint8Array(HEADER_SIZE + 2);
 * writeHeader(frame, 0, MessageType.Request, 0, 1, 2);
 * frame.set([104, 105], HEADER_SIZE);
 * new MessageCodec().decode(frame, (message) => {
 *   console.log(message.type === MessageType.Request, message.payload); // true, [104, 105]
 * });
 * ```
 *
 * @module
 */

export {
  DEFAULT_MAX_FRAME_SIZE,
  FrameFlags,
  HEADER_SIZE,
  isKnownMessageType,
  KNOWN_FLAGS,
  MAX_FRAME_SIZE_LIMIT,
  MAX_SEQUENCE,
  type Message,
  MessageType,
  type MessageTypeValue,
  MIN_FRAME_SIZE,
  PROTOCOL_VERSION,
} from "./src/protocol/frame.ts";
export { type FrameHandler, MessageCodec } from "./src/protocol/codec.ts";
export { writeHeader } from "./src/protocol/header_bytes.ts";
export {
  agreeFeatures,
  decodeError,
  decodeHello,
  decodeHelloOk,
  decodeJson,
  encodeError,
  encodeHello,
  encodeJson,
  type ErrorPayload,
  type HelloOkPayload,
  type HelloPayload,
  PROTOCOL_FEATURES,
  type ProtocolFeature,
} from "./src/protocol/messages.ts";
export {
  allowedProtocols,
  decodeNegotiate,
  decodeNegotiateOk,
  type NegotiateOkPayload,
  type NegotiatePayload,
  selectProtocol,
  sortProtocols,
} from "./src/protocol/negotiation.ts";
export { isProtocolType, PROTOCOL_PRIORITY } from "./src/protocol_type.ts";
export {
  DATAGRAM_OVERHEAD,
  type DatagramFrame,
  decodeDatagram,
  decodeDatagramFrames,
  type DecodedDatagram,
  type DecodedDatagramFrames,
  DEFAULT_MAX_DATAGRAM_SIZE,
  encodeDatagram,
  encodeDatagramFrames,
  formatUdpToken,
  hasToken,
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
  newUdpToken,
  parseUdpToken,
  UDP_TOKEN_SIZE,
} from "./src/protocol/datagram.ts";
export { DatagramPacker } from "./src/protocol/datagram_packer.ts";
