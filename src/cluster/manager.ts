/**
 * The ConnectionManager: one pool per node, a health record per node, the
 * background health loop, and the choice of node for each request.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { ResolvedConfig } from "../config/shapes.ts";
import { MAX_TIMER_DELAY_MS } from "../config/validate.ts";
import type {
  Connection,
  ConnectionOptions,
} from "../connection/connection.ts";
import {
  AbortedError,
  AuthenticationError,
  ConnectFailedError,
  messageOf,
  NegotiationError,
  NodeUnhealthyError,
  NoHealthyNodesError,
  TlsError,
} from "../errors.ts";
import { TypedEventTarget } from "../events.ts";
import { handshakeResult } from "../handshake/handshake.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";
import { type Balancer, createBalancer, HealthyNodeSet } from "./balancer.ts";
import {
  createNodePool,
  handshakeFor,
  type NodePoolOptions,
} from "./connector.ts";
import {
  type ManagerEventMap,
  NodeHealthEvent,
  ProtocolSelectedEvent,
} from "./events.ts";
import { isNodeFailure, NodeHealth } from "./health.ts";
import { type HealthCheckResult, HealthLoop } from "./health_loop.ts";
import { type ManagedNode, NodeRecord } from "./node.ts";
import {
  channels,
  loadChannels,
  nextClientId,
} from "../diagnostics/channels.ts";
import { logNodeEvents } from "./log.ts";

/**
 * Owns a pool and a health record per node and decides where each request
 * goes: only to healthy nodes, spread by the configured balancer. When no
 * node is healthy it fails fast with {@linkcode NoHealthyNodesError}, or,
 * with `whenNoHealthyNodes: "tryAll"`, spreads over every node rather than
 * none.
 *
 * It dispatches `nodeHealthChanged` and `protocolSelected`, typed by name
 * (see {@linkcode ManagerEventMap}).
 *
 * @example
 * ```ts
 * import { ConnectionManager, resolveConfig } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const manager = new ConnectionManager(resolveConfig({ hosts: ["127.0.0.1:7000"] }), await getAdapter());
 * await manager.connect();
 * console.log(await manager.healthCheckAllNodes());
 * await manager.close();
 * ```
 */
export class ConnectionManager extends TypedEventTarget<ManagerEventMap> {
  /** Every node, in the order of the configured hosts. */
  readonly nodes: readonly ManagedNode[];
  /**
   * A number unique within the process, naming this manager's client in
   * diagnostics messages (their `clientId`).
   */
  readonly id: number = nextClientId();

