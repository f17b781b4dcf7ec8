/**
 * The ConnectionManager: one pool per node, a health record per node, the
 * background health loop, and the choice of node for each request.
 *
 * @module
 */

import { type Balancer, createBalancer, HealthyNodeSet } from "./balancer.ts";
import type { Clock, TimerHandle } from "../clock.ts";
import { runWithConcurrency } from "./concurrency.ts";
import type { HostAddress, ResolvedConfig } from "../config/shapes.ts";
import {
  Connection,
  type ConnectionOptions,
} from "../connection/connection.ts";
import {
  AuthenticationError,
  ConnectFailedError,
  ConnectionLostError,
  NegotiationError,
  NodeUnhealthyError,
  NoHealthyNodesError,
  TlsError,
} from "../errors.ts";
import {
  handshakeFromConfig,
  handshakeResult,
} from "../handshake/handshake.ts";
import { isNodeFailure, NodeHealth } from "./health.ts";
import {
  type ManagerEventMap,
  NodeHealthEvent,
  ProtocolSelectedEvent,
} from "./events.ts";
import { TypedEventTarget } from "../events.ts";
import { ConnectionPool } from "../pool/pool.ts";
import type { ProtocolType } from "../protocol/negotiation.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";
import { tlsTransport } from "../handshake/tls.ts";
import { udpTransport } from "../handshake/udp.ts";

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
  /** The protocol negotiated with the node, once a connection was made. */
  protocol: ProtocolType | undefined;
}

/**
 * A node's record. Its in-flight count lives in the manager's dense array
 * of loads; the accessor for it sits on the prototype, one function for
 * every node, so the request path's `node.inFlight++` stays a monomorphic,
 * inlined call (accessors made per node in an object literal are distinct
 * functions, and a call site that meets several cannot be inlined).
 */
class NodeRecord implements ManagedNode {
  readonly address: string;
  readonly pool: ConnectionPool<Connection>;
  nodeId: string | undefined = undefined;
  protocol: ProtocolType | undefined = undefined;
  readonly #loads: Int32Array;
  readonly #slot: number;

  constructor(
    readonly host: HostAddress,
    loads: Int32Array,
    slot: number,
    readonly health: NodeHealth,
    makePool: (node: NodeRecord) => ConnectionPool<Connection>,
  ) {
    this.address = host.address;
    this.#loads = loads;
    this.#slot = slot;
    this.pool = makePool(this);
  }

  get inFlight(): number {
    return this.#loads[this.#slot];
  }

  set inFlight(value: number) {
    this.#loads[this.#slot] = value;
  }
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
 * import { ConnectionManager, getAdapter, resolveConfig } from "@nodewire/client";
 * const manager = new ConnectionManager(resolveConfig({ hosts: ["127.0.0.1:7000"] }), await getAdapter());
 * await manager.connect();
 * console.log(await manager.healthCheckAllNodes());
 * await manager.close();
 * ```
 */
export class ConnectionManager extends TypedEventTarget<ManagerEventMap> {
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
    // Negotiation and authentication, unless the caller brings its own.
    const handshake = connectionOptions.handshake ??
      handshakeFromConfig(config, {
        udp: udpTransport({
          adapter,
          maxDatagramSize: config.maxDatagramSize,
        }),
        // Offered only when the adapter can do it (not the memory network).
        tls: adapter.supportsTls
          ? tlsTransport({ tls: config.tls, clock: config.clock })
          : undefined,
      });
    // Loads live in one dense array, by slot (the host's index), so that
    // choosing among thousands of nodes reads two numbers that stay in
    // cache rather than two node objects scattered over the heap.
    const loads = new Int32Array(config.hosts.length);
    const nodes = config.hosts.map((host, slot): ManagedNode => {
      const node: ManagedNode = new NodeRecord(
        host,
        loads,
        slot,
        new NodeHealth(host.address, config.healthConfig),
        (node) =>
          new ConnectionPool<Connection>({
            address: host.address,
            config: config.poolConfig,
            clock: config.clock,
            heartbeat: (connection) => heartbeat(connection, config),
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
                tls: config.tls.direct
                  ? {
                    serverName: config.tls.serverName ?? host.hostname,
                    ca: config.tls.ca,
                    dangerouslySkipVerify: config.tls.dangerouslySkipVerify,
                  }
                  : undefined,
                ...connectionOptions,
                handshake,
                signal,
              });
              node.nodeId = connection.nodeId;
              const protocol = handshakeResult(connection)?.protocol;
              if (protocol !== undefined && protocol !== node.protocol) {
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
              return connection;
            },
          }),
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
   */
  async connect(signal?: AbortSignal): Promise<void> {
    // Each open is bounded by its own connect timeout and its failure is
    // handed to the waiter; the wait only backs that up. With the same
    // deadline the wait would fire first and a node that never finishes
    // the handshake would be reported as a pool timeout.
    const timeoutMs = 2 * this.#config.timeoutMs;
    const results = await Promise.allSettled(
      this.nodes.map((node) => node.pool.acquireShared({ signal, timeoutMs })),
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
      // A check is a deliberate probe, paced by the health interval: it
      // tries to connect even while the pool backs off.
      const connection = node.pool.tryAcquireShared() ??
        await node.pool.acquireShared({ timeoutMs, ignoreBackoff: true });
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

/**
 * The idle heartbeat: a ping within the health timeout. A miss becomes the
 * error the pool destroys the connection with, naming the heartbeat.
 */
async function heartbeat(
  connection: Connection,
  config: ResolvedConfig,
): Promise<void> {
  const timeoutMs = config.healthConfig.timeoutMs;
  try {
    await connection.ping({ timeoutMs });
  } catch (error) {
    throw new ConnectionLostError(
      connection,
      `no answer to a heartbeat within ${timeoutMs} ms (${describe(error)})`,
      { cause: error },
    );
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
