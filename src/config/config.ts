/**
 * Configuration: the shapes a user writes, their defaults, and validation
 * that names the field and the bad value. Validation runs once, in
 * {@linkcode resolveConfig}; everything downstream reads the resolved form.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { ConfigError } from "../errors.ts";
import {
  DEFAULT_MAX_DATAGRAM_SIZE,
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
} from "../protocol/datagram.ts";
import {
  isProtocolType,
  PROTOCOL_PRIORITY,
  type ProtocolType,
  type TlsPolicy,
} from "../protocol/negotiation.ts";
import type { RuntimeAdapter, RuntimeName } from "../runtime/types.ts";
import { Secret } from "../secret.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  MAX_FRAME_SIZE_LIMIT,
} from "../protocol/frame.ts";
import {
  type ResolvedTlsConfig,
  resolveTlsConfig,
  type TlsConfig,
} from "./tls.ts";

/** The port a host without one is assumed to listen on. */
export const DEFAULT_PORT = 7000;

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
 * One log record from the client. Records never contain credentials.
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
  /** The event that caused it, such as `nodeHealthChanged` or `retry`. */
  event?: string;
  /** The node concerned, `host:port`. */
  address?: string;
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

/** How a request picks among healthy nodes. */
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
  /** Receives log records (health changes, retries). Default: none. */
  logger?: Logger;
}

/** A parsed host entry. */
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
 * import { resolveConfig } from "@nodewire/client";
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

/**
 * The specification's pool defaults.
 *
 * @example
 * ```ts
 * import { DEFAULT_POOL_CONFIG } from "@nodewire/client";
 * console.log(DEFAULT_POOL_CONFIG.maxConnections); // 20
 * ```
 */
export const DEFAULT_POOL_CONFIG: Readonly<PoolConfig> = Object.freeze({
  minConnections: 5,
  maxConnections: 20,
  connectionTimeoutMs: 5000,
  idleTimeoutMs: 60_000,
  maxLifetimeMs: 1_800_000,
  maxConnecting: 2,
  // Well under the idle timeouts of common NATs and load balancers, and
  // one small ping per idle connection every 30 s costs next to nothing.
  heartbeatIntervalMs: 30_000,
  // High enough that a busy node's requests batch into few writes, low
  // enough that a burst still spreads over several sockets.
  multiplexThreshold: 128,
});

/**
 * The specification's retry defaults.
 *
 * @example
 * ```ts
 * import { DEFAULT_RETRY_CONFIG } from "@nodewire/client";
 * console.log(DEFAULT_RETRY_CONFIG.initialBackoffMs); // 100
 * ```
 */
export const DEFAULT_RETRY_CONFIG: Readonly<RetryConfig> = Object.freeze({
  maxRetries: 3,
  initialBackoffMs: 100,
  maxBackoffMs: 5000,
  backoffMultiplier: 2,
  jitter: false,
});

/**
 * Health check defaults: a ping every 5 s with a 2 s limit; three misses in
 * a row (about 15 s of silence) take a node out, two answers bring it back.
 *
 * @example
 * ```ts
 * import { DEFAULT_HEALTH_CONFIG } from "@nodewire/client";
 * console.log(DEFAULT_HEALTH_CONFIG.unhealthyThreshold); // 3
 * ```
 */
export const DEFAULT_HEALTH_CONFIG: Readonly<HealthConfig> = Object.freeze({
  intervalMs: 5000,
  timeoutMs: 2000,
  unhealthyThreshold: 3,
  healthyThreshold: 2,
  maxConcurrentChecks: 16,
});

/** Default connect and request timeout, in ms. */
export const DEFAULT_TIMEOUT_MS = 5000;

const CONFIG_KEYS = new Set<string>([
  "hosts",
  "username",
  "password",
  "enableTls",
  "tlsPolicy",
  "protocols",
  "tls",
  "timeoutMs",
  "requestTimeoutMs",
  "maxFrameSize",
  "maxDatagramSize",
  "poolConfig",
  "retryConfig",
  "healthConfig",
  "loadBalancing",
  "whenNoHealthyNodes",
  "runtime",
  "clock",
  "clientName",
  "logger",
]);

/**
 * Validates a user configuration and fills in defaults.
 *
 * @throws {ConfigError} naming the first field that is wrong and its value.
 * @example
 * ```ts
 * import { ConfigError, resolveConfig } from "@nodewire/client";
 * try {
 *   resolveConfig({ hosts: ["127.0.0.1:99999"] });
 * } catch (error) {
 *   console.log(error instanceof ConfigError, (error as ConfigError).field); // true "hosts[0]"
 * }
 * ```
 */
