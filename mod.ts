/**
 * nodewire: the connection layer of a client for a distributed database.
 * One core in Web-standard TypeScript for Deno, Bun and Node: framed binary
 * protocol, connections with many requests in flight, pools per node,
 * health checks, load distribution, retries with backoff and graceful
 * shutdown.
 *
 * @example A client for a cluster
 * ```ts
 * import { Client } from "@nodewire/client";
 * const client = await Client.connect({
 *   hosts: ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"],
 * });
 * const reply = await client.request(new Uint8Array([1, 104, 105]), { idempotent: true });
 * await client.disconnect();
 * ```
 *
 * @example Talk to one node over one connection
 * ```ts
 * import { Connection, getAdapter } from "@nodewire/client";
 * const connection = await Connection.connect({
 *   adapter: await getAdapter(),
 *   hostname: "127.0.0.1",
 *   port: 7000,
 * });
 * console.log(await connection.ping(), "ms");
 * await connection.close();
 * ```
 *
 * @module
 */

export * from "./src/client/client.ts";
export * from "./src/client/events.ts";
export * from "./src/cluster/manager.ts";
export * from "./src/cluster/events.ts";
export * from "./src/pool/pool.ts";
export * from "./src/pool/events.ts";
export {
  type EventMap,
  type ListenerOptions,
  TypedEventTarget,
  type TypedListener,
} from "./src/events.ts";
export * from "./src/client/retry.ts";
export * from "./src/cluster/balancer.ts";
export * from "./src/cluster/health.ts";
export * from "./src/cluster/concurrency.ts";
export * from "./src/errors.ts";
export * from "./src/config/config.ts";
export { Secret } from "./src/secret.ts";
export {
  type Clock,
  sleep,
  systemClock,
  type TimerHandle,
} from "./src/clock.ts";
export {
  Connection,
  type ConnectionOptions,
  type ConnectionStats,
  type ReplySink,
  type RequestOptions,
  type RequestRoute,
} from "./src/connection/connection.ts";
export {
  MessageCodec,
  writeHeader,
  writeHeaderUnchecked,
} from "./src/protocol/codec.ts";
export {
  FrameFlags,
  HEADER_SIZE,
  isKnownMessageType,
  KNOWN_FLAGS,
  MAX_SEQUENCE,
  type Message,
  MessageType,
  type MessageTypeValue,
  PROTOCOL_VERSION,
} from "./src/protocol/frame.ts";
export {
  decodeError,
  decodeHelloOk,
  decodeJson,
  encodeError,
  encodeJson,
  type ErrorPayload,
  type HelloOkPayload,
  type HelloPayload,
  RemoteErrorCode,
} from "./src/protocol/messages.ts";
export {
  detectRuntime,
  getAdapter,
  type NativeRuntimeName,
} from "./src/runtime/detect.ts";
export type {
  ByteChannel,
  ConnectOptions,
  Listener,
  ListenOptions,
  RuntimeAdapter,
  RuntimeName,
  TlsOptions,
  TlsServerOptions,
} from "./src/runtime/types.ts";
export * from "./src/handshake/tls.ts";
export * from "./src/config/tls.ts";
export * from "./src/protocol/negotiation.ts";
export * from "./src/handshake/handshake.ts";
export {
  type UdpStats,
  udpStats,
  udpTransport,
  type UdpTransportOptions,
} from "./src/handshake/udp.ts";
export {
  DATAGRAM_OVERHEAD,
  decodeDatagram,
  type DecodedDatagram,
  DEFAULT_MAX_DATAGRAM_SIZE,
  encodeDatagram,
  formatUdpToken,
  hasToken,
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
  newUdpToken,
  parseUdpToken,
  UDP_TOKEN_SIZE,
} from "./src/protocol/datagram.ts";
export type {
  DatagramChannel,
  DatagramOpener,
  DatagramOptions,
  DatagramReceiver,
} from "./src/runtime/datagram.ts";
export {
  escapeScramName,
  parseScramAttributes,
  SCRAM_MAX_ITERATIONS,
  SCRAM_MIN_ITERATIONS,
  SCRAM_SHA_256,
  ScramClient,
  type ScramClientOptions,
  ScramKeyCache,
  unescapeScramName,
} from "./src/auth/scram.ts";
export { saslprep } from "./src/auth/saslprep.ts";
