/**
 * nodewire: the connection layer of a client for a distributed database.
 * One core in Web-standard TypeScript for Deno, Bun and Node: framed binary
 * protocol, connections with many requests in flight, pools per node,
 * health checks, load distribution, retries with backoff and graceful
 * shutdown.
 *
 * This root module is what an application needs: {@linkcode Client}, its
 * options, stats and events, the configuration types and defaults, every
 * error class with its {@linkcode ErrorCode}, and the retry helpers.
 * Building blocks for composing a client of your own live in sub-paths:
 * `@nodewire/client/core`, `/protocol`, `/auth`, `/runtime`, `/testing` and
 * `/cli`.
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
 * @example Handling errors
 * ```ts
 * import { Client, NodewireError } from "@nodewire/client";
 * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
 * try {
 *   await client.request(new Uint8Array([1]), { timeoutMs: 250 });
 * } catch (error) {
 *   if (!(error instanceof NodewireError)) throw error;
 *   switch (error.code) {
 *     case "REQUEST_TIMEOUT":
 *       console.log("slow node:", error.message);
 *       break;
 *     case "NO_HEALTHY_NODES":
 *       console.log("the cluster is down");
 *       break;
 *     default:
 *       throw error;
 *   }
 * } finally {
 *   await client.disconnect();
 * }
 * ```
 *
 * @module
 */

// The client.
export {
  Client,
  type ClientRequestOptions,
  type ClientStats,
  type DisconnectOptions,
  type NodeStats,
} from "./src/client/client.ts";
export {
  type ClientEventMap,
  RetryEvent,
  type RetryEventDetail,
} from "./src/client/events.ts";
export type { HealthCheckResult } from "./src/cluster/health_loop.ts";
export {
  type NodeHealthChange,
  NodeHealthEvent,
  ProtocolSelectedEvent,
  type ProtocolSelection,
} from "./src/cluster/events.ts";
export { PoolEvent, type PoolEventMap } from "./src/pool/events.ts";

// Configuration.
export type {
  ConnectionConfig,
  HealthConfig,
  LoadBalancing,
  LogEntry,
  Logger,
  PoolConfig,
  RetryConfig,
} from "./src/config/shapes.ts";
export {
  DEFAULT_HEALTH_CONFIG,
  DEFAULT_POOL_CONFIG,
  DEFAULT_PORT,
  DEFAULT_RETRY_CONFIG,
  DEFAULT_TIMEOUT_MS,
} from "./src/config/defaults.ts";
export {
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  type TlsConfig,
} from "./src/config/tls.ts";
export type { TlsPolicy } from "./src/protocol/negotiation.ts";
export { ProtocolType } from "./src/protocol_type.ts";
export { Secret } from "./src/secret.ts";

// Errors.
export {
  AbortedError,
  AuthenticationError,
  type AuthFailureReason,
  ClientClosedError,
  ConfigError,
  ConnectFailedError,
  ConnectionClosedError,
  ConnectionError,
  type ConnectionErrorCode,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  DatagramTooLargeError,
  type ErrorCode,
  HostNotFoundError,
  InvalidArgumentError,
  NegotiationError,
  NodeUnhealthyError,
  NodewireError,
  NoHealthyNodesError,
  PoolClosedError,
  PoolMisuseError,
  PoolTimeoutError,
  ProtocolError,
  RemoteError,
  RequestTimeoutError,
  RetriesExhaustedError,
  SaslprepError,
  TlsError,
  type TlsFailureReason,
} from "./src/errors.ts";
export { RemoteErrorCode } from "./src/protocol/messages.ts";

// Retry.
export {
  executeWithRetry,
  type ExecuteWithRetryOptions,
  isRetryable,
  type IsRetryableOptions,
  type RetryInfo,
} from "./src/client/retry.ts";
