/**
 * Every error class of the SDK, its codes and the tables that classify
 * them. Every error carries a stable literal `code` that callers can switch
 * on, and a `retryable` flag that says whether trying the same request
 * again is safe. Runtime-specific errors (ECONNREFUSED, Deno's
 * ConnectionRefused, Bun's connectError) are translated into these by the
 * runtime adapters, so no caller ever has to know which runtime it runs on.
 *
 * @module
 */

export {
  ConfigError,
  InvalidArgumentError,
  messageOf,
  NodewireError,
  nodewireErrorOf,
  type NodewireErrorOptions,
  ProtocolError,
} from "./errors/base.ts";
export {
  type ConnectionErrorCode,
  type ErrorCode,
  NEVER_RETRIED_CODES,
  NEVER_SENT_CODES,
  NOT_THE_NODES_FAULT,
} from "./errors/codes.ts";
export {
  ConnectFailedError,
  ConnectionClosedError,
  ConnectionError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  type Endpoint,
  formatAddress,
  HostNotFoundError,
  NodeUnhealthyError,
} from "./errors/connection.ts";
export {
  AbortedError,
  ClientClosedError,
  DatagramTooLargeError,
  NoHealthyNodesError,
  RemoteError,
  RequestTimeoutError,
  RetriesExhaustedError,
} from "./errors/request.ts";
export {
  PoolClosedError,
  PoolMisuseError,
  PoolTimeoutError,
} from "./errors/pool.ts";
export {
  AuthenticationError,
  type AuthFailureReason,
  NegotiationError,
  type NegotiationFailure,
  SaslprepError,
  TlsError,
  type TlsFailureReason,
} from "./errors/security.ts";
