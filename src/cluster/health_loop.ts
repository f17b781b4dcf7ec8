/**
 * The health loop: a sweep pings every node (a bounded number at a time),
 * feeds the outcome into each node's health record, and the next sweep is
 * scheduled when this one ends. The manager owns the nodes and reacts to
 * health changes; this file owns the timer and the sweep in progress.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../clock.ts";
import type { HealthConfig } from "../config/shapes.ts";
import {
  blameClock,
  clearTimer,
  clockFailed,
  readClock,
  setTimer,
} from "../config/clock_failure.ts";
import { asError } from "../errors/base.ts";
import {
  ClientClosedError,
  ConfigError,
  NodewireError,
  PoolTimeoutError,
} from "../errors.ts";
import type { Connection } from "../connection/connection.ts";
import { runWithConcurrency } from "./concurrency.ts";
import type { ManagedNode } from "./node.ts";

/**
 * The outcome of one node's health check.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * for (const r of await client.healthCheckAllNodes()) {
 *   console.log(r.address, r.ok ? `${r.latencyMs} ms` : r.error?.message, r.healthy);
 * }
 * ```
 */
export interface HealthCheckResult {
  /** `host:port` of the node. */
  address: string;
  /** The node's id, when known. */
  nodeId: string | undefined;
  /** Whether the ping succeeded within the health timeout. */
  ok: boolean;
  /** Round trip of the ping, in ms, when it succeeded. */
  latencyMs: number | undefined;
  /** Why it failed, when it did. */
  error: Error | undefined;
  /** Whether the node counts as healthy after this check. */
  healthy: boolean;
}

/** What the health loop needs from the manager that owns the nodes. */
export interface HealthLoopOwner {
  /** Every node, in host order. */
  readonly nodes: readonly ManagedNode[];
  /** Whether the owner is closing: checks stop changing health then. */
  isClosed(): boolean;
  /** A check changed `node`'s health; `reason` says why. */
  onHealthChanged(node: ManagedNode, reason: string): void;
}

/**
 * Runs health sweeps on demand and, with a positive `intervalMs`, on a
 * timer. Concurrent sweeps share one run.
 */
export class HealthLoop {
  readonly #owner: HealthLoopOwner;
  readonly #config: HealthConfig;
  readonly #clock: Clock;
  #healthTimer: TimerHandle | undefined;
  #sweep: Promise<HealthCheckResult[]> | undefined;
  /** The nodes the sweep in progress checks. */
  #sweeping: readonly ManagedNode[] | undefined;
  /** Every sweep not yet ended (an older one may outlive its sharing). */
  readonly #running = new Set<Promise<unknown>>();
  /** Bumped by `stop()`: a timed sweep started before it schedules no next one. */
  #stops = 0;

  constructor(owner: HealthLoopOwner, config: HealthConfig, clock: Clock) {
    this.#owner = owner;
    this.#config = config;
    this.#clock = clock;
  }

