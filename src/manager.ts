/**
 * The ConnectionManager: one pool per node, a health record per node, the
 * background health loop, and the choice of node for each request.
 *
 * @module
 */

import { type Balancer, createBalancer, HealthyNodeSet } from "./balancer.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { runWithConcurrency } from "./concurrency.ts";
import type { HostAddress, ResolvedConfig } from "./config.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import {
  NodewireError,
  type NodewireErrorOptions,
  NoHealthyNodesError,
} from "./errors.ts";
import { isNodeFailure, NodeHealth } from "./health.ts";
import { ConnectionPool } from "./pool.ts";
import type { RuntimeAdapter } from "./runtime/types.ts";

/** One node as the manager sees it. */
export interface ManagedNode {
  /** `host:port`, the node's key. */
  readonly address: string;
  /** Host and port. */
  readonly host: HostAddress;
  /** The node's pool. */
  readonly pool: ConnectionPool<Connection>;
  /** The node's health record. */
  readonly health: NodeHealth;
  /** Requests in flight to this node through the client. */
  inFlight: number;
  /** The id the node gave in HELLO_OK, once a connection was made. */
  nodeId: string | undefined;
}

/** The outcome of one node's health check. */
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

/** Detail of a `nodeHealthChanged` event. */
export interface NodeHealthChange {
  /** `host:port` of the node. */
  address: string;
  /** The node's id, when known. */
  nodeId: string | undefined;
  /** The new state. */
  healthy: boolean;
  /** What caused the change. */
  reason: string;
}

/**
 * Event dispatched by {@linkcode ConnectionManager} when a node turns
 * healthy or unhealthy.
 *
 * @example
 * ```ts
 * import type { NodeHealthEvent } from "@nodewire/client";
 * const onChange = (e: NodeHealthEvent) => console.log(e.detail.address, e.detail.healthy);
 * ```
 */
export class NodeHealthEvent extends Event {
  /** What changed. */
  readonly detail: NodeHealthChange;

  /** Creates the event. */
  constructor(detail: NodeHealthChange) {
    super("nodeHealthChanged");
    this.detail = detail;
  }
}

/**
 * No node could be reached when the client connected. Lists every host and
 * why it failed.
 *
 * @example
 * ```ts
 * import { ConnectFailedError } from "@nodewire/client";
 * const e = new ConnectFailedError([{ address: "127.0.0.1:1", error: new Error("refused") }]);
 * console.log(e.message); // could not connect to any node: 127.0.0.1:1 (refused)
 * ```
 */
export class ConnectFailedError extends NodewireError {
  /** Each host and the error it failed with. */
  readonly failures: readonly { address: string; error: Error }[];

  /** Creates the error from the failure of every host. */
  constructor(
    failures: readonly { address: string; error: Error }[],
    options: NodewireErrorOptions = {},
  ) {
    super(
      "CONNECT_FAILED",
      "could not connect to any node: " +
        failures.map((f) => `${f.address} (${f.error.message})`).join(", "),
      { retryable: true, cause: failures[0]?.error, ...options },
    );
    this.failures = failures;
  }
}

/**
 * Owns a pool and a health record per node and decides where each request
 * goes: only to healthy nodes, spread by the configured balancer. When no
 * node is healthy it fails fast with {@linkcode NoHealthyNodesError}, or,
 * with `whenNoHealthyNodes: "tryAll"`, spreads over every node rather than
 * none.
 *
 * @example
 * ```ts
 * import { ConnectionManager, getAdapter, resolveConfig } from "@nodewire/client";
 * const manager = new ConnectionManager(resolveConfig({ hosts: ["127.0.0.1:7000"] }), await getAdapter());
 * await manager.connect();
 * console.log(await manager.healthCheckAllNodes());
 * await manager.close();
 * ```
 */
export class ConnectionManager extends EventTarget {
  /** Every node, in the order of the configured hosts. */
  readonly nodes: readonly ManagedNode[];

  readonly #config: ResolvedConfig;
  readonly #clock: Clock;
  readonly #byAddress = new Map<string, ManagedNode>();
  readonly #healthy: HealthyNodeSet<ManagedNode>;
  readonly #balancer: Balancer<ManagedNode>;
  #anyIndex = 0;
  #healthTimer: TimerHandle | undefined;
  #sweep: Promise<HealthCheckResult[]> | undefined;
  #closed = false;

