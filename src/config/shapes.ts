/**
 * The shapes of the configuration: what a user writes
 * ({@linkcode ConnectionConfig} and its sections) and what the rest of the
 * client reads once it is validated ({@linkcode ResolvedConfig}). Types
 * only; the defaults are in `defaults.ts`, the validation in `resolve.ts`.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { TlsPolicy } from "../protocol/negotiation.ts";
import type { ProtocolType } from "../protocol_type.ts";
import type { RuntimeAdapter, RuntimeName } from "../runtime/types.ts";
import type { Secret } from "../secret.ts";
import type { ResolvedTlsConfig, TlsConfig } from "./tls.ts";

/**
 * Per-node pool settings. Defaults follow the specification.
 *
 * @example
 * ```ts
 * import type { PoolConfig } from "@nodewire/client";
 * const pool: Partial<PoolConfig> = { minConnections: 1, maxConnections: 8 };
 * ```
 */
export interface PoolConfig {
  /** Connections kept open even when idle. Default 5. */
  minConnections: number;
  /** Upper bound on open connections per node. Default 20. */
  maxConnections: number;
  /** How long `getConnection()` may wait, in ms. Default 5000. */
  connectionTimeoutMs: number;
  /** Idle connections above the minimum close after this, in ms; 0 never. Default 60000. */
  idleTimeoutMs: number;
  /** Connections retire after this age (±2% jitter), in ms; 0 never. Default 1800000. */
  maxLifetimeMs: number;
  /** Connections being opened at once, at most. Default 2. */
  maxConnecting: number;
  /**
   * Idle heartbeat: a connection unused for this long is pinged, and
   * replaced when no answer comes within `healthConfig.timeoutMs`, so a
   * half-open socket is found before a request lands on it; in ms, 0 off.
   * Default 30000.
   */
  heartbeatIntervalMs: number;
  /**
   * Requests in flight on one connection before shared requests spill onto
   * the next connection (and the pool grows). Filling one connection first
   * lets a tick's requests leave in one write. Default 128.
   */
  multiplexThreshold: number;
}

/**
 * Retry settings: `delay(n) = min(initialBackoffMs * backoffMultiplier^n, maxBackoffMs)`.
 *
 * @example
 * ```ts
 * import type { RetryConfig } from "@nodewire/client";
 * const retry: Partial<RetryConfig> = { maxRetries: 5, jitter: true };
 * ```
 */
export interface RetryConfig {
  /** Retries after the first attempt. Default 3. */
  maxRetries: number;
  /** Delay before the first retry, in ms. Default 100. */
  initialBackoffMs: number;
  /** Upper bound of any delay, in ms. Default 5000. */
  maxBackoffMs: number;
  /** Growth factor between delays, at least 1. Default 2. */
  backoffMultiplier: number;
  /** Randomise each delay within [delay/2, delay]. Default false. */
  jitter: boolean;
}

/**
 * Node health checking.
 *
 * @example
 * ```ts
 * import type { HealthConfig } from "@nodewire/client";
 * const health: Partial<HealthConfig> = { intervalMs: 1000, unhealthyThreshold: 2 };
 * ```
 */
export interface HealthConfig {
  /** Time between background pings of every node, in ms; 0 disables the loop. Default 5000. */
  intervalMs: number;
  /** A ping slower than this counts as a failure, in ms. Default 2000. */
  timeoutMs: number;
  /** Consecutive failures that mark a node unhealthy. Default 3. */
  unhealthyThreshold: number;
  /** Consecutive successes that mark an unhealthy node healthy again. Default 2. */
  healthyThreshold: number;
  /** Most nodes pinged at once during a sweep. Default 16. */
  maxConcurrentChecks: number;
}

/**
 * One log record from the client (docs/OBSERVABILITY.md lists them).
 * Records never contain credentials, in their text, errors or JSON.
 *
 * @example
 * ```ts
 * import type { LogEntry } from "@nodewire/client";
 * const entry: LogEntry = { level: "warn", message: "node 127.0.0.1:7000 is unhealthy" };
 * ```
 */
export interface LogEntry {
  /** Severity. */
  level: "debug" | "info" | "warn" | "error";
  /** Human-readable text. */
  message: string;
  /** What happened, such as `nodeHealthChanged`, `retry` or `tlsFailed`. */
  event?: string;
  /** The node concerned, `host:port`. */
  address?: string;
  /** The connection concerned. */
  connectionId?: number;
  /** The error behind the record, when there is one: its class, code and cause. */
  error?: Error;
}

/**
 * Receives the client's log records.
 *
 * @example
 * ```ts
 * import type { Logger } from "@nodewire/client";
 * const logger: Logger = (e) => console.log(`[${e.level}] ${e.message}`);
 * ```
 */
export type Logger = (entry: LogEntry) => void;

/**
 * How a request picks among healthy nodes: in turn, or the one with the
 * fewest requests in flight.
 *
 * @example
 * ```ts
 * import type { LoadBalancing } from "@nodewire/client";
 * const balancing: LoadBalancing = "least-in-flight";
 * ```
 */
export type LoadBalancing = "round-robin" | "least-in-flight";