export function resolveConfig(config: ConnectionConfig): ResolvedConfig {
  if (typeof config !== "object" || config === null) {
    throw new ConfigError("config", config, "expected an object");
  }
  rejectUnknownKeys("config", config, CONFIG_KEYS);
  const hosts = parseHosts(config.hosts);
  const username = optionalString("username", config.username);
  const password = resolvePassword(config.password);
  if (password !== undefined && username === undefined) {
    throw new ConfigError(
      "username",
      undefined,
      "a username is required when a password is given",
    );
  }
  const timeoutMs = positiveTime(
    "timeoutMs",
    config.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  );
  const maxFrameSize = integerIn(
    "maxFrameSize",
    config.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    1024,
    MAX_FRAME_SIZE_LIMIT,
  );
  const enableTls = optionalBoolean("enableTls", config.enableTls) ?? false;
  const { tlsPolicy, protocols } = resolveProtocols(
    enableTls,
    config.tlsPolicy,
    config.protocols,
  );
  return {
    hosts,
    username,
    password,
    enableTls,
    tlsPolicy,
    protocols,
    tls: resolveTlsConfig(config.tls, tlsPolicy),
    timeoutMs,
    requestTimeoutMs: positiveTime(
      "requestTimeoutMs",
      config.requestTimeoutMs ?? timeoutMs,
    ),
    maxFrameSize,
    maxDatagramSize: integerIn(
      "maxDatagramSize",
      config.maxDatagramSize ?? DEFAULT_MAX_DATAGRAM_SIZE,
      MIN_DATAGRAM_SIZE,
      MAX_DATAGRAM_SIZE,
    ),
    poolConfig: resolvePoolConfig(config.poolConfig),
    retryConfig: resolveRetryConfig(config.retryConfig),
    healthConfig: resolveHealthConfig(config.healthConfig),
    loadBalancing: oneOf(
      "loadBalancing",
      config.loadBalancing ?? "round-robin",
      ["round-robin", "least-in-flight"] as const,
    ),
    whenNoHealthyNodes: oneOf(
      "whenNoHealthyNodes",
      config.whenNoHealthyNodes ?? "fail",
      ["fail", "tryAll"] as const,
    ),
    runtime: resolveRuntime(config.runtime),
    clock: resolveClock(config.clock),
    clientName: optionalString("clientName", config.clientName) ?? "nodewire",
    logger: resolveLogger(config.logger),
  };
}

/**
 * Validates pool settings and fills in defaults.
 *
 * @example
 * ```ts
 * import { resolvePoolConfig } from "@nodewire/client";
 * resolvePoolConfig({ maxConnections: 4, minConnections: 1 }).idleTimeoutMs; // 60000
 * ```
 */
export function resolvePoolConfig(
  pool: Partial<PoolConfig> | undefined = {},
): PoolConfig {
  const p = section("poolConfig", pool, DEFAULT_POOL_CONFIG);
  const resolved: PoolConfig = {
    minConnections: integerIn(
      "poolConfig.minConnections",
      p.minConnections,
      0,
      10_000,
    ),
    maxConnections: integerIn(
      "poolConfig.maxConnections",
      p.maxConnections,
      1,
      10_000,
    ),
    connectionTimeoutMs: positiveTime(
      "poolConfig.connectionTimeoutMs",
      p.connectionTimeoutMs,
    ),
    idleTimeoutMs: nonNegativeTime("poolConfig.idleTimeoutMs", p.idleTimeoutMs),
    maxLifetimeMs: nonNegativeTime("poolConfig.maxLifetimeMs", p.maxLifetimeMs),
    maxConnecting: integerIn(
      "poolConfig.maxConnecting",
      p.maxConnecting,
      1,
      1000,
    ),
    heartbeatIntervalMs: nonNegativeTime(
      "poolConfig.heartbeatIntervalMs",
      p.heartbeatIntervalMs,
    ),
    multiplexThreshold: integerIn(
      "poolConfig.multiplexThreshold",
      p.multiplexThreshold,
      1,
      1_000_000,
    ),
  };
  if (resolved.minConnections > resolved.maxConnections) {
    throw new ConfigError(
      "poolConfig.minConnections",
      resolved.minConnections,
      `must not exceed poolConfig.maxConnections (${resolved.maxConnections})`,
    );
  }
  return resolved;
}

/**
 * Validates retry settings and fills in defaults.
 *
 * @example
 * ```ts
 * import { resolveRetryConfig } from "@nodewire/client";
 * resolveRetryConfig({ maxRetries: 0 }).backoffMultiplier; // 2
 * ```
 */
