/**
 * Node health: a small state machine per node fed by active pings and by
 * the outcome of real requests.
 *
 * A node goes unhealthy after `unhealthyThreshold` consecutive failures and
 * comes back after `healthyThreshold` consecutive successes. Requiring a run
 * in both directions keeps one lost packet from taking a node out, and one
 * lucky ping from putting a flapping node back in.
 *
 * @module
 */

import type { HealthConfig } from "../config/shapes.ts";
import { finiteIn, integerIn } from "../config/validate.ts";
import { NodewireError, NOT_THE_NODES_FAULT } from "../errors.ts";
import { RemoteErrorCode } from "../protocol/messages.ts";

/**
 * A plain copy of a node's health, for logs, metrics and `JSON.stringify`.
 *
 * @example
 * ```ts
 * import { NodeHealth, type NodeHealthSnapshot } from "@nodewire/client/core";
 * const health = new NodeHealth("127.0.0.1:7000", { unhealthyThreshold: 3, healthyThreshold: 2 });
 * const snapshot: NodeHealthSnapshot = health.toJSON();
 * console.log(snapshot.isHealthy); // true
 * ```
 */
export interface NodeHealthSnapshot {
  /** The node's key: its canonical `host:port` address. */
  address: string;
  /** Whether requests may be routed to the node. */
  isHealthy: boolean;
  /** Clock time of the last recorded success or failure, if any. */
  lastCheck: number | undefined;
  /** Failures since the last success. */
  consecutiveFailures: number;
  /** Successes since the last failure. */
  consecutiveSuccesses: number;
  /** Moving average of observed latency, in ms; undefined before the first sample. */
  latencyMs: number | undefined;
  /** Failures recorded over the node's lifetime. */
  totalFailures: number;
  /** Successes recorded over the node's lifetime. */
  totalSuccesses: number;
  /** The last failure, or the reason given to `markUnhealthy`. */
  lastError: unknown;
}

/**
 * Options for {@linkcode NodeHealth}.
 *
 * @example
 * ```ts
 * import type { NodeHealthOptions } from "@nodewire/client/core";
 * const options: NodeHealthOptions = { healthy: false, latencyWeight: 0.5 };
 * ```
 */
export interface NodeHealthOptions {
  /**
   * Initial state. Default true: a configured node is trusted until it
   * fails, so the first requests need not wait for a health sweep.
   */
  healthy?: boolean;
  /**
   * Weight of a new latency sample in the moving average, in `(0, 1]`.
   * Default 0.2: a sample's influence halves after about three more, so
   * the average follows a real slowdown within a few requests without
   * jumping on a single outlier.
   */
  latencyWeight?: number;
}

/** The default weight of a new latency sample; see {@linkcode NodeHealthOptions}. */
const DEFAULT_LATENCY_WEIGHT = 0.2;

/**
 * The health of one node and the rules for changing it. All methods are
 * O(1); the ones that can change the state return whether they did, so the
 * caller (the connection manager) can update its set of healthy nodes only
 * on a transition.
 *
 * @example
 * ```ts
 * import { NodeHealth } from "@nodewire/client/core";
 * const health = new NodeHealth("127.0.0.1:7000", {
 *   unhealthyThreshold: 2,
 *   healthyThreshold: 1,
 * });
 * health.recordFailure(new Error("ping timed out"), 1000); // false, still healthy
 * health.recordFailure(new Error("ping timed out"), 2000); // true: now unhealthy
 * health.recordSuccess(3.5, 3000); // true: healthy again
 * console.log(health.isHealthy, health.latencyMs); // true 3.5
 * ```
 */
export class NodeHealth {
  /** The node's key: its canonical `host:port` address. */
  readonly address: string;
  readonly #unhealthyThreshold: number;
  readonly #healthyThreshold: number;
  readonly #latencyWeight: number;
  #healthy: boolean;
  #lastCheck: number | undefined;
  #consecutiveFailures = 0;
  #consecutiveSuccesses = 0;
  #latencyMs: number | undefined;
  #totalFailures = 0;
  #totalSuccesses = 0;
  #lastError: unknown;

