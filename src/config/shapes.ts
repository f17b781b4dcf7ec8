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
 * The retry budget: retries (and hedges) may add at most `ratio` of the
 * requests sent over the last `windowMs` (or `minPerSecond` when that is
 * more: a quiet client can still retry), so that a
 * failing cluster is not sent `(1 + maxRetries)` times its load. When the
 * budget is spent, a request fails with its own error instead of being
 * retried, and the client dispatches `retryBudgetExhausted`.
 *
 * @example
 * ```ts
 * import type { RetryBudgetConfig } from "@nodewire/client/core";
 * const budget: Partial<RetryBudgetConfig> = { ratio: 0.1 };
 * ```
 */
export interface RetryBudgetConfig {
  /** Retries allowed per request sent in the window. Default 0.2. */
  ratio: number;
  /** Retries allowed per second whatever the traffic. Default 10. */
  minPerSecond: number;
  /** How far back requests and retries are counted, in ms. Default 10000. */
  windowMs: number;
}

/**
 * Hedged requests: an idempotent request without a reply after the hedge
 * delay is sent again to another node, and the first reply wins. Cuts the
 * tail latency a slow node (a GC pause, a busy disk) adds, for a few
 * percent more requests; hedges draw on the retry budget.
 *
 * @example
 * ```ts
 * import type { HedgingConfig } from "@nodewire/client/core";
 * const hedging: Partial<HedgingConfig> = { percentile: 99, maxHedges: 1 };
 * ```
 */
export interface HedgingConfig {
  /**
   * A fixed delay before each hedge, in ms. When unset, the delay is the
   * `percentile` of the node's recent reply times (and no hedge is sent
   * before 16 of them are known).
   */
  delayMs: number | undefined;
  /** Which percentile of a node's reply times to wait for, 50–99.9. Default 95. */
  percentile: number;
  /** Most hedged attempts per request, 1–4. Default 1. */
  maxHedges: number;
}

/**
 * Outlier ejection, after Envoy's outlier detection: a node whose requests
 * fail `consecutiveFailures` times in a row, or whose success rate over an
 * `intervalMs` falls well below its peers', is taken out of rotation (marked
 * unhealthy, with a reason that starts with "ejected") for
 * `baseEjectionTimeMs` × its ejection count, at most `maxEjectionTimeMs`,
 * less up to 10% jitter. Only failures that are the node's doing count (see
 * `isNodeFailure`); answers such as NotFound count as successes. At most
 * `maxEjectedShare` of the nodes are ejected at once (always at least one),
 * and never the last healthy node.
 *
 * @example
 * ```ts
 * import type { OutlierEjectionConfig } from "@nodewire/client/core";
 * const ejection: Partial<OutlierEjectionConfig> = { consecutiveFailures: 3 };
 * ```
 */
