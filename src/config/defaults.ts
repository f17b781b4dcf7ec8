/**
 * The configuration's defaults, each with the reason for its value. The
 * pool, retry and timeout figures are the specification's; the rest are
 * chosen here and say why.
 *
 * @module
 */

import type {
  HealthConfig,
  HedgingConfig,
  OutlierEjectionConfig,
  PoolConfig,
  RetryBudgetConfig,
  RetryConfig,
} from "./shapes.ts";

/**
 * The port a host without one is assumed to listen on: the one nodes and
 * the reference node listen on by default, so `"db.example"` just works.
 *
 * @example
 * ```ts
 * import { DEFAULT_PORT } from "@nodewire/client";
 * import { parseHost } from "@nodewire/client/core";
 * console.log(parseHost("db.example").port === DEFAULT_PORT); // true
 * ```
 */
export const DEFAULT_PORT = 7000;

/**
 * The specification's pool defaults: a few warm connections per node so the
 * first requests pay no connect, a bound on sockets per node, and timeouts
 * that recycle connections before the network does.
 *
 * @example
 * ```ts
 * import { DEFAULT_POOL_CONFIG } from "@nodewire/client";
 * console.log(DEFAULT_POOL_CONFIG.maxConnections); // 20
 * ```
 */
export const DEFAULT_POOL_CONFIG: Readonly<PoolConfig> = Object.freeze({
  // Enough warm connections that a burst after a quiet spell pays no
  // connect latency; cheap, as multiplexing lets few sockets carry much.
  minConnections: 5,
  // Bounds the sockets (and node-side sessions) one client holds per node.
  maxConnections: 20,
  // As long as a connect may take (DEFAULT_TIMEOUT_MS): waiting longer
  // for a connection than it takes to open one rarely helps.
  connectionTimeoutMs: 5000,
  // Closes what a burst opened within a minute, well before the idle
  // timeouts of common NATs and load balancers (350 s and up).
  idleTimeoutMs: 60_000,
  // 30 minutes, HikariCP's choice: under the connection age limits of
  // most firewalls and proxies, and rare enough to cost nothing.
  maxLifetimeMs: 1_800_000,
  // Two connects at once (MongoDB's maxConnecting): refills quickly but
  // cannot turn a node's restart into a connect storm.
  maxConnecting: 2,
  // Well under the idle timeouts of common NATs and load balancers, and
  // one small ping per idle connection every 30 s costs next to nothing.
  heartbeatIntervalMs: 30_000,
  // High enough that a busy node's requests batch into few writes, low
  // enough that a burst still spreads over several sockets.
  multiplexThreshold: 128,
});

/**
 * The specification's retry defaults: three retries waiting 100, 200 and
 * 400 ms ride out a node restart or a failover without holding a caller
 * for more than a second.
 *
 * @example
 * ```ts
 * import { DEFAULT_RETRY_CONFIG } from "@nodewire/client";
 * console.log(DEFAULT_RETRY_CONFIG.initialBackoffMs); // 100
 * ```
 */
export const DEFAULT_RETRY_CONFIG: Readonly<RetryConfig> = Object.freeze({
  // Enough for a transient failure, few enough not to pile load on a
  // node that is really down.
  maxRetries: 3,
  // Long enough that failing clients do not hammer a node at once, short
  // enough to go unnoticed next to a 5 s timeout.
  initialBackoffMs: 100,
  // A caller waits at most 5 s between tries, the default timeout.
  maxBackoffMs: 5000,
  // Doubling: the usual exponential backoff (gRPC uses 1.6, AWS 2).
  backoffMultiplier: 2,
  // Off, so delays are exactly the documented schedule; turn it on when
  // many clients may fail at once and must not come back in lockstep.
  jitter: false,
});

/**
 * The retry budget's defaults, Finagle's RetryBudget's numbers: retries may
 * add 20% to the traffic of the last 10 s, or 10 per second when that is
 * more, so that a client sending little can still retry. A failing
 * cluster under load then receives at most 1.2 times its offered load,
 * where `maxRetries: 3` alone would allow 4 times. (Finagle adds the floor
 * to the share; taking the larger keeps the 1.2 bound under load.)
 *
 * @example
 * ```ts
 * import { DEFAULT_RETRY_BUDGET } from "@nodewire/client/core";
 * console.log(DEFAULT_RETRY_BUDGET.ratio); // 0.2
 * ```
 */
export const DEFAULT_RETRY_BUDGET: Readonly<RetryBudgetConfig> = Object.freeze({
  ratio: 0.2,
  minPerSecond: 10,
  windowMs: 10_000,
});

/**
 * Hedging's defaults: wait for the node's 95th percentile reply time, then
 * send one hedge. Only about 5% of requests wait that long, so hedging
 * adds about 5% to the traffic while cutting off the slowest tail.
 *
 * @example
 * ```ts
 * import { DEFAULT_HEDGING } from "@nodewire/client/core";
 * console.log(DEFAULT_HEDGING.percentile); // 95
 * ```
 */
