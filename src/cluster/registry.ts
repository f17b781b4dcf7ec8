/**
 * The manager's members: the nodes in host order (then of `addNode`),
 * found by address and by sameNodeKey, each in a slot of the dense array
 * of loads (and the balancer that reads it); a node's record made and
 * registered, added and removed; the nodes removed that still drain; and
 * any member in turn, for a pick in panic. Apart from the manager, which routes requests and follows
 * health, because who the members are changes only through `addNode` and
 * `removeNode`.
 *
 * @module
 */

import { sameNodeKey } from "../config/hosts.ts";
import type { HostAddress, ResolvedConfig } from "../config/shapes.ts";
import type { Connection } from "../connection/connection.ts";
import { ConfigError } from "../errors.ts";
import type { TypedEventTarget } from "../events.ts";
import { type ManagerEventMap, NodeMembershipEvent } from "./events.ts";
import type { ConnectionPool } from "../pool/pool.ts";
import { type Balancer, createBalancer } from "./balancer.ts";
import { NodeHealth } from "./health.ts";
import type { HealthyNodeSet } from "./healthy_set.ts";
import { LeavingNodes } from "./leaving.ts";
import { parseNewHost, parseNodeAddress, SlotTable } from "./membership.ts";
import { type ManagedNode, NodeRecord } from "./node.ts";
import { PeakEwma } from "./peak_ewma.ts";

/** The manager that owns a registry, as the registry tells it of changes. */
export interface RegistryOwner {
  /** Where `nodeAdded` and `nodeRemoved` are dispatched. */
  readonly target: TypedEventTarget<ManagerEventMap>;
  /** The array of loads grew: the balancer must be made anew. */
  grew(): void;
  /**
   * `node` is a member no more: it must leave the rotation. Called
   * before its slot is freed and its pool cleared.
   */
  left(node: NodeRecord): void;
}

/** The nodes of one manager, and those removed that still drain. */
export class NodeRegistry {
  // Replaced, never changed in place, when a node joins or leaves: a sweep
  // or a connect that is iterating keeps the list it started with. Frozen:
  // `manager.nodes` hands it out, and a caller that sorted or emptied it
  // reordered or emptied the members (anyNode then picked undefined).
  #nodes: readonly NodeRecord[] = [];
  readonly #byAddress = new Map<string, NodeRecord>();
  /** Latency estimates by slot, kept only for `"peak-ewma"`. */
  readonly latency: PeakEwma | undefined;
  // The same nodes by sameNodeKey, so that no spelling adds one twice.
  readonly #byKey = new Map<string, NodeRecord>();
  readonly #leaving = new LeavingNodes();
  readonly #slots: SlotTable;
  readonly #config: ResolvedConfig;
  readonly #makePool: (node: NodeRecord) => ConnectionPool<Connection>;
  readonly #owner: RegistryOwner;
  #anyIndex = 0;

