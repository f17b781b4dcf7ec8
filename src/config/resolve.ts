/**
 * Resolution: a user's {@linkcode ConnectionConfig} checked field by field
 * and completed with the defaults. Validation runs once, here; everything
 * downstream reads the {@linkcode ResolvedConfig}.
 *
 * @module
 */

import { systemClock } from "../clock.ts";
import { ConfigError } from "../errors.ts";
import {
  DEFAULT_MAX_DATAGRAM_SIZE,
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
} from "../protocol/datagram.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  MAX_FRAME_SIZE_LIMIT,
  MIN_FRAME_SIZE,
} from "../protocol/frame.ts";
import type { TlsPolicy } from "../protocol/negotiation.ts";
import {
  isProtocolType,
  PROTOCOL_PRIORITY,
  type ProtocolType,
} from "../protocol_type.ts";
import {
  foreignRuntimeExpected,
  nativeAdapterRuns,
} from "../runtime/runtime_name.ts";
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
  LoadBalancing,
  Logger,
  PoolConfig,
  ResolvedConfig,
  RetryBudgetConfig,
  RetryConfig,
} from "./shapes.ts";
import { resolveTlsConfig, TLS_POLICY } from "./tls.ts";
import { rejectUrlInHost, rejectUrlsInHosts } from "./url.ts";
import { rejectUnknownKeys } from "./option_names.ts";
import {
  bool,
  clientName,
  clock as clockCheck,
  func,
  integer,
  methods,
  ms,
  msOrZero,
  numberIn,
  oneOf,
  optional,
  readable,
  section,
  text,
} from "./validate.ts";