export const DEFAULT_HEDGING: Readonly<HedgingConfig> = Object.freeze({
  delayMs: undefined,
  percentile: 95,
  maxHedges: 1,
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
  // Frequent enough to notice a dead node within seconds, rare enough
  // that a thousand clients' pings are noise to a node.
  intervalMs: 5000,
  // A healthy node answers a ping in milliseconds; 2 s only fails a node
  // that is stalled or unreachable.
  timeoutMs: 2000,
  // One lost ping is noise; three in a row is a node that is gone.
  unhealthyThreshold: 3,
  // Two answers, so a node that flaps is not handed traffic on its first.
  healthyThreshold: 2,
  // Bounds the sockets and timers a sweep over a large cluster opens at once.
  maxConcurrentChecks: 16,
});

/**
 * Outlier ejection's defaults: Envoy's, except where a database cluster of
 * a few nodes needs otherwise (the share, the minimum nodes and the gap).
 * A node that fails five requests in a row is out for 30 s, then 60 s,
 * 90 s... up to 5 minutes while it keeps failing on its return.
 *
 * @example
 * ```ts
 * import { DEFAULT_OUTLIER_EJECTION } from "@nodewire/client/core";
 * console.log(DEFAULT_OUTLIER_EJECTION.consecutiveFailures); // 5
 * ```
 */
export const DEFAULT_OUTLIER_EJECTION: Readonly<OutlierEjectionConfig> = Object
  .freeze({
    // Envoy's consecutive_5xx: five node failures in a row is a node in
    // trouble, not bad luck, and fewer would eject on a short blip that
    // retries ride out.
    consecutiveFailures: 5,
    // Envoy's interval: long enough for a node to see 100 requests at a
    // modest rate, short enough to react within seconds.
    intervalMs: 10_000,
    // Envoy's: a restart or a failover is usually over within 30 s, and a
    // node that is not gets twice, three times as long.
    baseEjectionTimeMs: 30_000,
    // Envoy's: a node that keeps failing is still tried every 5 minutes.
    maxEjectionTimeMs: 300_000,
    // Envoy allows 10% of a large fleet; a database has a few nodes, and
    // half of them is where passive signals are more likely a fault of the
    // client or the network than of the nodes (and the rest would carry
    // twice the load). Health checks may still take more out.
    maxEjectedShare: 0.5,
    // A rate is compared with at least two peers: the usual three-node
    // cluster can single out its one bad node (Envoy needs 5 hosts).
    successRateMinNodes: 3,
    // Envoy's success_rate_request_volume: fewer requests make a rate too
    // noisy to judge.
    successRateMinRequests: 100,
    // Envoy's success_rate_stdev_factor (1900 / 1000).
    successRateStdevFactor: 1.9,
    // Ten points below the peers: a node failing one request in ten more
    // than they do is sick; one failing a few more is left to retries.
    successRateMinGap: 0.1,
  });

/**
 * The panic threshold's default: off. Nodes are mostly marked down for
 * failing to connect or to answer pings, which are rarely false alarms, so
 * spreading requests over them would only fail requests; and with no node
 * healthy the client fails fast with `NoHealthyNodesError`, as documented.
 * Ejections, the signal that can be wrong, are already bounded by
 * `outlierEjection.maxEjectedShare`.
 *
 * @example
 * ```ts
 * import { DEFAULT_PANIC_THRESHOLD } from "@nodewire/client/core";
 * console.log(DEFAULT_PANIC_THRESHOLD); // 0
 * ```
 */
export const DEFAULT_PANIC_THRESHOLD = 0;

/**
 * Default connect and request timeout, in ms (the specification's): long
 * enough for a TLS connect across regions, short enough that a dead node
 * is noticed before the caller gives up on its own.
 *
 * @example
 * ```ts
 * import { DEFAULT_TIMEOUT_MS } from "@nodewire/client";
 * import { resolveConfig } from "@nodewire/client/core";
 * console.log(resolveConfig({ hosts: ["a"] }).timeoutMs === DEFAULT_TIMEOUT_MS); // true
 * ```
 */
export const DEFAULT_TIMEOUT_MS = 5000;

/**
 * The defaults of each config section but `tls` (whose defaults are in
 * `tls.ts`), by the section's name: the fields each section has.
 */
export const SECTION_DEFAULTS: Readonly<Record<string, object>> = Object
  .freeze({
    poolConfig: DEFAULT_POOL_CONFIG,
    retryConfig: DEFAULT_RETRY_CONFIG,
    retryBudget: DEFAULT_RETRY_BUDGET,
    hedging: DEFAULT_HEDGING,
    healthConfig: DEFAULT_HEALTH_CONFIG,
    outlierEjection: DEFAULT_OUTLIER_EJECTION,
  });
