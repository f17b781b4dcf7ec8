/**
 * Outlier ejection, after Envoy's outlier detection: what requests see
 * takes a node out of rotation for a while. Two triggers: a run of
 * `consecutiveFailures` node failures (checked on the failure path, as it
 * happens), and a success rate well below the other nodes' over an
 * `intervalMs` window (checked when the window closes). An ejection is the
 * node's health going unhealthy with a reason that starts with "ejected",
 * through the manager's one health-change path, so the balancers, the
 * pools and the `nodeHealthChanged` events see it like any other.
 *
 * Nothing here reads the clock or sets a timer per request: successes are
 * plain increments on the node's health record, the clock is read on the
 * failure path only, and the window's timer runs only while failures come
 * in (it starts with the first failure after a quiet spell).
 *
 * @module
 */

import type { Clock, TimerHandle } from "../clock.ts";
import type { OutlierEjectionConfig } from "../config/shapes.ts";
import {
  clearTimer,
  type OnceTimer,
  onceTimer,
  setTimer,
} from "../config/clock_failure.ts";
import { type ConfigError, messageOf, RemoteError } from "../errors.ts";
import { isNodeFailure } from "./health.ts";
import type { ManagedNode } from "./node.ts";

/**
 * An ejection lasts up to this share less than its full time, drawn at
 * random, so that many clients that ejected a node at the same moment do
 * not all send it their traffic again at the same moment. Taken off rather
 * than added, so that `maxEjectionTimeMs` is a true bound.
 */
export const EJECTION_JITTER = 0.1;

/** What the ejector needs from the manager that owns the nodes. */
export interface EjectionOwner {
  /** Every node now (the membership may change), in host order. */
  nodes(): readonly ManagedNode[];
  /** How many nodes are in rotation now. */
  healthyCount(): number;
  /** Whether the owner is closing: nothing is ejected or scheduled then. */
  isClosed(): boolean;
  /** `node`'s health changed (ejected, or back); `reason` says why. */
  onHealthChanged(node: ManagedNode, reason: string): void;
}

/** A request count of one node over a window, for {@linkcode successRateOutliers}. */
export interface RequestCounts {
  /** Requests answered. */
  successes: number;
  /** Requests that failed through the node's fault. */
  failures: number;
}

/** A node whose success rate is well below its peers'. */
export interface SuccessRateOutlier {
  /** Its position in the counts given. */
  index: number;
  /** Its success rate over the window, 0–1. */
  rate: number;
  /** Its requests over the window. */
  requests: number;
  /** The mean success rate of its peers (the other nodes compared). */
  peerMean: number;
  /** Their standard deviation. */
  peerStdev: number;
}

/**
 * The success-rate outliers among `counts`, worst first. Only nodes with
 * at least `successRateMinRequests` requests are compared, and only when
 * there are `successRateMinNodes` of them (0: never). A node is an outlier
 * when its rate is below its peers' mean by more than both
 * `successRateStdevFactor` of their standard deviations and
 * `successRateMinGap`.
 *
 * The peers are the other nodes compared, not all of them: with the node
 * in its own baseline, one bad node among n can never be more than
 * (n - 1) / √n deviations below the mean, so below six nodes Envoy's 1.9
 * could never single it out. The gap is there because peers that all
 * succeed have no spread at all.
 */
export function successRateOutliers(
  counts: readonly RequestCounts[],
  config: Pick<
    OutlierEjectionConfig,
    | "successRateMinNodes"
    | "successRateMinRequests"
    | "successRateStdevFactor"
    | "successRateMinGap"
  >,
): SuccessRateOutlier[] {
  const minNodes = config.successRateMinNodes;
  if (minNodes < 2) return [];
  const rates: number[] = [];
  const indexes: number[] = [];
  let sum = 0;
  let squares = 0;
  counts.forEach((c, index) => {
    const requests = c.successes + c.failures;
    if (requests < config.successRateMinRequests) return;
    const rate = c.successes / requests;
    rates.push(rate);
    indexes.push(index);
    sum += rate;
    squares += rate * rate;
  });
  const n = rates.length;
  if (n < minNodes) return [];
  const outliers: SuccessRateOutlier[] = [];
  for (let i = 0; i < n; i++) {
    const rate = rates[i];
    // The peers' mean and (population) deviation, from the totals less
    // this node: O(1) per node.
    const peerMean = (sum - rate) / (n - 1);
    const variance = (squares - rate * rate) / (n - 1) - peerMean * peerMean;
    const peerStdev = Math.sqrt(Math.max(0, variance));
    const margin = Math.max(
      config.successRateStdevFactor * peerStdev,
      config.successRateMinGap,
    );
    if (rate < peerMean - margin) {
      const c = counts[indexes[i]];
      outliers.push({
        index: indexes[i],
        rate,
        requests: c.successes + c.failures,
        peerMean,
        peerStdev,
      });
    }
  }
  return outliers.sort((a, b) => a.rate - b.rate);
}

