/**
 * The ConnectionManager: one pool per node, a health record per node, the
 * background health loop, and the choice of node for each request.
 *
 * @module
 */

import { checkMarkArguments, readManagerArguments } from "./manager_door.ts";
import type { Clock } from "../clock.ts";
import { sameNodeKey } from "../config/hosts.ts";
import type { HostAddress, ResolvedConfig } from "../config/shapes.ts";
import type {
  Connection,
  ConnectionOptions,
} from "../connection/connection.ts";
import {
  ClientClosedError,
  ConfigError,
  ConnectionLostError,
  NodeUnhealthyError,
  NoHealthyNodesError,
} from "../errors.ts";
import {
  type ListenerOptions,
  TypedEventTarget,
  type TypedListener,
} from "../events.ts";
import { readListenerArguments } from "../config/listeners.ts";
import { handshakeResult } from "../handshake/handshake.ts";
import type { ConnectionPool } from "../pool/pool.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";
import { type Balancer, createBalancer } from "./balancer.ts";
import { HealthyNodeSet } from "./healthy_set.ts";
import {
  createNodePool,
  handshakeFor,
  type NodePoolOptions,
} from "./connector.ts";
import { OutlierEjector, recordFailedRequest } from "./ejection.ts";
import {
  connectAdded,
  connectNodes,
  firstConnectWaitMs,
} from "./first_connect.ts";
import {
  MANAGER_EVENT_NAMES,
  type ManagerEventMap,
  NodeHealthEvent,
  NodeMembershipEvent,
  ProtocolSelectedEvent,
} from "./events.ts";
import { NodeHealth } from "./health.ts";
import { type HealthCheckResult, HealthLoop } from "./health_loop.ts";
import { parseNewHost, parseNodeAddress, SlotTable } from "./membership.ts";
import { type ManagedNode, NodeRecord } from "./node.ts";
import { nextClientId } from "../diagnostics/channels.ts";
import { healthChanged } from "./connection_diagnostics.ts";
import { logManagerEvents } from "./log.ts";
import { failureSample, PeakEwma } from "./peak_ewma.ts";