  /**
   * Creates the pools (not yet connected). `connectionOptions` adds to what
   * each connection is opened with (the handshake hook, for example).
   */
  constructor(
    config: ResolvedConfig,
    adapter: RuntimeAdapter,
    connectionOptions: Partial<ConnectionOptions> = {},
  ) {
    super();
    this.#config = config;
    this.#clock = config.clock;
    const nodes = config.hosts.map((host): ManagedNode => {
      const node: ManagedNode = {
        address: host.address,
        host,
        inFlight: 0,
        nodeId: undefined,
        health: new NodeHealth(host.address, config.healthConfig),
        pool: new ConnectionPool<Connection>({
          address: host.address,
          config: config.poolConfig,
          clock: config.clock,
          factory: async (signal) => {
            const connection = await Connection.connect({
              adapter,
              hostname: host.hostname,
              port: host.port,
              timeoutMs: config.timeoutMs,
              requestTimeoutMs: config.requestTimeoutMs,
              maxFrameSize: config.maxFrameSize,
              clock: config.clock,
              clientName: config.clientName,
              ...connectionOptions,
              signal,
            });
            node.nodeId = connection.nodeId;
            return connection;
          },
        }),
      };
      this.#byAddress.set(node.address, node);
      return node;
    });
    this.nodes = nodes;
    this.#healthy = new HealthyNodeSet(nodes);
    this.#balancer = createBalancer(config.loadBalancing, this.#healthy, {
      inFlight: (node) => node.inFlight,
    });
  }

  /** The node for `address` (`host:port`), if configured. */
  node(address: string): ManagedNode | undefined {
    return this.#byAddress.get(address);
  }

  /** How many nodes are healthy now. */
  get healthyCount(): number {
    return this.#healthy.size;
  }

  /**
   * Opens a first connection to every node at once and starts the pools and
   * the health loop. Resolves when at least one node answered; nodes that
   * did not are marked unhealthy until a health check finds them.
   *
   * @throws {ConnectFailedError} naming every host and why, when none answered.
   */
  async connect(signal?: AbortSignal): Promise<void> {
    const results = await Promise.allSettled(
      this.nodes.map((node) =>
        node.pool.acquireShared({ signal, timeoutMs: this.#config.timeoutMs })
      ),
    );
    const failures: { address: string; error: Error }[] = [];
    results.forEach((result, i) => {
      const node = this.nodes[i];
      if (result.status === "fulfilled") return;
      const error = result.reason instanceof Error
        ? result.reason
        : new Error(String(result.reason));
      failures.push({ address: node.address, error });
      this.markNodeUnhealthy(node.address, `connect failed: ${error.message}`);
    });
    if (failures.length === this.nodes.length) {
      throw new ConnectFailedError(failures);
    }
    for (const node of this.nodes) {
      if (node.health.isHealthy) node.pool.start();
    }
    this.#scheduleHealthLoop();
  }

  /**
   * Picks the node for the next request: a healthy one, spread by the
   * balancer, preferring one other than `exclude` (the node a retry just
   * failed on).
   *
   * @throws {NoHealthyNodesError} when no node is healthy and the policy is `"fail"`.
   */
  pickNode(exclude?: ManagedNode): ManagedNode {
    const node = this.#balancer.pick(exclude);
    if (node !== undefined) return node;
    if (this.#config.whenNoHealthyNodes === "tryAll") {
      // Better to try a node that may have recovered than to try none.
      const all = this.nodes;
      let pick = all[this.#anyIndex++ % all.length];
      if (pick === exclude && all.length > 1) {
        pick = all[this.#anyIndex++ % all.length];
      }
      return pick;
    }
    throw new NoHealthyNodesError(this.nodes.map((n) => n.address));
  }

  /**
   * Feeds the outcome of a real request into the node's health: failures
   * that point at the node count like failed pings.
   */
  recordRequestFailure(node: ManagedNode, error: unknown): void {
    if (!isNodeFailure(error)) return;
    if (node.health.recordFailure(error, this.#clock.now())) {
      this.#onHealthChanged(node, `request failed: ${describe(error)}`);
    }
  }

  /** A request to `node` succeeded: its run of failures, if any, ends. */
  recordRequestSuccess(node: ManagedNode): void {
    if (node.health.consecutiveFailures > 0 && node.health.isHealthy) {
      node.health.recordSuccess(NaN, this.#clock.now());
    }
  }

  /**
   * Pings every node at once (at most `healthConfig.maxConcurrentChecks`
   * at a time), each within `healthConfig.timeoutMs`, updates their health
   * and returns the results in host order. Concurrent calls share one sweep.
   */
  healthCheckAllNodes(): Promise<HealthCheckResult[]> {
    if (this.#sweep) return this.#sweep;
    const sweep = this.#runSweep().finally(() => {
      if (this.#sweep === sweep) this.#sweep = undefined;
    });
    this.#sweep = sweep;
    return sweep;
  }

  /**
   * Takes a node out of rotation: requests stop going to it and its pool is
   * cleared (idle connections closed, waiters failed with a retryable error).
   * It comes back after `healthyThreshold` successful health checks, or
   * through {@linkcode ConnectionManager.markNodeHealthy}.
   *
   * @returns false when `address` is unknown or the node was already unhealthy.
   */
  markNodeUnhealthy(address: string, reason = "marked unhealthy"): boolean {
    const node = this.#byAddress.get(address);
    if (node === undefined || !node.health.markUnhealthy(reason)) return false;
    this.#onHealthChanged(node, reason);
    return true;
  }

  /**
   * Puts a node back in rotation at once.
   *
   * @returns false when `address` is unknown or the node was already healthy.
   */
  markNodeHealthy(address: string, reason = "marked healthy"): boolean {
    const node = this.#byAddress.get(address);
    if (node === undefined || !node.health.markHealthy()) return false;
    this.#onHealthChanged(node, reason);
    return true;
  }

  /** Stops the health loop; requests still work. */
  stopHealthLoop(): void {
    if (this.#healthTimer !== undefined) {
      this.#clock.clearTimeout(this.#healthTimer);
    }
    this.#healthTimer = undefined;
  }

  /** Closes every connection at once, failing what is in flight. */
  destroyConnections(error: Error): void {
    for (const node of this.nodes) {
      for (const connection of node.pool.connections()) {
        connection.destroy(error);
      }
    }
  }

  /**
   * Stops the health loop and closes every pool: waiters fail, connections
   * close gracefully. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.stopHealthLoop();
    await Promise.all(this.nodes.map((node) => node.pool.close()));
    await this.#sweep?.catch(() => {});
  }

  #onHealthChanged(node: ManagedNode, reason: string): void {
    const healthy = node.health.isHealthy;
    if (healthy) {
      this.#healthy.add(node);
      if (!this.#closed) node.pool.start();
    } else {
      this.#healthy.delete(node);
      node.pool.clear(new NodewireError("NODE_UNHEALTHY", reason));
    }
    this.dispatchEvent(
      new NodeHealthEvent({
        address: node.address,
        nodeId: node.nodeId,
        healthy,
        reason,
      }),
    );
  }

  async #runSweep(): Promise<HealthCheckResult[]> {
    const { timeoutMs, maxConcurrentChecks } = this.#config.healthConfig;
    const settled = await runWithConcurrency(
      this.nodes,
      maxConcurrentChecks,
      (node) => this.#check(node, timeoutMs),
    );
    return settled.map((s, i) =>
      s.status === "fulfilled" ? s.value : this.#result(
        this.nodes[i],
        undefined,
        s.reason instanceof Error ? s.reason : new Error(String(s.reason)),
      )
    );
  }

  async #check(
    node: ManagedNode,
    timeoutMs: number,
  ): Promise<HealthCheckResult> {
    if (this.#closed) {
      return this.#result(node, undefined, new Error("the manager is closed"));
    }
    const start = this.#clock.now();
    try {
      const connection = node.pool.tryAcquireShared() ??
        await node.pool.acquireShared({ timeoutMs });
      const left = Math.max(1, timeoutMs - (this.#clock.now() - start));
      const latency = await connection.ping({ timeoutMs: left });
      if (
        !this.#closed && node.health.recordSuccess(latency, this.#clock.now())
      ) {
        this.#onHealthChanged(
          node,
          `${node.health.consecutiveSuccesses} health checks passed`,
        );
      }
      return this.#result(node, latency, undefined);
    } catch (caught) {
      const error = caught instanceof Error
        ? caught
        : new Error(String(caught));
      if (
        !this.#closed && node.health.recordFailure(error, this.#clock.now())
      ) {
        this.#onHealthChanged(
          node,
          `${node.health.consecutiveFailures} health checks failed: ${error.message}`,
        );
      }
      return this.#result(node, undefined, error);
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

  #scheduleHealthLoop(): void {
    const interval = this.#config.healthConfig.intervalMs;
    if (interval <= 0 || this.#closed) return;
    // The next sweep is scheduled after this one ends, so slow checks never
    // pile up; the clock's timers never keep the process alive.
    this.#healthTimer = this.#clock.setTimeout(() => {
      this.#healthTimer = undefined;
      this.healthCheckAllNodes().then(
        () => this.#scheduleHealthLoop(),
        () => this.#scheduleHealthLoop(),
      );
    }, interval);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
