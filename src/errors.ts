/**
 * Error classes of the SDK. Every error carries a stable `code` string that
 * callers can switch on, and a `retryable` flag that the retry layer reads.
 * Runtime-specific errors (ECONNREFUSED, Deno's ConnectionRefused, Bun's
 * connectError) are translated into these by the runtime adapters, so no
 * caller ever has to know which runtime it runs on.
 *
 * @module
 */

import type { ProtocolType } from "./protocol/negotiation.ts";

/** Options shared by every SDK error. */
export interface NodewireErrorOptions {
  /** The underlying error, kept for diagnostics. */
  cause?: unknown;
  /** Overrides the class's default retryability. */
  retryable?: boolean;
}

/**
 * Base class of every error the SDK throws or rejects with.
 *
 * @example Telling SDK errors apart from the rest
 * ```ts
 * import { NodewireError } from "@nodewire/client";
 * try {
 *   throw new NodewireError("NODEWIRE_ERROR", "something failed");
 * } catch (error) {
 *   if (error instanceof NodewireError) console.log(error.code, error.retryable);
 * }
 * ```
 */
export class NodewireError extends Error {
  /** Stable machine-readable code, such as `CONNECTION_REFUSED`. */
  readonly code: string;
  /** Whether trying the same operation again may succeed. */
  readonly retryable: boolean;

  /** Creates an error with a code, a message and options. */
  constructor(
    code: string,
    message: string,
    options: NodewireErrorOptions = {},
  ) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/**
 * A configuration value is missing or out of range. Never retried.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@nodewire/client";
 * const error = new ConfigError("poolConfig.maxConnections", -1, "must be at least 1");
 * console.log(error.field); // "poolConfig.maxConnections"
 * ```
 */
export class ConfigError extends NodewireError {
  /** The path of the offending field, such as `hosts[0]`. */
  readonly field: string;

  /**
   * Creates a config error. `value` is rendered into the message; pass
   * `"[redacted]"` for secrets.
   */
  constructor(field: string, value: unknown, expected: string) {
    super(
      "CONFIG_INVALID",
      `invalid ${field}: ${expected}, got ${renderValue(value)}`,
    );
    this.field = field;
  }
}

/**
 * The peer sent bytes that do not follow the wire protocol, or a frame
 * breaks a limit. Never retried on its own: the connection that saw it is
 * closed and its pending requests fail with {@linkcode ConnectionLostError}.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "@nodewire/client";
 * const error = new ProtocolError("unknown message type 0x7f");
 * console.log(error.code); // "PROTOCOL_ERROR"
 * ```
 */
export class ProtocolError extends NodewireError {
  /** Creates a protocol error saying what was wrong. */
  constructor(message: string, options: NodewireErrorOptions = {}) {
    super("PROTOCOL_ERROR", message, { ...options, retryable: false });
  }
}

/** Where a connection error comes from: a host and a port. */
export interface Endpoint {
  /** Host name or IP address. */
  hostname: string;
  /** TCP or UDP port. */
  port: number;
}

/**
 * Base class of errors about reaching or keeping a connection to a node.
 *
 * @example
 * ```ts
 * import { ConnectionError } from "@nodewire/client";
 * const error = new ConnectionError("CONNECTION_FAILED", "could not connect", {
 *   hostname: "127.0.0.1",
 *   port: 7000,
 * });
 * console.log(error.address); // "127.0.0.1:7000"
 * ```
 */
export class ConnectionError extends NodewireError {
  /** `host:port` of the node, `[v6]:port` for IPv6. */
  readonly address: string;