/**
 * Owns a pool and a health record per node and decides where each request
 * goes: only to healthy nodes, spread by the configured balancer. When no
 * node is healthy it fails fast with {@linkcode NoHealthyNodesError}, or,
 * with `whenNoHealthyNodes: "tryAll"`, spreads over every node rather than
 * none; with a `panicThreshold`, it does so as soon as fewer than that
 * share of the nodes are healthy. Health checks and outlier ejection (what
 * requests see) both take nodes out through the same health states.
 *
 * Nodes can be added and removed while it runs
 * ({@linkcode ConnectionManager.addNode}, {@linkcode ConnectionManager.removeNode}).
 *
 * It dispatches `nodeHealthChanged`, `protocolSelected`, `nodeAdded` and
 * `nodeRemoved`, typed by name (see {@linkcode ManagerEventMap}).
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
  /** Names this manager's client in diagnostics messages (`clientId`). */
  readonly id: number = nextClientId();
  readonly #config: ResolvedConfig;
  readonly #clock: Clock;
  // Replaced, never changed in place, when a node joins or leaves: a sweep
  // or a connect that is iterating keeps the list it started with.
  #nodes: readonly NodeRecord[] = [];
  readonly #byAddress = new Map<string, NodeRecord>();
  // The same nodes by sameNodeKey, so that no spelling adds one twice.
  readonly #byKey = new Map<string, NodeRecord>();
  // Removed nodes whose pools are still draining, with their sameNodeKey.
  // By node, not by key: a node removed, added again and removed again
  // has two of them draining at once, and a disconnect must end both.
  readonly #leaving = new Map<
    NodeRecord,
    { key: string; connections: Connection[]; gone: Promise<void> }
  >();
  readonly #slots: SlotTable;
  readonly #makePool: (node: NodeRecord) => ConnectionPool<Connection>;
  readonly #healthy: HealthyNodeSet<ManagedNode>;
  #balancer: Balancer<ManagedNode>;
  readonly #healthLoop: HealthLoop;
  /** Latency estimates by slot, kept only for `"peak-ewma"`. */
  readonly #latency: PeakEwma | undefined;
  /** Undefined when outlier ejection is off. */
  readonly #ejector: OutlierEjector | undefined;
  /** Panic below this many healthy nodes (0: never); follows membership. */
  #panicBelow: number;
  #anyIndex = 0;
  #closed = false;

  /**
   * Creates the pools (not yet connected). `connectionOptions` adds to what
   * each connection is opened with (the handshake hook, for example).
   *
   * @throws {InvalidArgumentError} for a config that is not resolved (see
   *   `resolveConfig`), an adapter without `connect`, or a connection
   *   option `Connection.connect` would refuse, before anything starts.
   */
  constructor(
    config: ResolvedConfig,
    adapter: RuntimeAdapter,
    connectionOptions: Partial<ConnectionOptions> = {},
  ) {
    super();
    connectionOptions = readManagerArguments(
      config,
      adapter,
      connectionOptions,
    );
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
    this.#makePool = (node) => createNodePool(node, poolOptions);
    // Loads live in one dense array, by slot (the host's index at first),
    // so that choosing among thousands of nodes reads two numbers that stay
    // in cache rather than two node objects scattered over the heap.
    this.#slots = new SlotTable(config.hosts.length);
    this.#latency = config.loadBalancing === "peak-ewma"
      ? new PeakEwma(this.#slots.loads.length)
      : undefined;
    const nodes = config.hosts.map((host) => this.#register(host, true));
    this.#nodes = nodes;
    this.#healthy = new HealthyNodeSet<ManagedNode>(nodes, {
      slotOf: (node) => (node as NodeRecord).slot,
    });
    this.#balancer = this.#makeBalancer();
    const current = () => this.#nodes;
    this.#healthLoop = new HealthLoop(
      {
        get nodes() {
          return current();
        },
        isClosed: () => this.#closed,
        onHealthChanged: (node, reason) => this.#onHealthChanged(node, reason),
      },
      config.healthConfig,
      config.clock,
    );
    this.#ejector = config.outlierEjection && new OutlierEjector(
      {
        nodes: current,
        healthyCount: () => this.#healthy.size,
        isClosed: () => this.#closed,
        onHealthChanged: (node, reason) => this.#onHealthChanged(node, reason),
      },
      config.outlierEjection,
      config.clock,
    );
    this.#panicBelow = config.panicThreshold * nodes.length;
    if (config.logger) logManagerEvents(config.logger, this);
  }

  /**
   * Listens to one of the manager's events (see {@linkcode ManagerEventMap});
   * the listener's event type follows from the name.
   *
   * @throws {InvalidArgumentError} for a name the manager never dispatches
   *   (a misspelt one would never be heard; pool events are the pools' and
   *   the client's), a listener that is no function or `handleEvent`
   *   object, or bad options, naming which.
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * manager.addEventListener("nodeHealthChanged", (e) => console.log(e.detail.healthy));
   * ```
   */
  override addEventListener<K extends keyof ManagerEventMap & string>(
    type: K,
    listener: TypedListener<ManagerEventMap[K]> | null,
    options?: boolean | ListenerOptions,
  ): void {
    super.addEventListener(
      type,
      listener,
      readListenerArguments(
        "ConnectionManager.addEventListener",
        MANAGER_EVENT_NAMES,
        type,
        listener,
        options,
      ),
    );
  }

  /**
   * Removes a listener added with the same `type`, `listener` and
   * `capture`, checking its arguments as `addEventListener` does.
   *
   * @throws {InvalidArgumentError} naming the bad argument.
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * const onAdded = () => console.log("a node joined");
   * manager.addEventListener("nodeAdded", onAdded);
   * manager.removeEventListener("nodeAdded", onAdded);
   * ```
   */
  override removeEventListener<K extends keyof ManagerEventMap & string>(
    type: K,
    listener: TypedListener<ManagerEventMap[K]> | null,
    options?: boolean | Pick<ListenerOptions, "capture">,
  ): void {
    super.removeEventListener(
      type,
      listener,
      readListenerArguments(
        "ConnectionManager.removeEventListener",
        MANAGER_EVENT_NAMES,
        type,
        listener,
        options,
      ),
    );
  }

  /**
   * Every node, in the order of the configured hosts, then of `addNode`.
   * A new array after each `addNode` or `removeNode`.
   */
  get nodes(): readonly ManagedNode[] {
    return this.#nodes;
  }

  /** The node for `address` (`host:port`), if it is one of the nodes. */
  node(address: string): ManagedNode | undefined {
    return this.#byAddress.get(address);
  }

  /** How many nodes are healthy now. */
  get healthyCount(): number {
    return this.#healthy.size;
  }

  /**
   * Opens a first connection to every node at once and starts the pools and
   * the health loop. Resolves once each node answered or failed (within
   * `timeoutMs`), if one answered; nodes that did not are marked unhealthy
   * until a health check finds them.
   *
   * @throws {ConnectFailedError} when none answered, with every host and why
   *   in `failures`.
   * @throws {AuthenticationError}, {@linkcode NegotiationError} or a
   *   certificate {@linkcode TlsError} itself when every node failed that
   *   way: never retried.
   * @throws {AbortedError} when `signal` aborts first, carrying its reason.
   */
  async connect(signal?: AbortSignal): Promise<void> {
    const waitMs = firstConnectWaitMs(this.#config);
    await connectNodes(this.#nodes, waitMs, signal, this);
    for (const node of this.#nodes) {
      if (node.health.isHealthy && !node.pool.isClosed) node.pool.start();
    }
    this.#healthLoop.schedule();
  }

  /**
   * Adds a node while the manager runs. `host` is parsed like a configured
   * host. The node is announced at once (`nodeAdded`), joins the health
   * loop, and its pool opens a first connection; it takes requests only
   * once that connection is made, as a node down at `connect()` does, so
   * a node that is still starting never fails requests. The result says
   * how that first connection went: `healthy` when the node takes
   * requests, otherwise `error`, and the health checks keep trying it.
   *
   * @throws {ConfigError} (rejects) for a bad host, or one already a node
   *   however spelt (`DB1.:7000` beside `db1:7000`).
   * @throws {ClientClosedError} (rejects) once the manager is closed.
   * @example
   * ```ts
   * import { ConnectionManager, resolveConfig } from "@nodewire/client/core";
   * import { getAdapter } from "@nodewire/client/runtime";
   * const manager = new ConnectionManager(resolveConfig({ hosts: ["127.0.0.1:7000"] }), await getAdapter());
   * await manager.connect();
   * const { healthy, error } = await manager.addNode("127.0.0.1:7001");
   * console.log(healthy ? "serving" : `not yet: ${error?.message}`);
   * ```
   */
  async addNode(host: string): Promise<HealthCheckResult> {
    if (this.#closed) throw closedError();
    const parsed = parseNewHost(host);
    if (this.#byKey.has(sameNodeKey(parsed))) {
      throw new ConfigError("host", host, "already a node of this client");
    }
    const node = this.#register(parsed, false);
    this.#nodes = [...this.#nodes, node];
    this.#panicBelow = this.#config.panicThreshold * this.#nodes.length;
    this.#announce("nodeAdded", node);
    const waitMs = firstConnectWaitMs(this.#config);
    return await connectAdded(node, waitMs, (error) => {
      // Removed meanwhile, or the manager closed: its health matters no more.
      if (this.#byAddress.get(node.address) !== node || this.#closed) return;
      if (error !== undefined) {
        node.health.recordFailure(error, this.#clock.now());
      } else if (node.health.markHealthy()) {
        this.#onHealthChanged(node, "connected");
      }
    });
  }

  /**
   * Removes a node while the manager runs. It leaves the balancer at once,
   * so no new request goes to it; requests waiting for one of its
   * connections fail with a retryable error (they were never sent) and
   * are retried elsewhere; requests in flight on it finish, a connection
   * lent for exclusive use closes when returned, and then its pool
   * closes. The config's `timeoutMs` bounds that wait: a connection still
   * in use then is destroyed, failing what is in flight on it with
   * `ConnectionLostError` (so a holder that awaits this removal is not
   * waited for for ever). Resolves when all of that is done, after
   * `nodeRemoved`.
   * Removing a node already leaving returns the same wait. Any spelling
   * of its address finds it (`DB1.:7000` for `db1:7000`).
   *
   * @throws {ConfigError} (rejects) for something that is not an address,
   *   an address that is not a node, or the last node (a client needs one).
   * @throws {ClientClosedError} (rejects) once the manager is closed.
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * await manager.removeNode("127.0.0.1:7001");
   * ```
   */
  async removeNode(address: string): Promise<void> {
    if (this.#closed) throw closedError();
    const key = parseNodeAddress(address);
    const node = this.#byKey.get(key);
    if (node === undefined) {
      const leaving = this.#leavingByKey(key);
      if (leaving !== undefined) return await leaving.gone;
      throw new ConfigError("address", address, "not a node of this client");
    }
    if (this.#nodes.length === 1) {
      throw new ConfigError(
        "address",
        address,
        "the last node cannot be removed: a client needs at least one",
      );
    }
    this.#byAddress.delete(node.address);
    this.#byKey.delete(key);
    this.#nodes = this.#nodes.filter((n) => n !== node);
    this.#healthy.delete(node);
    this.#ejector?.forget(node);
    this.#panicBelow = this.#config.panicThreshold * this.#nodes.length;
    // Its requests in flight count down in a cell of their own, so the
    // slot is free for the next node at once.
    const slot = node.slot;
    node.moveLoads(new Int32Array(1), 0);
    this.#slots.release(slot);
    // A closed pool lists its connections no more, but a disconnect may
    // have to destroy them while they drain: keep them.
    const connections = node.pool.connections();
    let close!: (closed: Promise<void>) => void;
    // Bounded as a disconnect's grace is: a connection still lent or busy
    // after `timeoutMs` is destroyed, or a withConnection callback that
    // awaits this removal would wait for it for ever, and it for them.
    const graceMs = this.#config.timeoutMs;
    const overdue = this.#clock.setTimeout(() => {
      const error = new ConnectionLostError(
        node.host,
        `node ${node.address} was removed from the client, and the ` +
          `connection was still in use ${graceMs} ms later`,
      );
      for (const connection of connections) connection.destroy(error);
    }, graceMs);
    const gone = new Promise<void>((resolve) => (close = resolve)).then(() => {
      this.#clock.clearTimeout(overdue);
      this.#leaving.delete(node);
      this.#announce("nodeRemoved", node);
    });
    // Leaving before its pool is cleared and closed: their events come
    // from inside this call, and removing it again from a listener must
    // get this same wait, not "not a node".
    this.#leaving.set(node, { key, connections, gone });
    // Waiters were never sent: a retryable failure sends them elsewhere.
    node.pool.clear(
      new Error(`node ${node.address} was removed from the client`),
    );
    close(node.pool.close());
    await gone;
  }

  /**
   * Picks the node for the next request: a healthy one, spread by the
   * balancer, preferring one other than `exclude` (the node a retry just
   * failed on). Below the panic threshold, any node, in turn.
   *
   * @throws {NoHealthyNodesError} when no node is healthy and the policy is `"fail"`.
   */
  pickNode(exclude?: ManagedNode): ManagedNode {
    // Too few healthy nodes to carry the load (or the marks are wrong):
    // spread over all of them rather than swamp the few.
    if (this.#healthy.size < this.#panicBelow) return this.#pickAny(exclude);
    const node = this.#balancer.pick(exclude);
    if (node !== undefined) return node;
    if (this.#config.whenNoHealthyNodes === "tryAll") {
      // Better to try a node that may have recovered than to try none.
      return this.#pickAny(exclude);
    }
    throw new NoHealthyNodesError(this.nodes.map((n) => n.address));
  }

  /**
   * Whether the balancer weighs reply times (`"peak-ewma"`): only then
   * does the request path read the clock to time each attempt and report
   * it through {@linkcode ConnectionManager.recordLatency}.
   */
  get timesRequests(): boolean {
    return this.#latency !== undefined;
  }

  /**
   * Books an attempt on `node` that started at `started` and ended at
   * `now` (the clock's scale): with its reply when `error` is undefined,
   * else with that error (a failure the node is blamed for counts as a
   * reply a second late; an abort counts for nothing). Does nothing
   * unless {@linkcode ConnectionManager.timesRequests}.
   */
  recordLatency(
    node: ManagedNode,
    started: number,
    now: number,
    error?: unknown,
  ): void {
    const latency = this.#latency;
    if (latency === undefined) return;
    const ms = error === undefined
      ? now - started
      : failureSample(now - started, error);
    // A removed node's slot may already be another node's.
    if (ms >= 0 && this.#byAddress.get(node.address) === node) {
      latency.observe(node.slot, ms, now);
    }
  }

  /**
   * Feeds the failure of a real request into the node's health and its
   * outlier ejection: see {@linkcode recordFailedRequest} for what counts.
   */
  recordRequestFailure(node: ManagedNode, error: unknown): void {
    // A removed node's health matters no more (its connections may even
    // have been destroyed by its removal): it must not be ejected.
    if (this.#byAddress.get(node.address) !== node) return;
    recordFailedRequest(this.#ejector, node, error);
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

  /**
   * A request to `node` succeeded (`count` of them): plain increments, no
   * clock.
   */
  recordRequestSuccess(node: ManagedNode, count = 1): void {
    node.health.recordRequestSuccess(count);
  }

  /**
   * Takes a node out of rotation: requests stop going to it and its pool is
   * cleared (idle connections closed, waiters failed with a retryable error).
   * It comes back after `healthyThreshold` successful health checks (and
   * the end of its ejection, if ejected), or through
   * {@linkcode ConnectionManager.markNodeHealthy}.
   *
   * @returns false when `address` is unknown, the node was already
   *   unhealthy, or the manager is closed (then nothing changes).
   * @throws {InvalidArgumentError} for an address or a reason that is no
   *   string (nothing changes).
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * manager.markNodeUnhealthy("127.0.0.1:7001", "maintenance");
   * ```
   */
  markNodeUnhealthy(address: string, reason = "marked unhealthy"): boolean {
    checkMarkArguments("ConnectionManager.markNodeUnhealthy", address, reason);
    if (this.#closed) return false;
    const node = this.#byAddress.get(address);
    if (node === undefined || !node.health.markUnhealthy(reason)) return false;
    this.#onHealthChanged(node, reason);
    return true;
  }

  /**
   * Puts a node back in rotation at once, ending its ejection if it was
   * ejected.
   *
   * @returns false when `address` is unknown, the node was already
   *   healthy, or the manager is closed (then nothing changes).
   * @throws {InvalidArgumentError} for an address or a reason that is no
   *   string (nothing changes).
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * manager.markNodeHealthy("127.0.0.1:7001", "maintenance over");
   * ```
   */
  markNodeHealthy(address: string, reason = "marked healthy"): boolean {
    checkMarkArguments("ConnectionManager.markNodeHealthy", address, reason);
    if (this.#closed) return false;
    const node = this.#byAddress.get(address);
    if (node === undefined || !node.health.markHealthy()) return false;
    this.#ejector?.forget(node);
    this.#onHealthChanged(node, reason);
    return true;
  }

  /** Closes every connection at once, failing what is in flight. */
  destroyConnections(error: Error): void {
    for (const node of this.#nodes) {
      for (const connection of node.pool.connections()) {
        connection.destroy(error);
      }
    }
    for (const { connections } of this.#leaving.values()) {
      for (const connection of connections) connection.destroy(error);
    }
  }

  /**
   * Stops the health loop and closes every pool: waiters fail, connections
   * close gracefully. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.stopHealthLoop();
    this.#ejector?.stop();
    await Promise.all(this.#allNodes().map((node) => node.pool.close()));
    await this.#healthLoop.settled();
  }

  /**
   * A node record for `host` in a free slot. When the array of loads had
   * to grow, the nodes and the balancer move to the new one.
   */
  #register(host: HostAddress, healthy: boolean): NodeRecord {
    const { slot, grew } = this.#slots.claim();
    // A reused slot starts with nothing learned (PeakEwma grows by itself).
    this.#latency?.reset(slot);
    const loads = this.#slots.loads;
    if (grew) {
      for (const node of this.#nodes) node.moveLoads(loads, node.slot);
      this.#balancer = this.#makeBalancer();
    }
    const node = new NodeRecord(
      host,
      loads,
      slot,
      // A configured node is trusted until it fails; an added one only
      // once it answered (addNode).
      new NodeHealth(host.address, this.#config.healthConfig, { healthy }),
      this.#makePool,
    );
    this.#byAddress.set(node.address, node);
    this.#byKey.set(sameNodeKey(host), node);
    return node;
  }

  #makeBalancer(): Balancer<ManagedNode> {
    return createBalancer(this.#config.loadBalancing, this.#healthy, {
      inFlight: (node) => node.inFlight,
      loads: this.#slots.loads,
      latency: this.#latency,
      clock: this.#config.clock,
    });
  }

  /** The nodes and those removed whose pools still drain. */
  #allNodes(): NodeRecord[] {
    return [
      ...this.#nodes,
      ...this.#leaving.keys(),
    ];
  }

  /** The last node removed as `key` that still drains, if any. */
  #leavingByKey(key: string): { gone: Promise<void> } | undefined {
    let found: { gone: Promise<void> } | undefined;
    for (const leaving of this.#leaving.values()) {
      if (leaving.key === key) found = leaving;
    }
    return found;
  }

  #announce(type: "nodeAdded" | "nodeRemoved", node: ManagedNode): void {
    if (!this.hasListeners(type)) return;
    this.dispatchEvent(
      new NodeMembershipEvent(type, {
        address: node.address,
        nodeId: node.nodeId,
      }, this.#clock.now()),
    );
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

  /** Any node, in turn, preferring one other than `exclude`. */
  #pickAny(exclude: ManagedNode | undefined): ManagedNode {
    const all = this.nodes;
    let pick = all[this.#anyIndex++ % all.length];
    if (pick === exclude && all.length > 1) {
      pick = all[this.#anyIndex++ % all.length];
    }
    return pick;
  }

  #onHealthChanged(node: ManagedNode, reason: string): void {
    // A node removed meanwhile: its pool drains, its health matters no more.
    if (this.#byAddress.get(node.address) !== node) return;
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
    healthChanged(this.id, node, reason);
  }
}

function closedError(): ClientClosedError {
  return new ClientClosedError("the connection manager is closed");
}