  readonly #config: ResolvedConfig;
  readonly #clock: Clock;
  readonly #byAddress = new Map<string, ManagedNode>();
  readonly #healthy: HealthyNodeSet<ManagedNode>;
  readonly #balancer: Balancer<ManagedNode>;
  readonly #healthLoop: HealthLoop;
  #anyIndex = 0;
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
    // Negotiation and authentication, unless the caller brings its own.
    const handshake = connectionOptions.handshake ??
      handshakeFor(config, adapter);
    const poolOptions: NodePoolOptions = {
      clientId: this.id,
      config,
      adapter,
      connectionOptions,
      handshake,
      onOpened: (node, connection) => this.#learn(node, connection),
    };
    // Loads live in one dense array, by slot (the host's index), so that
    // choosing among thousands of nodes reads two numbers that stay in
    // cache rather than two node objects scattered over the heap.
    const loads = new Int32Array(config.hosts.length);
    const nodes = config.hosts.map((host, slot): ManagedNode => {
      const node = new NodeRecord(
        host,
        loads,
        slot,
        new NodeHealth(host.address, config.healthConfig),
        (node) => createNodePool(node, poolOptions),
      );
      this.#byAddress.set(node.address, node);
      return node;
    });
    this.nodes = nodes;
    const slots = new Map(nodes.map((node, slot) => [node, slot]));
    this.#healthy = new HealthyNodeSet(nodes, {
      slotOf: (node) => slots.get(node)!,
    });
    this.#balancer = createBalancer(config.loadBalancing, this.#healthy, {
      inFlight: (node) => node.inFlight,
      loads,
    });
    this.#healthLoop = new HealthLoop(
      {
        nodes,
        isClosed: () => this.#closed,
        onHealthChanged: (node, reason) => this.#onHealthChanged(node, reason),
      },
      config.healthConfig,
      config.clock,
    );
    if (config.logger) logNodeEvents(config.logger, nodes, this);
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
   * @throws {AuthenticationError}, {@linkcode NegotiationError} or a
   *   certificate {@linkcode TlsError} itself when every node failed that
   *   way: never retried.
   * @throws {AbortedError} when `signal` aborts first, carrying its reason.
   */
  async connect(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw connectAborted(signal);
    // Subscribers hear about the first connections too.
    await loadChannels();
    if (signal?.aborted) throw connectAborted(signal);
    // Each open is bounded by its own connect timeout and its failure is
    // handed to the waiter; the wait only backs that up. With the same
    // deadline the wait would fire first and a node that never finishes
    // the handshake would be reported as a pool timeout.
    const timeoutMs = Math.min(2 * this.#config.timeoutMs, MAX_TIMER_DELAY_MS);
    const results = await Promise.allSettled(
      this.nodes.map((node) => node.pool.acquireShared({ signal, timeoutMs })),
    );
    // The caller gave up: say that, whatever each node's wait failed with.
    if (signal?.aborted) throw connectAborted(signal);
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
      // Wrong credentials or a policy no node meets: say so plainly rather
      // than as a retryable "could not connect".
      const fatal = failures.every((f) =>
        f.error instanceof AuthenticationError ||
        f.error instanceof NegotiationError ||
        (f.error instanceof TlsError && !f.error.retryable)
      );
      if (fatal) throw failures[0].error;
      throw new ConnectFailedError(failures);
    }
    for (const node of this.nodes) {
      if (node.health.isHealthy) node.pool.start();
    }
    this.#healthLoop.schedule();
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
      this.#onHealthChanged(node, `request failed: ${messageOf(error)}`);
    }
  }

  /**
   * Pings every node at once (at most `healthConfig.maxConcurrentChecks`
   * at a time), each within `healthConfig.timeoutMs`, updates their health
   * and returns the results in host order. Concurrent calls share one sweep.
   */
  healthCheckAllNodes(): Promise<HealthCheckResult[]> {
    return this.#healthLoop.sweep();
  }

  /** Stops the health loop; requests still work. */
  stopHealthLoop(): void {
    this.#healthLoop.stop();
  }

  /** A request to `node` succeeded: its run of failures, if any, ends. */
  recordRequestSuccess(node: ManagedNode): void {
    if (node.health.consecutiveFailures > 0 && node.health.isHealthy) {
      node.health.recordSuccess(NaN, this.#clock.now());
    }
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
    await this.#healthLoop.settled();
  }

  /** What a new connection taught about its node: its id and protocol. */
  #learn(node: ManagedNode, connection: Connection): void {
    node.nodeId = connection.nodeId;
    const protocol = handshakeResult(connection)?.protocol;
    if (protocol === undefined || protocol === node.protocol) return;
    const previous = node.protocol;
    node.protocol = protocol;
    this.dispatchEvent(
      new ProtocolSelectedEvent({
        address: node.address,
        nodeId: node.nodeId,
        protocol,
        previous,
      }, this.#clock.now()),
    );
  }

  #onHealthChanged(node: ManagedNode, reason: string): void {
    const healthy = node.health.isHealthy;
    if (healthy) {
      this.#healthy.add(node);
      if (!this.#closed) node.pool.start();
    } else {
      this.#healthy.delete(node);
      node.pool.clear(new NodeUnhealthyError(node.address, reason));
    }
    this.dispatchEvent(
      new NodeHealthEvent({
        address: node.address,
        nodeId: node.nodeId,
        healthy,
        reason,
      }, this.#clock.now()),
    );
    if (channels.nodeHealth.hasSubscribers) {
      channels.nodeHealth.publish({
        clientId: this.id,
        address: node.address,
        nodeId: node.nodeId,
        healthy,
        reason,
      });
    }
  }
}

function connectAborted(signal: AbortSignal): AbortedError {
  return new AbortedError("the connect was aborted", signal.reason);
}