export function resolveRetryConfig(
  retry: Partial<RetryConfig> | undefined = {},
): RetryConfig {
  const r = section("retryConfig", retry, DEFAULT_RETRY_CONFIG);
  const resolved: RetryConfig = {
    maxRetries: integerIn("retryConfig.maxRetries", r.maxRetries, 0, 1000),
    initialBackoffMs: nonNegativeTime(
      "retryConfig.initialBackoffMs",
      r.initialBackoffMs,
    ),
    maxBackoffMs: nonNegativeTime("retryConfig.maxBackoffMs", r.maxBackoffMs),
    backoffMultiplier: finiteAtLeast(
      "retryConfig.backoffMultiplier",
      r.backoffMultiplier,
      1,
    ),
    jitter: optionalBoolean("retryConfig.jitter", r.jitter) ?? false,
  };
  if (resolved.maxBackoffMs < resolved.initialBackoffMs) {
    throw new ConfigError(
      "retryConfig.maxBackoffMs",
      resolved.maxBackoffMs,
      `must be at least retryConfig.initialBackoffMs (${resolved.initialBackoffMs})`,
    );
  }
  return resolved;
}

/**
 * Validates health settings and fills in defaults.
 *
 * @example
 * ```ts
 * import { resolveHealthConfig } from "@nodewire/client";
 * resolveHealthConfig({ intervalMs: 0 }).timeoutMs; // 2000
 * ```
 */
export function resolveHealthConfig(
  health: Partial<HealthConfig> | undefined = {},
): HealthConfig {
  const h = section("healthConfig", health, DEFAULT_HEALTH_CONFIG);
  return {
    intervalMs: nonNegativeTime("healthConfig.intervalMs", h.intervalMs),
    timeoutMs: positiveTime("healthConfig.timeoutMs", h.timeoutMs),
    unhealthyThreshold: integerIn(
      "healthConfig.unhealthyThreshold",
      h.unhealthyThreshold,
      1,
      1000,
    ),
    healthyThreshold: integerIn(
      "healthConfig.healthyThreshold",
      h.healthyThreshold,
      1,
      1000,
    ),
    maxConcurrentChecks: integerIn(
      "healthConfig.maxConcurrentChecks",
      h.maxConcurrentChecks,
      1,
      10_000,
    ),
  };
}

const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

/**
 * Parses one host entry: `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a
 * bare IPv6 literal. `field` names the entry in errors.
 *
 * @throws {ConfigError} for a malformed host or a port outside 1–65535.
 * @example
 * ```ts
 * import { parseHost } from "@nodewire/client";
 * parseHost("[::1]:7001"); // { hostname: "::1", port: 7001, address: "[::1]:7001" }
 * ```
 */
export function parseHost(entry: string, field = "host"): HostAddress {
  if (typeof entry !== "string") {
    throw new ConfigError(field, entry, "expected a string host");
  }
  const text = entry.trim();
  let hostname: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) {
      throw new ConfigError(field, entry, "an IPv6 address needs a closing ]");
    }
    hostname = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        throw new ConfigError(field, entry, "expected :port after ]");
      }
      portText = rest.slice(1);
    }
    if (!IPV6.test(hostname) || !hostname.includes(":")) {
      throw new ConfigError(field, entry, "not a valid IPv6 address");
    }
  } else if ((text.match(/:/g) ?? []).length > 1) {
    // More than one colon and no brackets: a bare IPv6 literal, no port.
    hostname = text;
    if (!IPV6.test(hostname)) {
      throw new ConfigError(field, entry, "not a valid IPv6 address");
    }
  } else {
    const colon = text.indexOf(":");
    hostname = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (!HOSTNAME.test(hostname) || hostname.includes("..")) {
      throw new ConfigError(
        field,
        entry,
        "expected host, host:port or [ipv6]:port",
      );
    }
  }
  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) {
      throw new ConfigError(field, entry, "the port must be a number");
    }
    port = Number(portText);
    if (port < 1 || port > 65535) {
      throw new ConfigError(field, entry, "the port must be within 1–65535");
    }
  }
  const address = hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
  return { hostname, port, address };
}

function parseHosts(hosts: unknown): HostAddress[] {
  if (!Array.isArray(hosts)) {
    throw new ConfigError("hosts", hosts, "expected an array of host strings");
  }
  if (hosts.length === 0) {
    throw new ConfigError("hosts", hosts, "at least one host is required");
  }
  const seen = new Set<string>();
  return hosts.map((entry, i) => {
    const parsed = parseHost(entry, `hosts[${i}]`);
    if (seen.has(parsed.address)) {
      throw new ConfigError(`hosts[${i}]`, entry, "duplicate host");
    }
    seen.add(parsed.address);
    return parsed;
  });
}