export interface OutlierEjectionConfig {
  /** Node failures in a row, from requests, that eject a node; 0 off. Default 5. */
  consecutiveFailures: number;
  /**
   * The window over which success rates are compared, in ms; also how
   * long a node must stay in rotation for its ejection count to drop by
   * one. Default 10000.
   */
  intervalMs: number;
  /** A first ejection's length, in ms; the n-th lasts n times this. Default 30000. */
  baseEjectionTimeMs: number;
  /** Longest ejection, in ms; at least `baseEjectionTimeMs`. Default 300000. */
  maxEjectionTimeMs: number;
  /** Largest share of the nodes ejected at once, 0–1 (one node always may be). Default 0.5. */
  maxEjectedShare: number;
  /**
   * Nodes with `successRateMinRequests` requests in the window needed to
   * compare success rates; 0 turns the comparison off, else at least 2.
   * Default 3.
   */
  successRateMinNodes: number;
  /** Requests a node needs in the window for its success rate to count. Default 100. */
  successRateMinRequests: number;
  /**
   * How many of its peers' standard deviations a node's success rate must
   * fall below their mean for it to be an outlier (Envoy's factor). Its
   * peers are the other nodes compared, so that one bad node among a few
   * stands out. Default 1.9.
   */
  successRateStdevFactor: number;
  /**
   * How far below its peers' mean success rate a node must fall at the
   * least, 0–1: peers that all succeed have no spread, and a node with one
   * failure more than them must not be ejected. Default 0.1 (10 points).
   */
  successRateMinGap: number;
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
 * Receives the client's log records. It may be async; nothing waits for
 * it, and one that throws or rejects loses that entry, nothing else.
 *
 * @example
 * ```ts
 * import type { Logger } from "@nodewire/client";
 * const logger: Logger = (e) => console.log(`[${e.level}] ${e.message}`);
 * ```
 */
export type Logger = (entry: LogEntry) => void;

/**
 * How a request picks among healthy nodes.
 *
 * - `"least-in-flight"` (the default): of two nodes (the next in turn and
 *   one at random), the one with fewer of this client's requests in
 *   flight. A node that answers slowly holds its requests longer and so
 *   gets fewer new ones; equal nodes get equal shares, in turn.
 * - `"round-robin"`: strictly in turn, whatever each node's load. Unsafe
 *   when nodes are uneven: one slow node (a GC pause, a busy disk) holds
 *   every caller that lands on it, so all callers soon wait on it and the
 *   whole client runs at that node's pace.
 * - `"peak-ewma"`: of the same two nodes, the one with the lower
 *   `latency × (in flight + 1)`, where latency is a peak-EWMA of the
 *   node's reply times (it rises at once on a slow reply and decays over
 *   a 10 s time constant). A node 40× slower than its peers then holds
 *   about a fortieth of their requests, not as many. Costs a clock read
 *   at each pick, dispatch and reply.
 *
 * @example
 * ```ts
 * import type { LoadBalancing } from "@nodewire/client";
 * const balancing: LoadBalancing = "least-in-flight";
 * ```
 */
export type LoadBalancing = "round-robin" | "least-in-flight" | "peak-ewma";

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
  /**
   * Turn TLS on: `tlsPolicy` then defaults to `"require"` (an explicit
   * `"prefer"` is allowed, `"disable"` refused). Default false.
   */
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
  /**
   * Limit on retries relative to recent traffic; `false` turns it off,
   * `true` is the default: 20% of the requests of the last 10 s, or 10
   * per second when that is more.
   */
  retryBudget?: boolean | Partial<RetryBudgetConfig>;
  /**
   * Hedged requests, for idempotent requests only: `true` for the
   * defaults (after the node's p95 reply time, one hedge), or settings.
   * Default off; a request can also ask with `{ hedge: true }`.
   */
  hedging?: boolean | Partial<HedgingConfig>;
  /** Health check settings. */
  healthConfig?: Partial<HealthConfig>;
  /**
   * Outlier ejection from what requests see; `false` turns it off (then
   * only health checks take nodes out). Default on (see
   * {@linkcode OutlierEjectionConfig}).
   */
  outlierEjection?: boolean | Partial<OutlierEjectionConfig>;
  /**
   * When fewer than this share (0–1) of the nodes are healthy, requests
   * spread over every node, healthy or not (Envoy's panic threshold): like
   * `whenNoHealthyNodes: "tryAll"`, but before the last node is gone.
   * Default 0 (off).
   */
  panicThreshold?: number;
  /**
   * Node choice among healthy nodes. Default `"least-in-flight"`, which
   * steers requests away from a slow node; `"round-robin"` keeps sending
   * each node its turn and is unsafe with uneven nodes (one slow node
   * sets the pace of every caller); `"peak-ewma"` weighs each node's
   * recent latency as well. See {@linkcode LoadBalancing}.
   */
  loadBalancing?: LoadBalancing;
  /**
   * With no healthy node: fail fast (the default) or try every node
   * anyway (the default, and the only choice, with a `panicThreshold`).
   */
  whenNoHealthyNodes?: "fail" | "tryAll";
  /** Runtime adapter to use instead of the detected one. */
  runtime?: RuntimeName | RuntimeAdapter;
  /** Clock to use instead of the system clock (tests use a virtual one). */
  clock?: Clock;
  /**
   * A name sent to nodes in the hello message, for their logs: 1 to 255
   * UTF-8 bytes with no control or format character (the node id's rule).
   * Default `"nodewire"`.
   *
   * @example
   * ```ts
   * const config: ConnectionConfig = { hosts: ["db1"], clientName: "billing-api" };
   * ```
   */
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
 * A validated configuration with every default filled in, as
 * `resolveConfig` returns it: frozen, and the only kind
 * `new ConnectionManager()` takes (not a copy, nor one built by hand).
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
  readonly hosts: HostAddress[];
  /** User name, if any. */
  readonly username: string | undefined;
  /** Password, wrapped so that it never prints. */
  readonly password: Secret | undefined;
  /** Whether TLS is on (`tlsPolicy` says how). */
  readonly enableTls: boolean;
  /** TLS policy in force. */
  readonly tlsPolicy: TlsPolicy;
  /** Protocols the client may use, best first. */
  readonly protocols: ProtocolType[];
  /** Certificate checks and TLS timing. */
  readonly tls: ResolvedTlsConfig;
  /** Connect timeout, in ms. */
  readonly timeoutMs: number;
  /** Request timeout, in ms. */
  readonly requestTimeoutMs: number;
  /** Largest frame payload, in bytes. */
  readonly maxFrameSize: number;
  /** Largest UDP datagram sent, in bytes. */
  readonly maxDatagramSize: number;
  /** Pool settings. */
  readonly poolConfig: PoolConfig;
  /** Retry settings. */
  readonly retryConfig: RetryConfig;
  /** The retry budget, or undefined when turned off. */
  readonly retryBudget: RetryBudgetConfig | undefined;
  /** The hedging policy, or undefined when off. */
  readonly hedging: HedgingConfig | undefined;
  /** Health settings. */
  readonly healthConfig: HealthConfig;
  /** Outlier ejection, or undefined when turned off. */
  readonly outlierEjection: OutlierEjectionConfig | undefined;
  /** Healthy share below which requests go to every node; 0 off. */
  readonly panicThreshold: number;
  /** Node choice. */
  readonly loadBalancing: LoadBalancing;
  /** Behaviour with no healthy node. */
  readonly whenNoHealthyNodes: "fail" | "tryAll";
  /** Adapter override, if any. */
  readonly runtime: RuntimeName | RuntimeAdapter | undefined;
  /** Clock. */
  readonly clock: Clock;
  /** Client name for hello. */
  readonly clientName: string;
  /** Log hook, if any. */
  readonly logger: Logger | undefined;
}
