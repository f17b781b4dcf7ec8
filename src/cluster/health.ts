/**
 * Node health: a small state machine per node fed by active pings and by
 * the outcome of real requests.
 *
 * Two things can hold a node out of rotation, and it is healthy only when
 * neither does. Health checks (and an explicit `markUnhealthy`) take it
 * down after `unhealthyThreshold` consecutive failed checks and bring it
 * back after `healthyThreshold` consecutive successes: requiring a run in
 * both directions keeps one lost packet from taking a node out, and one
 * lucky ping from putting a flapping node back in. Outlier ejection (see
 * `ejection.ts`) takes it out for a set time on what requests saw; passing
 * health checks do not end an ejection early, since a node can answer
 * pings and still fail requests.
 *
 * @module
 */

import type { HealthConfig } from "../config/shapes.ts";
import { bool, integer, readOptions } from "../config/options.ts";
import { checked, numberIn, readable } from "../config/validate.ts";
import {
  NodewireError,
  nodewireErrorOf,
  NOT_THE_NODES_FAULT,
} from "../errors.ts";
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
  /** Clock time of the last health check recorded, if any. */
  lastCheck: number | undefined;
  /** The longer of the current runs of failed checks and failed requests. */
  consecutiveFailures: number;
  /** Requests that failed in a row through the node's fault. */
  consecutiveRequestFailures: number;
  /** Successes since the last failure. */
  consecutiveSuccesses: number;
  /** Moving average of observed latency, in ms; undefined before the first sample. */
  latencyMs: number | undefined;
  /** Failed health checks over the node's lifetime. */
  totalFailures: number;
  /** Passed health checks over the node's lifetime. */
  totalSuccesses: number;
  /** The last failure, or the reason given to `markUnhealthy` or `eject`. */
  lastError: unknown;
  /** Whether the node is ejected now (out of rotation until `ejectedUntil`). */
  ejected: boolean;
  /** When the current (or else the last) ejection ends, on the clock. */
  ejectedUntil: number | undefined;
  /** The last ejection's count: its length was the base time × this. */
  ejectionCount: number;
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
  /** In rotation: neither down nor ejected. */
  #healthy: boolean;
  /** Held down by failed health checks or `markUnhealthy`. */
  #down: boolean;
  #ejected = false;
  #ejectedUntil: number | undefined;
  #ejectionCount = 0;
  #lastCheck: number | undefined;
  #consecutiveFailures = 0;
  #consecutiveSuccesses = 0;
  #latencyMs: number | undefined;
  #totalFailures = 0;
  #totalSuccesses = 0;
  #lastError: unknown;
  // What requests saw: a run of failures, and counts since the last
  // `resetRequestCounts`, bumped by plain increments on every request.
  #requestFailuresInRow = 0;
  #requestSuccesses = 0;
  #requestFailures = 0;

  /**
   * Creates the health record of a node.
   *
   * @throws {ConfigError} when a threshold is not a positive integer.
   * @throws {InvalidArgumentError} for a bad option.
   */
  constructor(
    address: string,
    config: Pick<HealthConfig, "unhealthyThreshold" | "healthyThreshold">,
    options: NodeHealthOptions = {},
  ) {
    this.address = address;
    // A config that cannot be read (null, a revoked proxy) is a
    // ConfigError too, not the TypeError of a property read.
    [this.#unhealthyThreshold, this.#healthyThreshold] = readable(
      "healthConfig",
      config,
      () => [
        checked<number>(
          "healthConfig.unhealthyThreshold",
          config.unhealthyThreshold,
          integer(1),
        ),
        checked<number>(
          "healthConfig.healthyThreshold",
          config.healthyThreshold,
          integer(1),
        ),
      ],
    );
    // Read once and checked: a healthy of "no" was kept as it was.
    const { healthy = true, latencyWeight = DEFAULT_LATENCY_WEIGHT } =
      readOptions<NodeHealthOptions>("new NodeHealth()", options, {
        healthy: bool,
        latencyWeight: numberIn(0, 1, undefined, undefined, true),
      });
    this.#latencyWeight = latencyWeight;
    this.#healthy = healthy;
    this.#down = !healthy;
  }

  /** Whether requests may be routed to the node. */
  get isHealthy(): boolean {
    return this.#healthy;
  }

  /** Clock time of the last health check recorded, if any. */
  get lastCheck(): number | undefined {
    return this.#lastCheck;
  }

  /**
   * The longer of the current runs of failed health checks and of failed
   * requests (node failures only): how long the node has been failing.
   */
  get consecutiveFailures(): number {
    return Math.max(this.#consecutiveFailures, this.#requestFailuresInRow);
  }

  /** Requests that failed in a row through the node's fault. */
  get consecutiveRequestFailures(): number {
    return this.#requestFailuresInRow;
  }

  /** Requests that succeeded since the counts were last reset. */
  get requestSuccesses(): number {
    return this.#requestSuccesses;
  }

  /** Requests that failed through the node's fault since the counts were last reset. */
  get requestFailures(): number {
    return this.#requestFailures;
  }

  /** Whether the node is ejected now: out of rotation until `ejectedUntil`. */
  get isEjected(): boolean {
    return this.#ejected;
  }

  /**
   * When the current ejection ends, in ms on the clock; after it ended,
   * when the last one did (or was due to); undefined before any.
   */
  get ejectedUntil(): number | undefined {
    return this.#ejectedUntil;
  }

  /** The last ejection's count (its length was the base time × this); 0 before any. */
  get ejectionCount(): number {
    return this.#ejectionCount;
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

  /** Failed health checks over the node's lifetime. */
  get totalFailures(): number {
    return this.#totalFailures;
  }

  /** Passed health checks over the node's lifetime. */
  get totalSuccesses(): number {
    return this.#totalSuccesses;
  }

  /** The last failure, or the reason given to `markUnhealthy` or `eject`. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /**
   * Records a passed health check that took `latencyMs`, at clock time
   * `now`. A latency that is not a finite non-negative number still counts
   * as a success but is left out of the average. A node held down by
   * checks is released after `healthyThreshold` of them in a row; an
   * ejected one still waits for its ejection to end.
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
    if (this.#down && this.#consecutiveSuccesses >= this.#healthyThreshold) {
      this.#down = false;
      return this.#settle();
    }
    return false;
  }

  /**
   * Records a failed health check at clock time `now`. After
   * `unhealthyThreshold` in a row the node is held down, also past the end
   * of an ejection, until checks pass again.
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
      !this.#down && this.#consecutiveFailures >= this.#unhealthyThreshold
    ) {
      this.#down = true;
      return this.#settle();
    }
    return false;
  }

  /**
   * A request to the node got its answer (a reply, or an ordinary error
   * such as NotFound): its run of failed requests ends. Plain increments,
   * on every request; `count` books that many answered at once.
   */
  recordRequestSuccess(count = 1): void {
    this.#requestSuccesses += count;
    this.#requestFailuresInRow = 0;
  }

  /**
   * A request failed through the node's fault (see
   * {@linkcode isNodeFailure}). It changes no state: whether the node is
   * ejected for it is the outlier ejection's call.
   */
  recordRequestFailure(error: unknown): void {
    this.#lastError = error;
    this.#requestFailures++;
    this.#requestFailuresInRow++;
  }

  /** Starts a new window of request counts (not the run of failures). */
  resetRequestCounts(): void {
    this.#requestSuccesses = 0;
    this.#requestFailures = 0;
  }

  /**
   * Takes the node out of rotation until clock time `until` (the outlier
   * ejection ends it with {@linkcode NodeHealth.endEjection}); `count` is
   * the ejection's count, which set its length. The run of failed requests
   * starts over, so a returning node needs a fresh run to go out again.
   *
   * @returns true when the node was healthy before.
   */
  eject(reason: unknown, until: number, count: number): boolean {
    this.#lastError = reason;
    this.#ejected = true;
    this.#ejectedUntil = until;
    this.#ejectionCount = count;
    this.#requestFailuresInRow = 0;
    return this.#settle();
  }

  /**
   * Ends the ejection. The node is back in rotation unless health checks
   * hold it down (`unhealthyThreshold` failed in a row meanwhile, or
   * `markUnhealthy`); then it needs `healthyThreshold` passed checks.
   *
   * @returns true when the node is healthy again.
   */
  endEjection(): boolean {
    if (!this.#ejected) return false;
    this.#ejected = false;
    return this.#settle();
  }

  /**
   * Takes the node out at once, whatever the counters say, for example after
   * it announced a shutdown. It then needs `healthyThreshold` consecutive
   * successes to come back (and the end of its ejection, if ejected).
   *
   * @returns true when the node was healthy before.
   */
  markUnhealthy(reason?: unknown): boolean {
    if (reason !== undefined) this.#lastError = reason;
    this.#consecutiveSuccesses = 0;
    this.#down = true;
    return this.#settle();
  }

  /**
   * Puts the node back at once, for example on an operator's command,
   * ending an ejection too. It then needs `unhealthyThreshold` fresh
   * consecutive failed checks (or a fresh run of failed requests) to go
   * out.
   *
   * @returns true when the node was unhealthy before.
   */
  markHealthy(): boolean {
    this.#consecutiveFailures = 0;
    this.#requestFailuresInRow = 0;
    this.#down = false;
    this.#ejected = false;
    return this.#settle();
  }

  /** A plain copy of the current state. */
  toJSON(): NodeHealthSnapshot {
    return {
      address: this.address,
      isHealthy: this.#healthy,
      lastCheck: this.#lastCheck,
      consecutiveFailures: this.consecutiveFailures,
      consecutiveRequestFailures: this.#requestFailuresInRow,
      consecutiveSuccesses: this.#consecutiveSuccesses,
      latencyMs: this.#latencyMs,
      totalFailures: this.#totalFailures,
      totalSuccesses: this.#totalSuccesses,
      lastError: this.#lastError,
      ejected: this.#ejected,
      ejectedUntil: this.#ejectedUntil,
      ejectionCount: this.#ejectionCount,
    };
  }

  /** Derives the state from its two holds; true when it changed. */
  #settle(): boolean {
    const healthy = !this.#down && !this.#ejected;
    if (healthy === this.#healthy) return false;
    this.#healthy = healthy;
    return true;
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
 * the node, pool waits, client-side errors, a connection lost because
 * the client ended it (a `ConnectionLostError` caused by the
 * `ClientClosedError` of a `disconnect()` that cancelled its requests), or
 * anything that is not a {@linkcode NodewireError} (most likely a bug in
 * the caller's code).
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
  const known = nodewireErrorOf(error, "isNodeFailure");
  return known !== undefined && isNodesFault(known);
}

/** {@linkcode isNodeFailure}'s rule, for an error known to be the SDK's. */
export function isNodesFault(error: NodewireError): boolean {
  const code = error.code;
  if (code === "REMOTE_ERROR") {
    const remote = (error as { remoteCode?: unknown }).remoteCode;
    return remote === RemoteErrorCode.Overloaded ||
      remote === RemoteErrorCode.Unavailable;
  }
  // A connection the client itself ended (a disconnect() cancelling what
  // was still in flight) was lost through no fault of the node's.
  if (code === "CONNECTION_LOST") {
    return !(error.cause instanceof NodewireError &&
      error.cause.code === "CLIENT_CLOSED");
  }
  return code !== "REQUEST_TIMEOUT" && !NOT_THE_NODES_FAULT.has(code);
}