  /**
   * Registers the configured hosts, trusted until they fail. `owner` is
   * told of growth and removals.
   */
  constructor(
    config: ResolvedConfig,
    makePool: (node: NodeRecord) => ConnectionPool<Connection>,
    owner: RegistryOwner,
  ) {
    this.#config = config;
    this.#makePool = makePool;
    this.#owner = owner;
    // Loads live in one dense array, by slot (the host's index at first),
    // so that choosing among thousands of nodes reads two numbers that stay
    // in cache rather than two node objects scattered over the heap.
    this.#slots = new SlotTable(config.hosts.length);
    this.latency = config.loadBalancing === "peak-ewma"
      ? new PeakEwma(this.#slots.loads.length)
      : undefined;
    // The table has room for them all: `grew` is not called from here.
    this.#nodes = Object.freeze(
      config.hosts.map((host) => this.#register(host, true)),
    );
  }

  /**
   * Every member, in host order, then of `add`. A new array after each
   * `add` or `remove`.
   */
  get nodes(): readonly NodeRecord[] {
    return this.#nodes;
  }

  /**
   * The members by address: one map for the registry's life, which the
   * manager holds and reads on the request path.
   */
  get byAddress(): ReadonlyMap<string, NodeRecord> {
    return this.#byAddress;
  }

  /** The in-flight counts by slot; a new array after `grew`. */
  get loads(): Int32Array {
    return this.#slots.loads;
  }

  /**
   * Registers `host` (as `addNode` is given it) as a new member, last in
   * order, not yet healthy.
   *
   * @throws {ConfigError} for a bad host, or one already a node however
   *   spelt.
   */
  add(host: string): NodeRecord {
    const parsed = parseNewHost(host);
    if (this.#byKey.has(sameNodeKey(parsed))) {
      throw new ConfigError("host", host, "already a node of this client");
    }
    const node = this.#register(parsed, false);
    this.#nodes = Object.freeze([...this.#nodes, node]);
    return node;
  }

  /**
   * Takes the node at `address` (any spelling) out of the members, tells
   * the owner, and lets its pool drain (see {@linkcode LeavingNodes.leave});
   * for a node already leaving, the same wait.
   *
   * @throws {ConfigError} for something that is not an address, an
   *   address that is not a node, or the last node.
   */
  remove(address: string): Promise<void> {
    const key = parseNodeAddress(address);
    const node = this.#byKey.get(key);
    if (node === undefined) {
      const leaving = this.#leaving.byKey(key);
      if (leaving !== undefined) return leaving.gone;
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
    this.#nodes = Object.freeze(this.#nodes.filter((n) => n !== node));
    this.#owner.left(node);
    // Its requests in flight count down in a cell of their own, so the
    // slot is free for the next node at once.
    const slot = node.slot;
    node.moveLoads(new Int32Array(1), 0);
    this.#slots.release(slot);
    return this.#leaving.leave(
      node,
      key,
      this.#config.clock,
      this.#config.timeoutMs,
      (gone) => this.announce("nodeRemoved", gone),
    );
  }

  /**
   * The configured balancer over `healthy`, reading this registry's
   * arrays (loads, latency): a new one is needed after `grew`.
   */
  balancer(healthy: HealthyNodeSet<ManagedNode>): Balancer<ManagedNode> {
    return createBalancer(this.#config.loadBalancing, healthy, {
      inFlight: (node) => node.inFlight,
      loads: this.#slots.loads,
      latency: this.latency,
      clock: this.#config.clock,
    });
  }

  /**
   * Tells `nodeAdded` or `nodeRemoved` of `node`, when someone listens:
   * `add` leaves the first to its caller, `remove` tells the second once
   * the node's pool has closed.
   */
  announce(type: "nodeAdded" | "nodeRemoved", node: ManagedNode): void {
    const target = this.#owner.target;
    if (!target.hasListeners(type)) return;
    target.dispatchEvent(
      new NodeMembershipEvent(type, {
        address: node.address,
        nodeId: node.nodeId,
      }, this.#config.clock.now()),
    );
  }

  /** The members and those removed whose pools still drain. */
  all(): NodeRecord[] {
    return [
      ...this.#nodes,
      ...this.#leaving.nodes(),
    ];
  }

  /** Closes every connection at once, members' and leaving nodes'. */
  destroyConnections(error: Error): void {
    for (const node of this.#nodes) {
      for (const connection of node.pool.connections()) {
        connection.destroy(error);
      }
    }
    this.#leaving.destroy(error);
  }

  /** Any node, in turn, preferring one other than `exclude`. */
  anyNode(exclude: ManagedNode | undefined): ManagedNode {
    const all = this.#nodes;
    let pick = all[this.#anyIndex++ % all.length];
    if (pick === exclude && all.length > 1) {
      pick = all[this.#anyIndex++ % all.length];
    }
    return pick;
  }

  /**
   * A node record for `host` in a free slot. When the array of loads had
   * to grow, the nodes and the balancer move to the new one.
   */
  #register(host: HostAddress, healthy: boolean): NodeRecord {
    const { slot, grew } = this.#slots.claim();
    // A reused slot starts with nothing learned (PeakEwma grows by itself).
    this.latency?.reset(slot);
    const loads = this.#slots.loads;
    if (grew) {
      for (const node of this.#nodes) node.moveLoads(loads, node.slot);
      this.#owner.grew();
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
}
