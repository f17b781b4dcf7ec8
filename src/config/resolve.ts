/**
 * Resolution: a user's {@linkcode ConnectionConfig} checked field by field
 * and completed with the defaults. Validation runs once, here; everything
 * downstream reads the {@linkcode ResolvedConfig}.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { ConfigError, messageOf, NodewireError } from "../errors.ts";
import {
  DEFAULT_MAX_DATAGRAM_SIZE,
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
} from "../protocol/datagram.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  MAX_FRAME_SIZE_LIMIT,
} from "../protocol/frame.ts";
import type { TlsPolicy } from "../protocol/negotiation.ts";
import {
  isProtocolType,
  PROTOCOL_PRIORITY,
  type ProtocolType,
} from "../protocol_type.ts";
import type { RuntimeAdapter, RuntimeName } from "../runtime/types.ts";
import { Secret } from "../secret.ts";
import {
  DEFAULT_HEALTH_CONFIG,
  DEFAULT_HEDGING,
  DEFAULT_POOL_CONFIG,
  DEFAULT_RETRY_BUDGET,
  DEFAULT_RETRY_CONFIG,
  DEFAULT_TIMEOUT_MS,
} from "./defaults.ts";
import { parseHosts, readHostList } from "./hosts.ts";
import {
  resolveOutlierEjection,
  resolvePanicThreshold,
} from "./outlier_ejection.ts";
import type {
  ConnectionConfig,
  HealthConfig,
  HedgingConfig,
  Logger,
  PoolConfig,
  ResolvedConfig,
  RetryBudgetConfig,
  RetryConfig,
} from "./shapes.ts";
import { resolveTlsConfig } from "./tls.ts";
import { rejectUrlsInHosts } from "./url.ts";
import {
  duration,
  finiteIn,
  integerIn,
  oneOf,
  optionalBoolean,
  optionalString,
  orDefault,
  rejectUnknownKeys,
  section,
} from "./validate.ts";

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
  "retryBudget",
  "hedging",
  "healthConfig",
  "outlierEjection",
  "panicThreshold",
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
 * import { ConfigError } from "@nodewire/client";
 * import { resolveConfig } from "@nodewire/client/core";
 * try {
 *   resolveConfig({ hosts: ["127.0.0.1:99999"] });
 * } catch (error) {
 *   if (error instanceof ConfigError) console.log(error.field); // "hosts[0]"
 *   else throw error;
 * }
 * ```
 */
export function resolveConfig(config: ConnectionConfig): ResolvedConfig {
  try {
    return resolve(config);
  } catch (error) {
    if (error instanceof NodewireError) throw error;
    // A getter that throws, a revoked proxy: what cannot be read is not a
    // configuration, and the caller gets the typed error the contract
    // promises, with what was thrown as its cause.
    throw new ConfigError(
      "config",
      config,
      `could not be read (${messageOf(error)})`,
      { cause: error },
    );
  }
}

function resolve(config: ConnectionConfig): ResolvedConfig {
  if (typeof config !== "object" || config === null) {
    throw new ConfigError("config", config, "expected an object");
  }
  rejectUnknownKeys("config", config, CONFIG_KEYS);
  // Read once: a getter or proxy may answer differently each time.
  const hostList = readHostList(config.hosts);
  rejectUrlsInHosts(hostList);
  const hosts = parseHosts(hostList);
  const username = optionalString("username", config.username);
  const password = resolvePassword(config.password);
  // Credentials come in pairs: half of them would connect without
  // authentication (or fail late, at a node that requires it) without a
  // word about the half that is missing.
  if (password !== undefined && username === undefined) {
    throw new ConfigError(
      "username",
      undefined,
      "a username is required when a password is given",
    );
  }
  if (username !== undefined && password === undefined) {
    throw new ConfigError(
      "password",
      undefined,
      "a password is required when a username is given",
    );
  }
  const timeoutMs = duration(
    "timeoutMs",
    orDefault(config.timeoutMs, DEFAULT_TIMEOUT_MS),
  );
  const maxFrameSize = integerIn(
    "maxFrameSize",
    orDefault(config.maxFrameSize, DEFAULT_MAX_FRAME_SIZE),
    1024,
    MAX_FRAME_SIZE_LIMIT,
  );
  const enableTls = optionalBoolean("enableTls", config.enableTls) ?? false;
  const { tlsPolicy, protocols } = resolveProtocols(
    config.enableTls === false ? false : enableTls || undefined,
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
    requestTimeoutMs: duration(
      "requestTimeoutMs",
      orDefault(config.requestTimeoutMs, timeoutMs),
    ),
    maxFrameSize,
    maxDatagramSize: integerIn(
      "maxDatagramSize",
      orDefault(config.maxDatagramSize, DEFAULT_MAX_DATAGRAM_SIZE),
      MIN_DATAGRAM_SIZE,
      MAX_DATAGRAM_SIZE,
    ),
    poolConfig: resolvePoolConfig(config.poolConfig),
    retryConfig: resolveRetryConfig(config.retryConfig),
    retryBudget: resolveRetryBudget(config.retryBudget),
    hedging: resolveHedging(config.hedging),
    healthConfig: resolveHealthConfig(config.healthConfig),
    outlierEjection: resolveOutlierEjection(config.outlierEjection),
    panicThreshold: resolvePanicThreshold(
      config.panicThreshold,
      config.whenNoHealthyNodes,
    ),
    loadBalancing: oneOf(
      "loadBalancing",
      orDefault(config.loadBalancing, "least-in-flight"),
      ["round-robin", "least-in-flight", "peak-ewma"] as const,
    ),
    whenNoHealthyNodes: oneOf(
      "whenNoHealthyNodes",
      orDefault(config.whenNoHealthyNodes, "fail"),
      ["fail", "tryAll"] as const,
    ),
    runtime: resolveRuntime(config.runtime),
    clock: resolveClock(config.clock),
    clientName: optionalString("clientName", config.clientName) ?? "nodewire",
    logger: resolveLogger(config.logger),
  };
}