/**
 * What the user passes to `Client.connect`. Only `hosts` is required.
 *
 * @example
 * ```ts
 * import type { ConnectionConfig } from "@nodewire/client";
 * const config: ConnectionConfig = {
 *   hosts: ["127.0.0.1:7000", "[::1]:7001", "db.example"],
 *   timeoutMs: 2000,
 *   poolConfig: { maxConnections: 10 },
 * };
 * ```
 */
export interface ConnectionConfig {
  /** Nodes as `host`, `host:port` or `[ipv6]:port`; port 7000 when omitted. */
  hosts: string[];
  /** User name for authentication. */
  username?: string;
  /** Password for authentication; never rendered in errors, logs or JSON. */
  password?: string | Secret;
  /** Require TLS. Default false. */
  enableTls?: boolean;
  /**
   * TLS policy: `"require"` offers only TLS, `"prefer"` offers it first,
   * `"disable"` never offers it. Default `"require"` when `enableTls`,
   * else `"disable"`. A TLS failure never falls back to TCP or UDP.
   */
  tlsPolicy?: TlsPolicy;
  /**
   * Transport protocols the client may use; among those both sides have,
   * negotiation picks by priority TLS > TCP > UDP. Default all three.
   */
  protocols?: ProtocolType[];
  /**
   * How nodes' certificates are checked: `ca`, `serverName`,
   * `handshakeTimeoutMs`, `direct` and the unsafe `dangerouslySkipVerify`
   * (see {@linkcode TlsConfig}). Only with TLS on.
   */
  tls?: TlsConfig;
  /** Connect and request timeout, in ms. Default 5000. */
  timeoutMs?: number;
  /** Per-request timeout, in ms. Default `timeoutMs`. */
  requestTimeoutMs?: number;
  /** Largest frame payload accepted or sent, in bytes. Default 16 MiB. */
  maxFrameSize?: number;
  /**
   * Largest UDP datagram sent when negotiation chose UDP, in bytes, the
   * 32 bytes of session token and frame header included. Default 1200
   * (no IP fragmentation on any path); 64 to 65507. A request that does
   * not fit fails with `DatagramTooLargeError` before it is sent.
   */
  maxDatagramSize?: number;
  /** Pool settings per node. */
  poolConfig?: Partial<PoolConfig>;
  /** Retry settings. */
  retryConfig?: Partial<RetryConfig>;
  /** Health check settings. */
  healthConfig?: Partial<HealthConfig>;
  /** Node choice among healthy nodes. Default `"round-robin"`. */
  loadBalancing?: LoadBalancing;
  /** With no healthy node: fail fast (default) or try every node anyway. */
  whenNoHealthyNodes?: "fail" | "tryAll";
  /** Runtime adapter to use instead of the detected one. */
  runtime?: RuntimeName | RuntimeAdapter;
  /** Clock to use instead of the system clock (tests use a virtual one). */
  clock?: Clock;
  /** A name sent to nodes in the hello message. Default `"nodewire"`. */
  clientName?: string;
  /**
   * Receives log records: connects and their failures, TLS, negotiation
   * and authentication outcomes, lost connections, pool clears, health
   * changes and retries (see {@linkcode LogEntry}). Default: none.
   */
  logger?: Logger;
}

/**
 * A parsed host entry.
 *
 * @example
 * ```ts
 * import { type HostAddress, parseHost } from "@nodewire/client/core";
 * const node: HostAddress = parseHost("[::1]:7001");
 * console.log(node.address); // "[::1]:7001"
 * ```
 */
export interface HostAddress {
  /** Host name or IP literal, IPv6 without brackets. */
  hostname: string;
  /** Port. */
  port: number;
  /** Canonical `host:port` (`[v6]:port`) form, used as the node's key. */
  address: string;
}

/**
 * A validated configuration with every default filled in.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@nodewire/client/core";
 * const resolved = resolveConfig({ hosts: ["127.0.0.1"] });
 * console.log(resolved.hosts[0].address); // "127.0.0.1:7000"
 * ```
 */
export interface ResolvedConfig {
  /** Parsed hosts. */
  hosts: HostAddress[];
  /** User name, if any. */
  username: string | undefined;
  /** Password, wrapped so that it never prints. */
  password: Secret | undefined;
  /** Whether TLS is required. */
  enableTls: boolean;
  /** TLS policy in force. */
  tlsPolicy: TlsPolicy;
  /** Protocols the client may use, best first. */
  protocols: ProtocolType[];
  /** Certificate checks and TLS timing. */
  tls: ResolvedTlsConfig;
  /** Connect timeout, in ms. */
  timeoutMs: number;
  /** Request timeout, in ms. */
  requestTimeoutMs: number;
  /** Largest frame payload, in bytes. */
  maxFrameSize: number;
  /** Largest UDP datagram sent, in bytes. */
  maxDatagramSize: number;
  /** Pool settings. */
  poolConfig: PoolConfig;
  /** Retry settings. */
  retryConfig: RetryConfig;
  /** Health settings. */
  healthConfig: HealthConfig;
  /** Node choice. */
  loadBalancing: LoadBalancing;
  /** Behaviour with no healthy node. */
  whenNoHealthyNodes: "fail" | "tryAll";
  /** Adapter override, if any. */
  runtime: RuntimeName | RuntimeAdapter | undefined;
  /** Clock. */
  clock: Clock;
  /** Client name for hello. */
  clientName: string;
  /** Log hook, if any. */
  logger: Logger | undefined;
}