  /**
   * Creates the health record of a node.
   *
   * @throws {ConfigError} when a threshold is not a positive integer or the
   *   latency weight is outside `(0, 1]`.
   */
  constructor(
    address: string,
    config: Pick<HealthConfig, "unhealthyThreshold" | "healthyThreshold">,
    options: NodeHealthOptions = {},
  ) {
    this.address = address;
    this.#unhealthyThreshold = integerIn(
      "healthConfig.unhealthyThreshold",
      config.unhealthyThreshold,
      1,
      Infinity,
    );
    this.#healthyThreshold = integerIn(
      "healthConfig.healthyThreshold",
      config.healthyThreshold,
      1,
      Infinity,
    );
    this.#latencyWeight = finiteIn(
      "latencyWeight",
      options.latencyWeight ?? DEFAULT_LATENCY_WEIGHT,
      { above: 0, atMost: 1 },
    );
    this.#healthy = options.healthy ?? true;
  }

  /** Whether requests may be routed to the node. */
  get isHealthy(): boolean {
    return this.#healthy;
  }

  /** Clock time of the last recorded success or failure, if any. */
  get lastCheck(): number | undefined {
    return this.#lastCheck;
  }

  /** Failures since the last success. */
  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** Successes since the last failure. */
  get consecutiveSuccesses(): number {
    return this.#consecutiveSuccesses;
  }

  /**
   * Exponentially weighted moving average of the latencies passed to
   * {@linkcode NodeHealth.recordSuccess}, in ms; undefined before the first.
   */
  get latencyMs(): number | undefined {
    return this.#latencyMs;
  }

  /** Failures recorded over the node's lifetime. */
  get totalFailures(): number {
    return this.#totalFailures;
  }

  /** Successes recorded over the node's lifetime. */
  get totalSuccesses(): number {
    return this.#totalSuccesses;
  }

  /** The last failure, or the reason given to `markUnhealthy`. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /**
   * Records a successful check or request that took `latencyMs`, at clock
   * time `now`. A latency that is not a finite non-negative number still
   * counts as a success but is left out of the average.
   *
   * @returns true when this success made the node healthy again.
   */
  recordSuccess(latencyMs: number, now: number): boolean {
    this.#lastCheck = now;
    this.#totalSuccesses++;
    this.#consecutiveSuccesses++;
    this.#consecutiveFailures = 0;
    if (Number.isFinite(latencyMs) && latencyMs >= 0) {
      this.#latencyMs = this.#latencyMs === undefined
        ? latencyMs
        : this.#latencyMs + this.#latencyWeight * (latencyMs - this.#latencyMs);
    }
    if (
      !this.#healthy && this.#consecutiveSuccesses >= this.#healthyThreshold
    ) {
      this.#healthy = true;
      return true;
    }
    return false;
  }

  /**
   * Records a failed check or request at clock time `now`.
   *
   * @returns true when this failure made the node unhealthy.
   */
  recordFailure(error: unknown, now: number): boolean {
    this.#lastCheck = now;
    this.#lastError = error;
    this.#totalFailures++;
    this.#consecutiveFailures++;
    this.#consecutiveSuccesses = 0;
    if (
      this.#healthy && this.#consecutiveFailures >= this.#unhealthyThreshold
    ) {
      this.#healthy = false;
      return true;
    }
    return false;
  }

  /**
   * Takes the node out at once, whatever the counters say, for example after
   * it announced a shutdown. It then needs `healthyThreshold` consecutive
   * successes to come back.
   *
   * @returns true when the node was healthy before.
   */
  markUnhealthy(reason?: unknown): boolean {
    if (reason !== undefined) this.#lastError = reason;
    this.#consecutiveSuccesses = 0;
    if (!this.#healthy) return false;
    this.#healthy = false;
    return true;
  }

  /**
   * Puts the node back at once, for example on an operator's command. It
   * then needs `unhealthyThreshold` fresh consecutive failures to go out.
   *
   * @returns true when the node was unhealthy before.
   */
  markHealthy(): boolean {
    this.#consecutiveFailures = 0;
    if (this.#healthy) return false;
    this.#healthy = true;
    return true;
  }

  /** A plain copy of the current state. */
  toJSON(): NodeHealthSnapshot {
    return {
      address: this.address,
      isHealthy: this.#healthy,
      lastCheck: this.#lastCheck,
      consecutiveFailures: this.#consecutiveFailures,
      consecutiveSuccesses: this.#consecutiveSuccesses,
      latencyMs: this.#latencyMs,
      totalFailures: this.#totalFailures,
      totalSuccesses: this.#totalSuccesses,
      lastError: this.#lastError,
    };
  }
}

/**
 * Whether a request's failure should count against the node as a passive
 * health signal: only what the node did. Connection failures (refused,
 * connect timeout, lost connection), protocol violations and a node
 * answering Overloaded or Unavailable do. The caller's own deadlines do
 * not (a request timeout says the caller chose a short limit or a slow
 * operation, not that the node is sick: a silent node is still taken out,
 * by the health checks' own timeouts), nor do aborts, other answers from
 * the node, pool waits, client-side errors, or anything that is not a
 * {@linkcode NodewireError} (most likely a bug in the caller's code).
 *
 * @example
 * ```ts
 * import { isNodeFailure } from "@nodewire/client/core";
 * import { ConnectionRefusedError, RemoteError } from "@nodewire/client";
 * isNodeFailure(new ConnectionRefusedError({ hostname: "127.0.0.1", port: 7000 })); // true
 * isNodeFailure(new RemoteError(3, "key not found", false)); // false
 * ```
 */
export function isNodeFailure(error: unknown): boolean {
  if (!(error instanceof NodewireError)) return false;
  const code = error.code;
  if (code === "REMOTE_ERROR") {
    const remote = (error as { remoteCode?: unknown }).remoteCode;
    return remote === RemoteErrorCode.Overloaded ||
      remote === RemoteErrorCode.Unavailable;
  }
  return code !== "REQUEST_TIMEOUT" && !NOT_THE_NODES_FAULT.has(code);
}