  /**
   * Pings every node (at most `maxConcurrentChecks` at a time), each within
   * `timeoutMs`, and returns the results in host order. Calls made while a
   * sweep runs share it, unless a node joined or left since it started:
   * the caller then gets a sweep of the nodes as they are.
   */
  sweep(): Promise<HealthCheckResult[]> {
    const nodes = this.#owner.nodes;
    if (this.#sweep && this.#sweeping === nodes) return this.#sweep;
    this.#sweeping = nodes;
    let start!: (run: Promise<HealthCheckResult[]>) => void;
    const sweep = new Promise<HealthCheckResult[]>((resolve) => start = resolve)
      .finally(() => {
        this.#running.delete(sweep);
        if (this.#sweep === sweep) this.#sweep = undefined;
      });
    this.#sweep = sweep;
    this.#running.add(sweep);
    // Started once held: its checkouts dispatch events from inside this
    // call, and a listener that asks for a sweep must share this one.
    start(this.#runSweep(nodes));
    return sweep;
  }

  /**
   * Schedules the next sweep after `intervalMs`; nothing when it is 0.
   *
   * @throws {ConfigError} naming `clock` when its `setTimeout()` throws:
   * to the first connect, which fails with it (its pools closed, as on any
   * failure). From the end of a timed sweep it has nobody to go to, and
   * the loop stops there, as stop() would (a sweep by hand still runs).
   * Let out there, it was an unhandled rejection; from the connect, the
   * clock's raw Error.
   */
  schedule(): void {
    const interval = this.#config.intervalMs;
    // One loop however often it is asked for (connect() called twice):
    // a second timer would be lost to stop() and outlive close().
    if (
      interval <= 0 || this.#owner.isClosed() || this.#healthTimer !== undefined
    ) return;
    // The next sweep is scheduled after this one ends, so slow checks never
    // pile up; the clock's timers never keep the process alive.
    const armedAt = this.#stops;
    this.#healthTimer = setTimer(this.#clock, () => {
      // Stopped since it was armed: a timer the clock could not clear.
      if (this.#stops !== armedAt) return;
      this.#healthTimer = undefined;
      // A stop() while this sweep runs finds no timer to clear: without
      // this, the sweep's end armed the next one and the loop went on.
      const stops = this.#stops;
      const next = () => {
        if (this.#stops !== stops) return;
        try {
          this.schedule();
        } catch {
          // See above: the loop stops.
        }
      };
      this.sweep().then(next, next);
    }, interval);
  }

  /**
   * Cancels the next scheduled sweep; one in progress runs to its end and
   * schedules none after it.
   */
  stop(): void {
    this.#stops++;
    // A custom clock whose clearTimeout() throws: the timer left armed
    // finds the loop stopped (#stops). Let out, the throw stopped a
    // disconnect before it closed anything.
    if (this.#healthTimer !== undefined) {
      clearTimer(this.#clock, this.#healthTimer);
    }
    this.#healthTimer = undefined;
  }

  /** Resolves when every sweep in progress, if any, has ended. */
  async settled(): Promise<void> {
    await Promise.all(Array.from(this.#running, (s) => s.catch(() => {})));
  }

  async #runSweep(
    nodes: readonly ManagedNode[],
  ): Promise<HealthCheckResult[]> {
    const { timeoutMs, maxConcurrentChecks } = this.#config;
    const settled = await runWithConcurrency(
      nodes,
      maxConcurrentChecks,
      (node) => this.#check(node, timeoutMs),
    );
    // A check that threw is one whose clock read threw (a custom clock
    // whose now() throws once in use): its raw Error was the node's
    // result. Named, as a request names it; the node is not marked.
    return settled.map((s, i) =>
      s.status === "fulfilled" ? s.value : this.#result(
        nodes[i],
        undefined,
        asError(blameClock(this.#clock, s.reason)),
      )
    );
  }

  async #check(
    node: ManagedNode,
    timeoutMs: number,
  ): Promise<HealthCheckResult> {
    if (this.#owner.isClosed()) {
      // Typed, as addNode's and removeNode's refusals are: a caller tells
      // "closed" from a failed ping by its code.
      return this.#result(
        node,
        undefined,
        new ClientClosedError("the connection manager is closed"),
      );
    }
    const start = readClock(this.#clock);
    try {
      const connection = await this.#checkout(node, timeoutMs);
      const left = Math.max(1, timeoutMs - (readClock(this.#clock) - start));
      const latency = await connection.ping({ timeoutMs: left });
      if (
        !this.#owner.isClosed() &&
        node.health.recordSuccess(latency, readClock(this.#clock))
      ) {
        this.#owner.onHealthChanged(
          node,
          `${node.health.consecutiveSuccesses} health checks passed`,
        );
      }
      return this.#result(node, latency, undefined);
    } catch (caught) {
      // The clock's failures are named where it is read (readClock,
      // #checkout, Connection.ping): what else the ping fails with is the
      // node's, a custom connection's own Error too (it was taken for the
      // clock's, and not counted against the node), kept as it was thrown.
      const error = asError(caught);
      // No connection to ping because the application holds them all
      // (withConnection): that says nothing about the node.
      if (error instanceof PoolTimeoutError && allLent(node)) {
        return this.#result(node, undefined, error);
      }
      // Our own clock threw (here, or in the checkout or the ping, which
      // name it too): not the node's doing.
      if (error instanceof ConfigError && error.field === "clock") {
        return this.#result(node, undefined, error);
      }
      if (
        !this.#owner.isClosed() &&
        node.health.recordFailure(error, readClock(this.#clock))
      ) {
        this.#owner.onHealthChanged(
          node,
          `${node.health.consecutiveFailures} health checks failed: ${error.message}`,
        );
      }
      return this.#result(node, undefined, error);
    }
  }

  /**
   * A connection of `node` to ping. A check is a deliberate probe, paced
   * by the health interval: it tries to connect even while the pool backs
   * off.
   */
  async #checkout(node: ManagedNode, timeoutMs: number): Promise<Connection> {
    try {
      return node.pool.tryAcquireShared() ??
        await node.pool.acquireShared({ timeoutMs, ignoreBackoff: true });
    } catch (caught) {
      // The pool fails for the node with SDK errors only; what else comes
      // out is the clock's, which its checkout reads unguarded (it is the
      // request path's, where the request names the clock). Not
      // blameClock: a clock that throws only sometimes reads fine again.
      throw caught instanceof NodewireError
        ? caught
        : clockFailed(this.#clock, caught);
    }
  }

  #result(
    node: ManagedNode,
    latencyMs: number | undefined,
    error: Error | undefined,
  ): HealthCheckResult {
    return {
      address: node.address,
      nodeId: node.nodeId,
      ok: error === undefined,
      latencyMs,
      error,
      healthy: node.health.isHealthy,
    };
  }
}

/**
 * Whether every connection of `node`'s pool is lent for exclusive use,
 * with none being opened and the last opens not failing: a check that
 * found no connection then waited for the application, not the node.
 */
function allLent(node: ManagedNode): boolean {
  const { open, inUse, connecting, consecutiveFailures } = node.pool.stats();
  return open > 0 && inUse === open && connecting === 0 &&
    consecutiveFailures === 0;
}
