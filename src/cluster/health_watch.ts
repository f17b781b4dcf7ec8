/**
 * What takes a manager's nodes out of rotation and puts them back: the
 * health loop, outlier ejection, the marks of `markNodeUnhealthy` and
 * `markNodeHealthy`, and an added node's first connection, all through
 * one health-change path, so the healthy set, the pools and
 * `nodeHealthChanged` see them alike. Apart from the manager because none
 * of it runs when a request is routed; the manager keeps the healthy set
 * and the ejector it reads there.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { ResolvedConfig } from "../config/shapes.ts";
import { blameClock } from "../config/clock_failure.ts";
import { NodeUnhealthyError } from "../errors.ts";
import type { TypedEventTarget } from "../events.ts";
import { healthChanged } from "./connection_diagnostics.ts";
import { OutlierEjector } from "./ejection.ts";
import { type ManagerEventMap, NodeHealthEvent } from "./events.ts";
import type { HealthyNodeSet } from "./healthy_set.ts";
import { HealthLoop } from "./health_loop.ts";
import type { ManagedNode, NodeRecord } from "./node.ts";
import type { NodeRegistry } from "./registry.ts";

/**
 * The most changes of one node followed in a row, its first included:
 * listeners that kept changing it back and forth end there.
 */
const MAX_FOLLOWED = 64;

/** The manager, as the health-change path tells of a change. */
export interface HealthWatchOwner {
  /** Where `nodeHealthChanged` is dispatched. */
  readonly target: TypedEventTarget<ManagerEventMap>;
  /** Names the manager's client in diagnostics messages. */
  readonly clientId: number;
  /** Whether the manager is closed: health changes stop mattering then. */
  isClosed(): boolean;
}

/** The health loop, the ejector, the marks, and the one path they take. */
export class HealthWatch {
  /** The sweeps: on demand and on the health timer. */
  readonly loop: HealthLoop;
  /** Undefined when outlier ejection is off. */
  readonly ejector: OutlierEjector | undefined;
  readonly #owner: HealthWatchOwner;
  readonly #byAddress: ReadonlyMap<string, NodeRecord>;
  readonly #healthy: HealthyNodeSet<ManagedNode>;
  readonly #clock: Clock;
  /**
   * The nodes whose change is being followed, each with the reasons of
   * the changes listeners made meanwhile, followed next.
   */
  readonly #changing = new Map<ManagedNode, string[]>();

  /**
   * Watches the members of `registry`, keeping `healthy` (the set the
   * balancer picks from) up to date.
   */
  constructor(
    owner: HealthWatchOwner,
    registry: NodeRegistry,
    healthy: HealthyNodeSet<ManagedNode>,
    config: ResolvedConfig,
  ) {
    this.#owner = owner;
    this.#byAddress = registry.byAddress;
    this.#healthy = healthy;
    this.#clock = config.clock;
    const current = () => registry.nodes;
    this.loop = new HealthLoop(
      {
        get nodes() {
          return current();
        },
        isClosed: () => owner.isClosed(),
        onHealthChanged: (node, reason) => this.changed(node, reason),
      },
      config.healthConfig,
      config.clock,
    );
    this.ejector = config.outlierEjection && new OutlierEjector(
      {
        nodes: current,
        healthyCount: () => healthy.size,
        isClosed: () => owner.isClosed(),
        onHealthChanged: (node, reason) => this.changed(node, reason),
      },
      config.outlierEjection,
      config.clock,
    );
  }