/** The options of a {@linkcode ConnectionConfig}, by name. */
export const CONFIG_KEYS: ReadonlySet<string> = new Set<string>([
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
 * Validates a user configuration and fills in defaults. The result is
 * frozen (its sections, hosts and protocols too), and is the only config
 * `new ConnectionManager()` takes: to change a field, resolve the changed
 * configuration again. A config this function returned is returned as
 * is; a copy of one is no `ConnectionConfig` (its hosts are parsed) and
 * is refused, naming `hosts[0]`.
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
 * const resolved = resolveConfig({ hosts: ["127.0.0.1"] });
 * console.log(Object.isFrozen(resolved)); // true
 * console.log(resolveConfig(resolved) === resolved); // true
 * ```
 */
export function resolveConfig(
  config: ConnectionConfig | ResolvedConfig,
): ResolvedConfig {
  // Checked and frozen already: read as a ConnectionConfig it was refused
  // for its parsed hosts (and Client.connect, which resolves what it is
  // given, with it).
  if (isResolvedConfig(config)) return config;
  const resolved = frozen(readable("config", config, () => resolve(config)));
  MADE.add(resolved);
  return resolved;
}

/**
 * The configs {@linkcode resolveConfig} made. A /core caller hands one to
 * `new ConnectionManager()`, which reads its fields unchecked, far from
 * the door: an edited copy (a NaN timeout, a missing section, a host of
 * null) ran with a silent default, failed late in another method's name
 * or threw a raw TypeError. Only what is in here is taken, and it is
 * frozen, so what was checked is what is read.
 */
const MADE = new WeakSet<object>();

/**
 * Whether `value` is a config {@linkcode resolveConfig} made (not a copy,
 * not a proxy of one, not one built by hand).
 */
export function isResolvedConfig(value: unknown): value is ResolvedConfig {
  return typeof value === "object" && value !== null && MADE.has(value);
}

/**
 * `config` and the parts resolution built for it, frozen; not what the
 * caller handed in and the config holds as given (the clock, the logger,
 * an adapter), which are the caller's own objects.
 */
function frozen(config: ResolvedConfig): ResolvedConfig {
  for (const host of config.hosts) Object.freeze(host);
  if (config.tls.ca !== undefined) Object.freeze(config.tls.ca);
  const parts = [
    config.hosts,
    config.protocols,
    config.tls,
    config.poolConfig,
    config.retryConfig,
    config.retryBudget,
    config.hedging,
    config.healthConfig,
    config.outlierEjection,
  ];
  for (const part of parts) if (part !== undefined) Object.freeze(part);
  return Object.freeze(config);
}

function resolve(config: ConnectionConfig): ResolvedConfig {
  // An array too: its "length" would pass for an unknown option.
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError("config", config, "expected an object");
  }
  rejectUnknownKeys("config", config, CONFIG_KEYS);
  // Read once: a getter or proxy may answer differently each time.
  const givenHosts = config.hosts;
  // A connection string given as hosts itself, not in an array, must not
  // be quoted by the array check.
  rejectUrlInHost(givenHosts, "hosts");
  const hostList = readHostList(givenHosts);
  rejectUrlsInHosts(hostList);
  const hosts = parseHosts(hostList);
  const username = optional<string | undefined>(
    "username",
    config.username,
    text,
  );
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
  const timeoutMs = optional(
    "timeoutMs",
    config.timeoutMs,
    ms,
    DEFAULT_TIMEOUT_MS,
  );
  const maxFrameSize = optional(
    "maxFrameSize",
    config.maxFrameSize,
    integer(MIN_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT),
    DEFAULT_MAX_FRAME_SIZE,
  );
  // Read once each, as every field is: two reads of a getter could
  // disagree (an enableTls of true, then false, resolved to a config that
  // says TLS is on with a tlsPolicy of "disable").
  const givenTls = config.enableTls;
  const enableTls = optional("enableTls", givenTls, bool, false);
  const { tlsPolicy, protocols } = resolveProtocols(
    givenTls === false ? false : enableTls || undefined,
    config.tlsPolicy,
    config.protocols,
  );
  const whenNoHealthyNodes = config.whenNoHealthyNodes;
  const panicThreshold = resolvePanicThreshold(
    config.panicThreshold,
    whenNoHealthyNodes,
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
    requestTimeoutMs: optional(
      "requestTimeoutMs",
      config.requestTimeoutMs,
      ms,
      timeoutMs,
    ),
    maxFrameSize,
    maxDatagramSize: optional(
      "maxDatagramSize",
      config.maxDatagramSize,
      integer(MIN_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE),
      DEFAULT_MAX_DATAGRAM_SIZE,
    ),
    poolConfig: resolvePoolConfig(config.poolConfig),
    retryConfig: resolveRetryConfig(config.retryConfig),
    retryBudget: resolveRetryBudget(config.retryBudget),
    hedging: resolveHedging(config.hedging),
    healthConfig: resolveHealthConfig(config.healthConfig),
    outlierEjection: resolveOutlierEjection(config.outlierEjection),
    panicThreshold,
    loadBalancing: optional<LoadBalancing>(
      "loadBalancing",
      config.loadBalancing,
      oneOf(["round-robin", "least-in-flight", "peak-ewma"]),
      "least-in-flight",
    ),
    whenNoHealthyNodes: optional<"fail" | "tryAll">(
      "whenNoHealthyNodes",
      whenNoHealthyNodes,
      oneOf(["fail", "tryAll"]),
      // A panic threshold spreads over every node when none is healthy.
      panicThreshold > 0 ? "tryAll" : "fail",
    ),
    runtime: resolveRuntime(config.runtime),
    clock: optional(
      "clock",
      config.clock,
      clockCheck,
      systemClock,
    ),
    clientName: optional(
      "clientName",
      config.clientName,
      clientName,
      "nodewire",
    ),
    logger: optional<Logger | undefined>("logger", config.logger, func),
  };
}

/** Validates pool settings and fills in defaults. */
export function resolvePoolConfig(
  pool: Partial<PoolConfig> | undefined = {},
): PoolConfig {
  const resolved = section("poolConfig", pool, DEFAULT_POOL_CONFIG, {
    minConnections: integer(0, 10_000),
    maxConnections: integer(1, 10_000),
    connectionTimeoutMs: ms,
    idleTimeoutMs: msOrZero,
    maxLifetimeMs: msOrZero,
    maxConnecting: integer(1, 1000),
    heartbeatIntervalMs: msOrZero,
    multiplexThreshold: integer(1, 1_000_000),
  });
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
  const resolved = section("retryConfig", retry, DEFAULT_RETRY_CONFIG, {
    maxRetries: integer(0, 1000),
    initialBackoffMs: msOrZero,
    maxBackoffMs: msOrZero,
    backoffMultiplier: numberIn(1),
    jitter: bool,
  });
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
 * Validates the retry budget and fills in defaults; `false` turns it off,
 * `true` is the defaults (as for hedging and outlier ejection).
 */
function resolveRetryBudget(
  budget: boolean | Partial<RetryBudgetConfig> | undefined,
): RetryBudgetConfig | undefined {
  return budget === false ? undefined : section(
    "retryBudget",
    budget === true ? undefined : budget,
    DEFAULT_RETRY_BUDGET,
    {
      ratio: numberIn(0, 100),
      minPerSecond: numberIn(0, 1e6),
      windowMs: ms,
    },
  );
}

/** Validates the hedging policy; `false` or nothing means off. */
function resolveHedging(
  hedging: boolean | Partial<HedgingConfig> | undefined,
): HedgingConfig | undefined {
  if (hedging === undefined || hedging === false) return undefined;
  if (hedging === true) return DEFAULT_HEDGING;
  return section("hedging", hedging, DEFAULT_HEDGING, {
    delayMs: ms,
    percentile: numberIn(50, 99.9),
    maxHedges: integer(1, 4),
  });
}

/** Validates health settings and fills in defaults. */
export function resolveHealthConfig(
  health: Partial<HealthConfig> | undefined = {},
): HealthConfig {
  return section("healthConfig", health, DEFAULT_HEALTH_CONFIG, {
    intervalMs: msOrZero,
    timeoutMs: ms,
    unhealthyThreshold: integer(1, 1000),
    healthyThreshold: integer(1, 1000),
    maxConcurrentChecks: integer(1, 10_000),
  });
}

function resolveProtocols(
  enableTls: boolean | undefined, // undefined: not given
  policyValue: unknown,
  protocolsValue: unknown,
): { tlsPolicy: TlsPolicy; protocols: ProtocolType[] } {
  const tlsPolicy = optional<TlsPolicy>(
    "tlsPolicy",
    policyValue,
    TLS_POLICY,
    enableTls ? "require" : "disable",
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
    // A loop, not forEach, which skips a hole: [, "udp"] is a mistake.
    for (let i = 0; i < protocolsValue.length; i++) {
      const p = protocolsValue[i];
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
    }
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
  if ((value === "deno" || value === "bun") && !nativeAdapterRuns(value)) {
    // Off its runtime the adapter fails late, as if the nodes were at fault.
    throw new ConfigError("runtime", value, foreignRuntimeExpected(value));
  }
  if (
    value === "deno" || value === "bun" || value === "node" ||
    value === "memory"
  ) return value;
  if (methods("connect", "listen")(value) === undefined) {
    return value as RuntimeAdapter;
  }
  throw new ConfigError(
    "runtime",
    value,
    'expected "deno", "bun", "node", "memory" or a RuntimeAdapter',
  );
}