/**
 * The ejection count a node's next ejection gets: one more than its last,
 * less one for every `intervalMs` it has spent back since that one ended,
 * so a node that behaves is soon forgiven and one that fails on its return
 * stays out longer each time.
 */
export function nextEjectionCount(
  lastCount: number,
  lastEnded: number | undefined,
  now: number,
  intervalMs: number,
): number {
  if (lastEnded === undefined || lastCount === 0) return 1;
  const forgiven = Math.floor(Math.max(0, now - lastEnded) / intervalMs);
  return Math.max(0, lastCount - forgiven) + 1;
}

/**
 * How long an ejection with `count` lasts: the base time × `count`, at
 * most the maximum, less up to {@linkcode EJECTION_JITTER} of it.
 */
export function ejectionTime(
  count: number,
  config: Pick<
    OutlierEjectionConfig,
    "baseEjectionTimeMs" | "maxEjectionTimeMs"
  >,
  random: () => number,
): number {
  const full = Math.min(
    config.baseEjectionTimeMs * count,
    config.maxEjectionTimeMs,
  );
  const r = Math.min(Math.max(random(), 0), 1);
  return full - full * EJECTION_JITTER * r;
}

/**
 * Books a failed request on `node`. A node failure ({@linkcode isNodeFailure})
 * counts toward its outlier ejection (with ejection off, only on its health
 * record); an ordinary answer from the node (a `RemoteError` such as
 * NotFound) shows that it works, like a reply; anything else (the caller's
 * timeouts and aborts, pool waits) says nothing about the node.
 */
export function recordFailedRequest(
  ejector: OutlierEjector | undefined,
  node: ManagedNode,
  error: unknown,
): void {
  if (isNodeFailure(error)) {
    if (ejector !== undefined) ejector.recordFailure(node, error);
    else node.health.recordRequestFailure(error);
  } else if (error instanceof RemoteError) {
    node.health.recordRequestSuccess();
  }
}

/**
 * Decides ejections for a manager's nodes and ends them when their time is
 * over. The manager calls {@linkcode OutlierEjector.recordFailure} for each
 * node failure of a request and {@linkcode OutlierEjector.stop} on close.
 */
export class OutlierEjector {
  readonly #owner: EjectionOwner;
  readonly #config: OutlierEjectionConfig;
  readonly #clock: Clock;
  readonly #random: () => number;
  /** The ejected nodes and the timers that end their ejections. */
  readonly #ejected = new Map<ManagedNode, OnceTimer>();
  /** Closes the success-rate window; undefined while no failure came in. */
  #window: TimerHandle | undefined;

  constructor(
    owner: EjectionOwner,
    config: OutlierEjectionConfig,
    clock: Clock,
    random: () => number = Math.random,
  ) {
    this.#owner = owner;
    this.#config = config;
    this.#clock = clock;
    this.#random = random;
  }

  /** How many nodes are ejected now. */
  get ejectedCount(): number {
    return this.#ejected.size;
  }