  /** Creates a connection error for an endpoint. Retryable by default. */
  constructor(
    code: string,
    message: string,
    endpoint: Endpoint,
    options: NodewireErrorOptions = {},
  ) {
    super(code, message, { retryable: true, ...options });
    this.address = formatAddress(endpoint);
  }
}

/**
 * The node actively refused the connection (nothing listens on the port).
 *
 * @example
 * ```ts
 * import { ConnectionRefusedError } from "@nodewire/client";
 * const e = new ConnectionRefusedError({ hostname: "127.0.0.1", port: 1 });
 * console.log(e.code); // "CONNECTION_REFUSED"
 * ```
 */
export class ConnectionRefusedError extends ConnectionError {
  /** Creates the error for an endpoint. */
  constructor(endpoint: Endpoint, options: NodewireErrorOptions = {}) {
    super(
      "CONNECTION_REFUSED",
      `connection to ${formatAddress(endpoint)} refused`,
      endpoint,
      options,
    );
  }
}

/**
 * Connecting (TCP, plus the hello handshake) took longer than allowed.
 *
 * @example
 * ```ts
 * import { ConnectTimeoutError } from "@nodewire/client";
 * const e = new ConnectTimeoutError({ hostname: "127.0.0.1", port: 7000 }, 5000);
 * console.log(e.timeoutMs); // 5000
 * ```
 */
export class ConnectTimeoutError extends ConnectionError {
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  /** Creates the error for an endpoint and the limit that passed. */
  constructor(
    endpoint: Endpoint,
    timeoutMs: number,
    options: NodewireErrorOptions = {},
  ) {
    super(
      "CONNECT_TIMEOUT",
      `connecting to ${
        formatAddress(endpoint)
      } timed out after ${timeoutMs} ms`,
      endpoint,
      options,
    );
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The host name could not be resolved. Retryable, since DNS failures are
 * often transient and another node may resolve.
 *
 * @example
 * ```ts
 * import { HostNotFoundError } from "@nodewire/client";
 * const e = new HostNotFoundError({ hostname: "nowhere.invalid", port: 7000 });
 * console.log(e.message);
 * ```
 */
export class HostNotFoundError extends ConnectionError {
  /** Creates the error for an endpoint. */
  constructor(endpoint: Endpoint, options: NodewireErrorOptions = {}) {
    super(
      "HOST_NOT_FOUND",
      `host ${endpoint.hostname} could not be resolved`,
      endpoint,
      options,
    );
  }
}

/**
 * An open connection was lost: reset or closed by the peer, or closed by
 * the client after a protocol violation. `sent` says whether the request it
 * failed had already been written, in which case it may have reached the
 * node and is retried only when idempotent.
 *
 * @example
 * ```ts
 * import { ConnectionLostError } from "@nodewire/client";
 * const e = new ConnectionLostError({ hostname: "127.0.0.1", port: 7000 }, "reset by peer");
 * console.log(e.code, e.sent); // "CONNECTION_LOST" true
 * ```
 */
export class ConnectionLostError extends ConnectionError {
  /** Whether the failed request had been written to the socket. */
  readonly sent: boolean;

  /** Creates the error; `reason` says how the connection was lost. */
  constructor(
    endpoint: Endpoint,
    reason: string,
    options: NodewireErrorOptions & { sent?: boolean } = {},
  ) {
    super(
      "CONNECTION_LOST",
      `connection to ${formatAddress(endpoint)} lost: ${reason}`,
      endpoint,
      options,
    );
    this.sent = options.sent ?? true;
  }
}

/**
 * The operation was attempted on a connection that is already closed.
 *
 * @example
 * ```ts
 * import { ConnectionClosedError } from "@nodewire/client";
 * const e = new ConnectionClosedError({ hostname: "127.0.0.1", port: 7000 });
 * console.log(e.code); // "CONNECTION_CLOSED"
 * ```
 */
export class ConnectionClosedError extends ConnectionError {
  /** Creates the error for an endpoint. */
  constructor(endpoint: Endpoint, options: NodewireErrorOptions = {}) {
    super(
      "CONNECTION_CLOSED",
      `connection to ${formatAddress(endpoint)} is closed`,
      endpoint,
      options,
    );
  }
}

/**
 * No response arrived within the request's timeout. The request may have
 * reached the node, so it is retried only when marked idempotent.
 *
 * @example
 * ```ts
 * import { RequestTimeoutError } from "@nodewire/client";
 * const e = new RequestTimeoutError("127.0.0.1:7000", 250);
 * console.log(e.timeoutMs); // 250
 * ```
 */
export class RequestTimeoutError extends NodewireError {
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;
  /** `host:port` of the node the request went to. */
  readonly address: string;

  /** Creates the error for a node address and the limit that passed. */
  constructor(address: string, timeoutMs: number) {
    super(
      "REQUEST_TIMEOUT",
      `request to ${address} timed out after ${timeoutMs} ms`,
      { retryable: true },
    );
    this.timeoutMs = timeoutMs;
    this.address = address;
  }
}

/**
 * The caller's `AbortSignal` fired. Never retried.
 *
 * @example
 * ```ts
 * import { AbortedError } from "@nodewire/client";
 * const e = new AbortedError("request aborted", "user gave up");
 * console.log(e.code); // "ABORTED"
 * ```
 */
export class AbortedError extends NodewireError {
  /** Creates the error; `reason` is the signal's reason. */
  constructor(message: string, reason?: unknown) {
    super("ABORTED", message, { cause: reason, retryable: false });
  }
}

/**
 * The node answered the request with an error frame. The node decides
 * whether it is retryable.
 *
 * @example
 * ```ts
 * import { RemoteError } from "@nodewire/client";
 * const e = new RemoteError(3, "key not found", false, "node-1");
 * console.log(e.remoteCode, e.retryable); // 3 false
 * ```
 */
export class RemoteError extends NodewireError {
  /** The node's numeric error code (see docs/PROTOCOL.md). */
  readonly remoteCode: number;
  /** The id of the node that answered, when known. */
  readonly nodeId: string | undefined;

  /** Creates the error from an error frame's fields. */
  constructor(
    remoteCode: number,
    message: string,
    retryable: boolean,
    nodeId?: string,
  ) {
    super(
      "REMOTE_ERROR",
      `node ${nodeId ?? "?"} answered error ${remoteCode}: ${message}`,
      { retryable },
    );
    this.remoteCode = remoteCode;
    this.nodeId = nodeId;
  }
}

/**
 * `getConnection()` waited longer than `connectionTimeoutMs` for a
 * connection. Retryable: it never reached a node.
 *
 * @example
 * ```ts
 * import { PoolTimeoutError } from "@nodewire/client";
 * const e = new PoolTimeoutError("127.0.0.1:7000", 5000, { open: 20, inUse: 20, waiting: 7 });
 * console.log(e.message);
 * ```
 */
export class PoolTimeoutError extends NodewireError {
  /** `host:port` of the pool's node. */
  readonly address: string;
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  /** Creates the error with the pool's counts at the moment it gave up. */
  constructor(
    address: string,
    timeoutMs: number,
    counts: { open: number; inUse: number; waiting: number },
  ) {
    super(
      "POOL_TIMEOUT",
      `no connection to ${address} within ${timeoutMs} ms ` +
        `(${counts.open} open, ${counts.inUse} in use, ${counts.waiting} waiting)`,
      { retryable: true },
    );
    this.address = address;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The pool was closed or cleared while the caller waited, or before it
 * asked. Retryable when the pool was only cleared (its node turned
 * unhealthy); not when it was closed for good.
 *
 * @example
 * ```ts
 * import { PoolClosedError } from "@nodewire/client";
 * const e = new PoolClosedError("127.0.0.1:7000", "closed");
 * console.log(e.retryable); // false
 * ```
 */
export class PoolClosedError extends NodewireError {
  /** `host:port` of the pool's node. */
  readonly address: string;

  /** Creates the error; `how` is `"closed"` or `"cleared"`. */
  constructor(
    address: string,
    how: "closed" | "cleared",
    options: NodewireErrorOptions = {},
  ) {
    super(
      how === "closed" ? "POOL_CLOSED" : "POOL_CLEARED",
      `the pool for ${address} was ${how}`,
      { retryable: how === "cleared", ...options },
    );
    this.address = address;
  }
}

/**
 * No node is healthy, and the client was not configured to try unhealthy
 * nodes anyway. Thrown at once instead of waiting.
 *
 * @example
 * ```ts
 * import { NoHealthyNodesError } from "@nodewire/client";
 * const e = new NoHealthyNodesError(["127.0.0.1:7000", "127.0.0.1:7001"]);
 * console.log(e.code); // "NO_HEALTHY_NODES"
 * ```
 */
export class NoHealthyNodesError extends NodewireError {
  /** The addresses of every known node, all unhealthy. */
  readonly addresses: readonly string[];

  /** Creates the error listing the nodes that are down. */
  constructor(
    addresses: readonly string[],
    options: NodewireErrorOptions = {},
  ) {
    super(
      "NO_HEALTHY_NODES",
      `no healthy node among ${addresses.length}: ${addresses.join(", ")}`,
      { retryable: true, ...options },
    );
    this.addresses = addresses;
  }
}

/**
 * The client is disconnecting or disconnected and takes no new work.
 *
 * @example
 * ```ts
 * import { ClientClosedError } from "@nodewire/client";
 * console.log(new ClientClosedError().code); // "CLIENT_CLOSED"
 * ```
 */
export class ClientClosedError extends NodewireError {
  /** Creates the error. */
  constructor(
    message = "the client is closed",
    options: NodewireErrorOptions = {},
  ) {
    super("CLIENT_CLOSED", message, { ...options, retryable: false });
  }
}

/**
 * Why authentication failed, in {@linkcode AuthenticationError.reason}:
 * - `"credentials-required"`: the node requires authentication and the
 *   client has no username and password;
 * - `"rejected"`: the node rejected the proof (wrong user or password);
 * - `"server-signature"`: the node's signature did not verify, so it does
 *   not know the password: a forged or misconfigured node;
 * - `"node-unauthenticated"`: the client has credentials but the node does
 *   not authenticate, so it could not prove who it is;
 * - `"bad-challenge"`: the node's SCRAM message was malformed or unsafe
 *   (iteration count out of bounds, a nonce that does not extend ours);
 * - `"invalid-credentials"`: the username or password is not allowed by
 *   SASLprep (control characters, for example), or is empty.
 */
export type AuthFailureReason =
  | "credentials-required"
  | "rejected"
  | "server-signature"
  | "node-unauthenticated"
  | "bad-challenge"
  | "invalid-credentials";

/**
 * Authentication failed. Never retried: trying the same credentials again
 * cannot succeed, and retrying could lock an account. The message never
 * contains the password.
 *
 * @example
 * ```ts
 * import { AuthenticationError } from "@nodewire/client";
 * const e = new AuthenticationError("the node rejected the credentials", { reason: "rejected" });
 * console.log(e.code, e.reason, e.retryable); // "AUTH_FAILED" "rejected" false
 * ```
 */
export class AuthenticationError extends NodewireError {
  /** Why it failed. */
  readonly reason: AuthFailureReason;
  /** `host:port` of the node, when known. */
  readonly address: string | undefined;

  /** Creates the error; `reason` says why. */
  constructor(
    message: string,
    options: { reason: AuthFailureReason; address?: string; cause?: unknown },
  ) {
    super("AUTH_FAILED", message, { cause: options.cause, retryable: false });
    this.reason = options.reason;
    this.address = options.address;
  }
}

/** What {@linkcode NegotiationError} reports about both sides. */
export interface NegotiationFailure {
  /** `host:port` of the node. */
  address: string;
  /** What the client offered (allowed by its policy and available to it). */
  clientProtocols: readonly ProtocolType[];
  /** What the client's policy allows, available or not. */
  allowedProtocols: readonly ProtocolType[];
  /** What the node said it serves. */
  nodeProtocols: readonly ProtocolType[];
  /** What went wrong, in words. */
  detail: string;
}

/**
 * The client and a node could not agree on a transport protocol: they
 * share none that the client's policy allows, or the node's choice differs
 * from the client's. Never retried and never answered by falling back to a
 * weaker protocol. The message lists both sides' sets.
 *
 * @example
 * ```ts
 * import { NegotiationError } from "@nodewire/client";
 * const e = new NegotiationError({
 *   address: "127.0.0.1:7000",
 *   clientProtocols: ["tls"],
 *   allowedProtocols: ["tls"],
 *   nodeProtocols: ["tcp"],
 *   detail: "no protocol in common",
 * });
 * console.log(e.code, e.message);
 * ```
 */
export class NegotiationError extends NodewireError {
  /** `host:port` of the node. */
  readonly address: string;
  /** What the client offered. */
  readonly clientProtocols: readonly ProtocolType[];
  /** What the client's policy allows. */
  readonly allowedProtocols: readonly ProtocolType[];
  /** What the node serves. */
  readonly nodeProtocols: readonly ProtocolType[];

  /** Creates the error from both sides' sets. */
  constructor(failure: NegotiationFailure, options: { cause?: unknown } = {}) {
    const list = (p: readonly string[]) => `[${p.join(", ")}]`;
    super(
      "NEGOTIATION_FAILED",
      `protocol negotiation with ${failure.address} failed: ${failure.detail}` +
        ` (client offers ${list(failure.clientProtocols)}, its policy allows ` +
        `${list(failure.allowedProtocols)}; node supports ` +
        `${list(failure.nodeProtocols)})`,
      { cause: options.cause, retryable: false },
    );
    this.address = failure.address;
    this.clientProtocols = Object.freeze([...failure.clientProtocols]);
    this.allowedProtocols = Object.freeze([...failure.allowedProtocols]);
    this.nodeProtocols = Object.freeze([...failure.nodeProtocols]);
  }
}

/**
 * Every attempt allowed by the retry policy failed. Keeps the last error as
 * `cause` and says how many attempts were made.
 *
 * @example
 * ```ts
 * import { RetriesExhaustedError } from "@nodewire/client";
 * const e = new RetriesExhaustedError(4, new Error("refused"));
 * console.log(e.attempts); // 4
 * ```
 */
export class RetriesExhaustedError extends NodewireError {
  /** How many attempts were made, the first included. */
  readonly attempts: number;

  /** Creates the error from the attempt count and the last failure. */
  constructor(attempts: number, lastError: unknown) {
    super(
      "RETRIES_EXHAUSTED",
      `gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${
        lastError instanceof Error ? lastError.message : String(lastError)
      }`,
      { cause: lastError, retryable: false },
    );
    this.attempts = attempts;
  }
}

/** Renders a value for an error message, short and safe. */
function renderValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 80 ? value.slice(0, 80) + "…" : value);
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (value === undefined || value === null) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `a value of type ${typeof value}`;
}

/**
 * Formats an endpoint as `host:port`, bracketing IPv6 literals.
 *
 * @example
 * ```ts
 * import { formatAddress } from "@nodewire/client";
 * formatAddress({ hostname: "::1", port: 7000 }); // "[::1]:7000"
 * ```
 */
export function formatAddress(endpoint: Endpoint): string {
  return endpoint.hostname.includes(":")
    ? `[${endpoint.hostname}]:${endpoint.port}`
    : `${endpoint.hostname}:${endpoint.port}`;
}

/**
 * Why a TLS handshake failed, in {@linkcode TlsError.reason}:
 * - `"certificate"`: the node's certificate does not chain to a trusted CA
 *   (unknown issuer, self-signed, bad signature);
 * - `"hostname"`: the certificate is valid but not for the name the client
 *   connected to (`tls.serverName`, else the host);
 * - `"expired"`: the certificate is outside its validity period (expired,
 *   or not yet valid);
 * - `"handshake-timeout"`: the handshake did not finish within
 *   `tls.handshakeTimeoutMs`;
 * - `"handshake"`: the handshake broke otherwise (the node does not speak
 *   TLS, no common version or cipher, an alert).
 */
export type TlsFailureReason =
  | "certificate"
  | "hostname"
  | "expired"
  | "handshake-timeout"
  | "handshake";

/**
 * A TLS handshake failed. The connection is closed and nothing falls back
 * to plain TCP or UDP. Only `"handshake-timeout"` is retryable (a busy
 * node may answer the next time); a certificate, hostname or validity
 * failure is never retried, since it cannot fix itself and retrying
 * elsewhere would only repeat it.
 *
 * @example
 * ```ts
 * import { TlsError } from "@nodewire/client";
 * const e = new TlsError("certificate expired", {
 *   reason: "expired",
 *   address: "127.0.0.1:7000",
 *   serverName: "127.0.0.1",
 * });
 * console.log(e.code, e.reason, e.retryable); // "TLS_FAILED" "expired" false
 * ```
 */
export class TlsError extends NodewireError {
  /** Why it failed. */
  readonly reason: TlsFailureReason;
  /** `host:port` of the node. */
  readonly address: string;
  /** The name the certificate was checked against. */
  readonly serverName: string | undefined;
  /** No request was sent: the failure happened while connecting. */
  readonly sent = false;

  /** Creates the error; `reason` says why, and decides retryability. */
  constructor(
    message: string,
    options: {
      reason: TlsFailureReason;
      address: string;
      serverName?: string;
      cause?: unknown;
    },
  ) {
    super("TLS_FAILED", message, {
      cause: options.cause,
      retryable: options.reason === "handshake-timeout",
    });
    this.reason = options.reason;
    this.address = options.address;
    this.serverName = options.serverName;
  }
}