function resolveProtocols(
  enableTls: boolean,
  policyValue: unknown,
  protocolsValue: unknown,
): { tlsPolicy: TlsPolicy; protocols: ProtocolType[] } {
  const tlsPolicy = oneOf(
    "tlsPolicy",
    policyValue ?? (enableTls ? "require" : "disable"),
    ["require", "prefer", "disable"] as const,
  );
  if (enableTls && tlsPolicy === "disable") {
    throw new ConfigError(
      "tlsPolicy",
      tlsPolicy,
      'cannot be "disable" when enableTls is true',
    );
  }
  let protocols = [...PROTOCOL_PRIORITY];
  if (protocolsValue !== undefined) {
    if (!Array.isArray(protocolsValue) || protocolsValue.length === 0) {
      throw new ConfigError(
        "protocols",
        protocolsValue,
        'expected a non-empty array of "tls", "tcp", "udp"',
      );
    }
    protocolsValue.forEach((p, i) => {
      if (!isProtocolType(p)) {
        throw new ConfigError(
          `protocols[${i}]`,
          p,
          'expected "tls", "tcp" or "udp"',
        );
      }
      if (protocolsValue.indexOf(p) !== i) {
        throw new ConfigError(`protocols[${i}]`, p, "duplicate protocol");
      }
    });
    // Priority is fixed by the protocol, not by the order given.
    protocols = PROTOCOL_PRIORITY.filter((p) => protocolsValue.includes(p));
  }
  if (tlsPolicy === "require" && !protocols.includes("tls")) {
    throw new ConfigError(
      "protocols",
      protocolsValue,
      'must include "tls" when TLS is required',
    );
  }
  if (tlsPolicy === "disable" && protocols.every((p) => p === "tls")) {
    throw new ConfigError(
      "protocols",
      protocolsValue,
      'must include "tcp" or "udp" when tlsPolicy is "disable"',
    );
  }
  return { tlsPolicy, protocols };
}

function resolvePassword(value: unknown): Secret | undefined {
  if (value === undefined) return undefined;
  if (value instanceof Secret) return value;
  if (typeof value !== "string") {
    // Never render the value: it may be the secret in another shape.
    throw new ConfigError("password", "[redacted]", "expected a string");
  }
  return new Secret(value);
}

function resolveRuntime(
  value: unknown,
): RuntimeName | RuntimeAdapter | undefined {
  if (value === undefined) return undefined;
  if (
    value === "deno" || value === "bun" || value === "node" ||
    value === "memory"
  ) return value;
  if (
    typeof value === "object" && value !== null &&
    typeof (value as RuntimeAdapter).connect === "function" &&
    typeof (value as RuntimeAdapter).listen === "function"
  ) return value as RuntimeAdapter;
  throw new ConfigError(
    "runtime",
    value,
    'expected "deno", "bun", "node", "memory" or a RuntimeAdapter',
  );
}

function resolveLogger(value: unknown): Logger | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "function") return value as Logger;
  throw new ConfigError("logger", value, "expected a function");
}

function resolveClock(value: unknown): Clock {
  if (value === undefined) return systemClock;
  const c = value as Clock;
  if (
    typeof c === "object" && c !== null && typeof c.now === "function" &&
    typeof c.setTimeout === "function" && typeof c.clearTimeout === "function"
  ) return c;
  throw new ConfigError(
    "clock",
    value,
    "expected an object with now, setTimeout and clearTimeout",
  );
}

function section<T extends object>(
  name: string,
  value: Partial<T> | undefined,
  defaults: Readonly<T>,
): T {
  if (value === undefined) return { ...defaults };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(name, value, "expected an object");
  }
  rejectUnknownKeys(name, value, new Set(Object.keys(defaults)));
  const merged = { ...defaults } as Record<string, unknown>;
  for (const [key, v] of Object.entries(value)) {
    if (v !== undefined) merged[key] = v;
  }
  return merged as T;
}

function rejectUnknownKeys(
  name: string,
  value: object,
  known: Set<string>,
): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) {
      throw new ConfigError(
        name === "config" ? key : `${name}.${key}`,
        key,
        `unknown option (known: ${[...known].join(", ")})`,
      );
    }
  }
}

function optionalString(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0) {
    throw new ConfigError(field, value, "expected a non-empty string");
  }
  return value;
}

function optionalBoolean(field: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") {
    throw new ConfigError(field, value, "expected true or false");
  }
  return value;
}

function oneOf<T extends string>(
  field: string,
  value: unknown,
  options: readonly T[],
): T {
  if (!options.includes(value as T)) {
    throw new ConfigError(
      field,
      value,
      `expected one of ${options.map((o) => `"${o}"`).join(", ")}`,
    );
  }
  return value as T;
}

function integerIn(
  field: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw new ConfigError(field, value, `expected an integer in ${min}–${max}`);
  }
  return value;
}

function finiteAtLeast(field: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new ConfigError(field, value, `expected a finite number ≥ ${min}`);
  }
  return value;
}

function nonNegativeTime(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(
      field,
      value,
      "expected a finite number of milliseconds ≥ 0",
    );
  }
  return value;
}

function positiveTime(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(
      field,
      value,
      "expected a finite number of milliseconds > 0",
    );
  }
  return value;
}