  /**
   * A request to `node` failed through the node's fault: books it, and
   * ejects the node when that makes a run of `consecutiveFailures`.
   */
  recordFailure(node: ManagedNode, error: unknown): void {
    // The first failure after a quiet spell opens a window: the counts
    // start from here, not from whenever the last window closed.
    // (Only where success rates can be compared: enough nodes, not off.)
    const minNodes = this.#config.successRateMinNodes;
    let unarmed: ConfigError | undefined;
    if (
      this.#window === undefined && minNodes >= 2 &&
      this.#owner.nodes().length >= minNodes && !this.#owner.isClosed()
    ) {
      unarmed = this.#openWindow();
    }
    const health = node.health;
    health.recordRequestFailure(error);
    const threshold = this.#config.consecutiveFailures;
    const run = health.consecutiveRequestFailures;
    if (threshold > 0 && run >= threshold && health.isHealthy) {
      const failed = this.#eject(
        node,
        `${run} requests in a row failed, the last with: ${messageOf(error)}`,
      );
      unarmed ??= failed;
    }
    // The failure is booked whatever the clock did; the request that
    // booked it ends with the clock's failure (bookFailure), as with a
    // clock whose now() throws there.
    if (unarmed !== undefined) throw unarmed;
  }

  /**
   * `node` was put back by hand (`markNodeHealthy`), or removed: its
   * ejection timer is no longer needed.
   */
  forget(node: ManagedNode): void {
    const timer = this.#ejected.get(node);
    if (timer === undefined) return;
    this.#ejected.delete(node);
    // A custom clock whose clearTimeout() throws: the timer left armed
    // finds itself cancelled (onceTimer). Let out, the throw stopped
    // markNodeHealthy, and a node's removal, half way: the node healthy
    // again but not back in rotation.
    timer.cancel();
  }

  /** Clears every timer; called when the manager closes. */
  stop(): void {
    // As in forget: a throw stopped the manager's close here; the
    // window's timer left armed finds the manager closed.
    if (this.#window !== undefined) clearTimer(this.#clock, this.#window);
    this.#window = undefined;
    for (const timer of this.#ejected.values()) timer.cancel();
    this.#ejected.clear();
  }

  /**
   * Opens a success-rate window, or, when a custom clock's setTimeout()
   * throws, gives the ConfigError naming it and opens none: the next
   * failure tries again. Let out, the throw went out of the request's
   * booking before its failure was counted, or out of the window's own
   * timer (uncaught).
   */
  #openWindow(): ConfigError | undefined {
    let timer: TimerHandle;
    try {
      timer = setTimer(
        this.#clock,
        () => this.#closeWindow(),
        this.#config.intervalMs,
      );
    } catch (failed) {
      return failed as ConfigError;
    }
    for (const node of this.#owner.nodes()) node.health.resetRequestCounts();
    this.#window = timer;
    return undefined;
  }

  /** Compares the window's success rates, then opens the next one if failures still come in. */
  #closeWindow(): void {
    this.#window = undefined;
    if (this.#owner.isClosed()) return;
    const nodes = this.#owner.nodes();
    const counts = nodes.map((node) => ({
      successes: node.health.requestSuccesses,
      failures: node.health.requestFailures,
    }));
    // From this timer, a clock failure #eject or #openWindow gives back
    // has nobody to go to: an ejection it cannot time is not made (the
    // node stays in rotation), and a window it cannot open is opened by
    // the next failure.
    for (const outlier of successRateOutliers(counts, this.#config)) {
      const node = nodes[outlier.index];
      if (!node.health.isHealthy) continue;
      this.#eject(
        node,
        `success rate ${percent(outlier.rate)} over ${outlier.requests} ` +
          `requests, its peers' ${percent(outlier.peerMean)} ` +
          `(±${percent(outlier.peerStdev)})`,
      );
    }
    if (counts.some((c) => c.failures > 0)) this.#openWindow();
  }

  /**
   * Ejects `node` if the share and the last healthy node allow it. A
   * custom clock whose setTimeout() throws leaves it in rotation, and the
   * ConfigError naming the clock is given back: ejected with no timer to
   * end it, the node stayed out for good (nothing else ends an ejection).
   */
  #eject(node: ManagedNode, why: string): ConfigError | undefined {
    if (this.#owner.isClosed()) return;
    // At most the share at once (one always may be; the epsilon keeps
    // 0.29 × 100 from flooring to 28), and never the last node in
    // rotation: better a failing node than none.
    const share = this.#config.maxEjectedShare * this.#owner.nodes().length;
    if (this.#ejected.size >= Math.max(1, Math.floor(share + 1e-9))) return;
    if (this.#owner.healthyCount() <= 1) return;
    const health = node.health;
    const now = this.#clock.now();
    const count = nextEjectionCount(
      health.ejectionCount,
      health.ejectedUntil,
      now,
      this.#config.intervalMs,
    );
    const ms = ejectionTime(count, this.#config, this.#random);
    const reason = `ejected for ${
      Math.round(ms)
    } ms (ejection ${count}): ${why}`;
    // Armed first, so that a clock that cannot time the ejection leaves
    // the node as it was; cancelled when the node is forgotten.
    let timer: OnceTimer;
    try {
      timer = onceTimer(this.#clock, ms, () => this.#return(node, ms));
    } catch (failed) {
      return failed as ConfigError;
    }
    if (!health.eject(reason, now + ms, count)) {
      timer.cancel();
      return;
    }
    this.#ejected.set(node, timer);
    this.#owner.onHealthChanged(node, reason);
  }

  /** The ejection time is over: back in rotation, unless health checks hold the node down. */
  #return(node: ManagedNode, ms: number): void {
    this.#ejected.delete(node);
    if (this.#owner.isClosed()) return;
    if (node.health.endEjection()) {
      this.#owner.onHealthChanged(
        node,
        `ejection ended after ${Math.round(ms)} ms`,
      );
    }
  }
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}