  /**
   * `markNodeUnhealthy` once its arguments are checked: false when
   * `address` is unknown, the node already unhealthy, or the manager
   * closed.
   */
  markUnhealthy(address: string, reason: string): boolean {
    if (this.#owner.isClosed()) return false;
    const node = this.#byAddress.get(address);
    if (node === undefined || !node.health.markUnhealthy(reason)) return false;
    this.changed(node, reason);
    return true;
  }

  /**
   * `markNodeHealthy` once its arguments are checked, ending an
   * ejection: false when `address` is unknown, the node already healthy,
   * or the manager closed.
   */
  markHealthy(address: string, reason: string): boolean {
    if (this.#owner.isClosed()) return false;
    const node = this.#byAddress.get(address);
    // Already healthy: nothing changes. NodeHealth.markHealthy would reset
    // its runs of failures, so a script that kept marking a failing node
    // healthy kept it from ever reaching the threshold that takes it out.
    if (node === undefined || node.health.isHealthy) return false;
    if (!node.health.markHealthy()) return false;
    this.ejector?.forget(node);
    this.changed(node, reason);
    return true;
  }

  /**
   * How the first connection to `node`, added by `addNode`, went: it
   * failed with `error`, or (undefined) the node takes requests now.
   */
  connected(node: ManagedNode, error: Error | undefined): void {
    // Removed meanwhile, or the manager closed: its health matters no more.
    if (this.#byAddress.get(node.address) !== node || this.#owner.isClosed()) {
      return;
    }
    try {
      if (error !== undefined) {
        node.health.recordFailure(error, this.#clock.now());
      } else if (node.health.markHealthy()) {
        this.changed(node, "connected");
      }
    } catch (thrown) {
      // addNode's caller got the clock's raw Error; see changed().
      throw blameClock(this.#clock, thrown);
    }
  }

  /**
   * The one health-change path: `node`'s health record changed, for
   * `reason`; the healthy set, its pool and the listeners follow.
   *
   * A change made meanwhile by a listener (of the pool's events this
   * sets off, or of `nodeHealthChanged`) is followed after this one, in
   * order: followed at once, from inside the pool's `clear()`, it was
   * told first, and this older one last, so the last event said the node
   * was out while it was back in. At most {@linkcode MAX_FOLLOWED}
   * changes are followed in a row: a listener that flips the node on
   * every change recursed until the stack overflowed.
   */
  changed(node: ManagedNode, reason: string): void {
    // A node removed meanwhile: its pool drains, its health matters no more.
    if (this.#byAddress.get(node.address) !== node) return;
    const later = this.#changing.get(node);
    if (later !== undefined) {
      later.push(reason);
      return;
    }
    const reasons = [reason];
    this.#changing.set(node, reasons);
    try {
      let told: boolean | undefined;
      for (let i = 0; i < reasons.length && i < MAX_FOLLOWED; i++) {
        if (this.#byAddress.get(node.address) !== node) return;
        const healthy = node.health.isHealthy;
        // Changed back meanwhile: nothing new to follow.
        if (healthy === told) continue;
        told = healthy;
        this.#apply(node, healthy, reasons[i]);
        this.#tell(node, healthy, reasons[i]);
      }
      // Cut short: the set and the pool still follow the record, untold.
      const healthy = node.health.isHealthy;
      if (healthy !== told && this.#byAddress.get(node.address) === node) {
        this.#apply(node, healthy, reasons[reasons.length - 1]);
      }
    } catch (error) {
      // A custom clock whose now() throws once in use, read by the pool's
      // clear() or the event: the mark's caller (connect()'s first
      // connections among them) got its raw Error. Named as the culprit,
      // as a request names it; a change is rare, so the catch costs
      // nothing that matters.
      throw blameClock(this.#clock, error);
    } finally {
      this.#changing.delete(node);
    }
  }

  /** The healthy set and the pool follow `node`'s change. */
  #apply(node: ManagedNode, healthy: boolean, reason: string): void {
    if (healthy) {
      this.#healthy.add(node);
      if (!this.#owner.isClosed()) node.pool.start();
    } else {
      this.#healthy.delete(node);
      node.pool.clear(new NodeUnhealthyError(node.address, reason));
    }
  }

  /** Tells `nodeHealthChanged` listeners and diagnostics of `node`'s change. */
  #tell(node: ManagedNode, healthy: boolean, reason: string): void {
    const target = this.#owner.target;
    if (target.hasListeners("nodeHealthChanged")) {
      target.dispatchEvent(
        new NodeHealthEvent({
          address: node.address,
          nodeId: node.nodeId,
          healthy,
          reason,
        }, this.#clock.now()),
      );
    }
    healthChanged(this.#owner.clientId, node, reason);
  }
}