/** Validates pool settings and fills in defaults. */
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
    connectionTimeoutMs: duration(
      "poolConfig.connectionTimeoutMs",
      p.connectionTimeoutMs,
    ),
    idleTimeoutMs: duration("poolConfig.idleTimeoutMs", p.idleTimeoutMs, {
      allowZero: true,
    }),
    maxLifetimeMs: duration("poolConfig.maxLifetimeMs", p.maxLifetimeMs, {
      allowZero: true,
    }),
    maxConnecting: integerIn(
      "poolConfig.maxConnecting",
      p.maxConnecting,
      1,
      1000,
    ),
    heartbeatIntervalMs: duration(
      "poolConfig.heartbeatIntervalMs",
      p.heartbeatIntervalMs,
      { allowZero: true },
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

/** Validates retry settings and fills in defaults. */
export function resolveRetryConfig(
  retry: Partial<RetryConfig> | undefined = {},
): RetryConfig {
  const r = section("retryConfig", retry, DEFAULT_RETRY_CONFIG);
  const resolved: RetryConfig = {
    maxRetries: integerIn("retryConfig.maxRetries", r.maxRetries, 0, 1000),
    initialBackoffMs: duration(
      "retryConfig.initialBackoffMs",
      r.initialBackoffMs,
      { allowZero: true },
    ),
    maxBackoffMs: duration("retryConfig.maxBackoffMs", r.maxBackoffMs, {
      allowZero: true,
    }),
    backoffMultiplier: finiteIn(
      "retryConfig.backoffMultiplier",
      r.backoffMultiplier,
      { atLeast: 1 },
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

/** Validates the retry budget and fills in defaults; `false` turns it off. */
function resolveRetryBudget(
  budget: Partial<RetryBudgetConfig> | false | undefined,
): RetryBudgetConfig | undefined {
  if (budget === false) return undefined;
  const b = section("retryBudget", budget, DEFAULT_RETRY_BUDGET);
  return {
    ratio: finiteIn("retryBudget.ratio", b.ratio, { atLeast: 0, atMost: 100 }),
    minPerSecond: finiteIn("retryBudget.minPerSecond", b.minPerSecond, {
      atLeast: 0,
      atMost: 1e6,
    }),
    windowMs: duration("retryBudget.windowMs", b.windowMs),
  };
}

/** Validates the hedging policy; `false` or nothing means off. */
function resolveHedging(
  hedging: boolean | Partial<HedgingConfig> | undefined,
): HedgingConfig | undefined {
  if (hedging === undefined || hedging === false) return undefined;
  if (hedging === true) return DEFAULT_HEDGING;
  const h = section("hedging", hedging, DEFAULT_HEDGING);
  return {
    delayMs: h.delayMs === undefined
      ? undefined
      : duration("hedging.delayMs", h.delayMs),
    percentile: finiteIn("hedging.percentile", h.percentile, {
      atLeast: 50,
      atMost: 99.9,
    }),
    maxHedges: integerIn("hedging.maxHedges", h.maxHedges, 1, 4),
  };
}

/** Validates health settings and fills in defaults. */
export function resolveHealthConfig(
  health: Partial<HealthConfig> | undefined = {},
): HealthConfig {
  const h = section("healthConfig", health, DEFAULT_HEALTH_CONFIG);
  return {
    intervalMs: duration("healthConfig.intervalMs", h.intervalMs, {
      allowZero: true,
    }),
    timeoutMs: duration("healthConfig.timeoutMs", h.timeoutMs),
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

function resolveProtocols(
  enableTls: boolean | undefined, // undefined: not given
  policyValue: unknown,
  protocolsValue: unknown,
): { tlsPolicy: TlsPolicy; protocols: ProtocolType[] } {
  const tlsPolicy = oneOf(
    "tlsPolicy",
    orDefault(policyValue, enableTls ? "require" : "disable"),
    ["require", "prefer", "disable"] as const,
  );
  if (enableTls !== undefined && (tlsPolicy === "disable") === enableTls) {
    throw new ConfigError(
      "tlsPolicy",
      tlsPolicy,
      `cannot be "${tlsPolicy}" when enableTls is ${enableTls}`,
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
  if (value === "deno" && !denoCanConnect()) {
    // Not Deno: every connect would fail, late and as the nodes' fault.
    throw new ConfigError(
      "runtime",
      value,
      'expected the runtime this program runs on ("deno" needs Deno): ' +
        'leave runtime out to detect it, or use "node"',
    );
  }
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

function denoCanConnect(): boolean {
  const deno = (globalThis as { Deno?: { connect?: unknown } }).Deno;
  return typeof deno?.connect === "function";
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
