/**
 * The ConnectionManager: one pool per node, a health record per node, the
 * background health loop, and the choice of node for each request. The
 * class keeps the choice (the healthy set, the balancer, panic) and the
 * bookings of what requests saw; who the nodes are is `registry.ts`, what
 * takes them out of rotation and back `health_watch.ts`, their pools
 * `connector.ts`, their first connections `first_connect.ts`, its door
 * `manager_door.ts`, and the parts' wiring `manager_parts.ts`.
 *
 * @module
 */

import {
  checkBooking,
  checkConnectSignal,
  checkMarkArguments,
  readManagerListener,
} from "./manager_door.ts";
import { assembleManager } from "./manager_parts.ts";
import type { ResolvedConfig } from "../config/shapes.ts";
import type { ConnectionOptions } from "../connection/connection.ts";
import { NoHealthyNodesError } from "../errors.ts";
import {
  type ListenerOptions,
  TypedEventTarget,
  type TypedListener,
} from "../events.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";
import type { Balancer } from "./balancer.ts";
import type { HealthyNodeSet } from "./healthy_set.ts";
import { type OutlierEjector, recordFailedRequest } from "./ejection.ts";
import {
  closedError,
  connectAdded,
  firstConnectWaitMs,
  startNodes,
} from "./first_connect.ts";
import type { ManagerEventMap } from "./events.ts";
import type { HealthCheckResult } from "./health_loop.ts";
import type { HealthWatch } from "./health_watch.ts";
import type { ManagedNode, NodeRecord } from "./node.ts";
import type { NodeRegistry } from "./registry.ts";
import { nextClientId } from "../diagnostics/channels.ts";
import { bookReply, failureSample, type PeakEwma } from "./peak_ewma.ts";

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
  readonly #registry: NodeRegistry;
  // The registry's own map, held here too: the request path reads it.
  readonly #byAddress: ReadonlyMap<string, NodeRecord>;
  readonly #healthy: HealthyNodeSet<ManagedNode>;
  #balancer: Balancer<ManagedNode>;
  readonly #watch: HealthWatch;
  /** Latency estimates by slot, kept only for `"peak-ewma"`. */
  readonly #latency: PeakEwma | undefined;
  /** The watch's ejector (undefined when off): failed requests feed it. */
  readonly #ejector: OutlierEjector | undefined;
  /** Panic below this many healthy nodes (0: never); follows membership. */
  #panicBelow: number;
  #closed = false;

  /**
   * Creates the pools (not yet connected). `connectionOptions` adds to what
   * each connection is opened with (the handshake hook, for example).
   *
   * @throws {InvalidArgumentError} for a config that `resolveConfig` did
   *   not return (a copy or an edit of one, a proxy, one built by hand,
   *   or one that another loaded copy of the package resolved), an
   *   adapter without `connect`, or a connection option
   *   `Connection.connect` would refuse, before anything starts.
   */
  constructor(
    config: ResolvedConfig,
    adapter: RuntimeAdapter,
    connectionOptions: Partial<ConnectionOptions> = {},
  ) {
    super();
    const parts = assembleManager(this, config, adapter, connectionOptions, {
      grew: () => (this.#balancer = registry.balancer(this.#healthy)),
      left: (node) => {
        this.#healthy.delete(node);
        this.#ejector?.forget(node);
        this.#panicBelow = config.panicThreshold * registry.nodes.length;
      },
      isClosed: () => this.#closed,
    });
    this.#config = config;
    const registry = this.#registry = parts.registry;
    this.#byAddress = registry.byAddress;
    this.#latency = registry.latency;
    this.#healthy = parts.healthy;
    this.#balancer = parts.balancer;
    this.#watch = parts.watch;
    this.#ejector = parts.watch.ejector;
    this.#panicBelow = config.panicThreshold * registry.nodes.length;
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
      readManagerListener("addEventListener", type, listener, options),
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
      readManagerListener("removeEventListener", type, listener, options),
    );
  }

  /**
   * Every node, in the order of the configured hosts, then of `addNode`.
   * A new array after each `addNode` or `removeNode`, frozen: copy it to
   * sort it.
   *
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * const byAddress = [...manager.nodes].sort((a, b) => a.address.localeCompare(b.address));
   * console.log(byAddress.map((node) => node.address));
   * ```
   */
  get nodes(): readonly ManagedNode[] {
    return this.#registry.nodes;
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
   * @throws {ConfigError} naming `clock` when none answered and one failed
   *   because a custom clock threw, or when its `setTimeout()` throws as
   *   the health loop is scheduled: never retried.
   * @throws {ConnectFailedError} when none answered, with every host and why
   *   in `failures`.
   * @throws {AuthenticationError}, {@linkcode NegotiationError} or a
   *   certificate {@linkcode TlsError} itself when every node failed that
   *   way: never retried.
   * @throws {AbortedError} when `signal` aborts first, carrying its reason.
   * @throws {InvalidArgumentError} (rejects) for a `signal` that is no
   *   `AbortSignal`, before any node is tried.
   * @throws {ClientClosedError} (rejects) once the manager is closed,
   *   also by a `close()` while it waits.
   * @example
   * ```ts
   * import { ConnectionManager, resolveConfig } from "@nodewire/client/core";
   * import { getAdapter } from "@nodewire/client/runtime";
   * const manager = new ConnectionManager(resolveConfig({ hosts: ["127.0.0.1:7000"] }), await getAdapter());
   * await manager.connect(AbortSignal.timeout(5000));
   * await manager.close();
   * ```
   */
  async connect(signal?: AbortSignal): Promise<void> {
    checkConnectSignal(signal);
    if (this.#closed) throw closedError();
    await startNodes(
      this.#registry,
      this.#watch.loop,
      firstConnectWaitMs(this.#config),
      signal,
      this,
      () => this.#closed,
    );
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
   *   however spelt (`DB1.:7000` beside `db1:7000`), or naming `clock`
   *   when a custom clock's `now()` throws as the first connection's
   *   outcome is booked.
   * @throws {ClientClosedError} (rejects) once the manager is closed,
   *   also by a `close()` while the first connection is made.
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
    const node = this.#registry.add(host);
    this.#panicBelow = this.#config.panicThreshold *
      this.#registry.nodes.length;
    this.#registry.announce("nodeAdded", node);
    const waitMs = firstConnectWaitMs(this.#config);
    const result = await connectAdded(
      node,
      waitMs,
      (error) => this.#watch.connected(node, error),
    );
    // Closed meanwhile: no health check will try the node again, as a
    // result with its error would promise.
    if (this.#closed) throw closedError();
    return result;
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
   *   an address that is not a node, or the last node (a client needs one);
   *   naming `clock` once the node is gone, when a custom clock's
   *   `clearTimeout()` threw as the removal's time limit was cleared, or
   *   its `setTimeout()` as it was armed (the node then leaves with no
   *   grace: its connections still in use are destroyed at once).
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
    await this.#registry.remove(address);
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
    if (this.#healthy.size < this.#panicBelow) {
      return this.#registry.anyNode(exclude);
    }
    const node = this.#balancer.pick(exclude);
    if (node !== undefined) return node;
    if (this.#config.whenNoHealthyNodes === "tryAll") {
      // Better to try a node that may have recovered than to try none.
      return this.#registry.anyNode(exclude);
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
   * unless {@linkcode ConnectionManager.timesRequests}, nor for a node no
   * longer a member, nor for times whose difference is no finite number
   * of 0 or more.
   * @throws {InvalidArgumentError} for a `node` that is no object, or a
   *   time that is no number.
   */
  recordLatency(
    node: ManagedNode,
    started: number,
    now: number,
    error?: unknown,
  ): void {
    checkBooking("recordLatency", node, 1, started, now);
    const latency = this.#latency;
    if (latency === undefined) return;
    const ms = error === undefined
      ? now - started
      : failureSample(now - started, error);
    // A removed node's slot may already be another node's. A clock that
    // read Infinity gives no sample (bookReply would refuse it).
    if (
      ms >= 0 && ms < Infinity && this.#byAddress.get(node.address) === node
    ) {
      bookReply(latency, node.slot, ms, now);
    }
  }

  /**
   * Feeds the failure of a real request into the node's health and its
   * outlier ejection: see {@linkcode recordFailedRequest} for what counts.
   * A node no longer a member (removed) books nothing.
   * @throws {InvalidArgumentError} for a `node` that is no object.
   */
  recordRequestFailure(node: ManagedNode, error: unknown): void {
    checkBooking("recordRequestFailure", node);
    // A removed node's health matters no more (its connections may even
    // have been destroyed by its removal): it must not be ejected.
    if (this.#byAddress.get(node.address) !== node) return;
    recordFailedRequest(this.#ejector, node, error);
  }

  /**
   * Pings every node at once (at most `healthConfig.maxConcurrentChecks`
   * at a time), each within `healthConfig.timeoutMs`, updates their health
   * and returns the results in host order. Concurrent calls share one sweep.
   * After `close()` nothing is pinged: each result has `ok: false` and a
   * {@linkcode ClientClosedError} as its `error`. A check that meets a
   * custom clock whose `now()` throws has the `ConfigError` naming `clock`
   * as its `error`.
   *
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * for (const { address, ok, error } of await manager.healthCheckAllNodes()) {
   *   console.log(address, ok ? "up" : error?.message);
   * }
   * ```
   */
  healthCheckAllNodes(): Promise<HealthCheckResult[]> {
    return this.#watch.loop.sweep();
  }

  /**
   * Stops the health loop: a sweep in progress ends, and none follows
   * (until `connect()` starts the loop again); requests still work.
   *
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * manager.stopHealthLoop();
   * ```
   */
  stopHealthLoop(): void {
    this.#watch.loop.stop();
  }

  /**
   * A request to `node` succeeded (`count` of them): plain increments, no
   * clock. A node no longer a member (removed) books nothing.
   * @throws {InvalidArgumentError} for a `node` that is no object, or a
   *   `count` that is no integer of 0 or more.
   */
  recordRequestSuccess(node: ManagedNode, count = 1): void {
    checkBooking("recordRequestSuccess", node, count);
    if (this.#byAddress.get(node.address) !== node) return;
    node.health.recordRequestSuccess(count);
  }

  /**
   * Takes a node out of rotation: requests stop going to it and its pool is
   * cleared (idle connections closed, waiters failed with a retryable error).
   * It comes back after `healthyThreshold` successful health checks (and
   * the end of its ejection, if ejected), or through
   * {@linkcode ConnectionManager.markNodeHealthy}.
   *
   * @returns false when `address` is unknown or the manager is closed
   *   (then nothing changes), or the node was already unhealthy: the mark
   *   holds all the same, so it needs `healthyThreshold` fresh successful
   *   checks to come back, also once an ejection that took it out ends.
   * @throws {InvalidArgumentError} for an address or a reason that is no
   *   string (nothing changes).
   * @throws {ConfigError} naming `clock` when a custom clock's `now()`
   *   throws as the node's pool is cleared (the node is out all the same).
   * @example
   * ```ts
   * import type { ConnectionManager } from "@nodewire/client/core";
   * declare const manager: ConnectionManager;
   * manager.markNodeUnhealthy("127.0.0.1:7001", "maintenance");
   * ```
   */
  markNodeUnhealthy(address: string, reason = "marked unhealthy"): boolean {
    checkMarkArguments("ConnectionManager.markNodeUnhealthy", address, reason);
    return this.#watch.markUnhealthy(address, reason);
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
    return this.#watch.markHealthy(address, reason);
  }

  /** Closes every connection at once, failing what is in flight. */
  destroyConnections(error: Error): void {
    this.#registry.destroyConnections(error);
  }

  /**
   * Stops the health loop and closes every pool: waiters fail, connections
   * close gracefully. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.stopHealthLoop();
    this.#ejector?.stop();
    await Promise.all(this.#registry.all().map((node) => node.pool.close()));
    await this.#watch.loop.settled();
  }
}
