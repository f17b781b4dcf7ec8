/**
 * The round-robin strategy: {@linkcode RoundRobinBalancer}, which cycles
 * through the healthy nodes without reading any load. Apart from the
 * load-aware strategies, which share their draw and their load checks.
 *
 * @module
 */

import type { HealthyNodeSet } from "./healthy_set.ts";
import { type Balancer, nodeSet } from "./balancer_base.ts";

/**
 * Cycles through the healthy nodes. Over `k × n` picks from an unchanging
 * set of `n` nodes, each node is picked exactly `k` times.
 *
 * When the set changes the cycle continues from the same position, so a
 * node may be picked once more or once less in the round of the change.
 *
 * @example
 * ```ts
 * import { HealthyNodeSet, RoundRobinBalancer } from "@nodewire/client/core";
 * const balancer = new RoundRobinBalancer(new HealthyNodeSet(["a", "b", "c"]));
 * [balancer.pick(), balancer.pick(), balancer.pick(), balancer.pick()]; // a b c a
 * balancer.pick("b"); // "c": a retry that failed on b goes elsewhere
 * ```
 */
export class RoundRobinBalancer<N> implements Balancer<N> {
  /** The set this balancer picks from. */
  readonly nodes: HealthyNodeSet<N>;
  #next = 0;

  /** Creates a balancer over `nodes`, which the caller keeps up to date. */
  constructor(nodes: HealthyNodeSet<N>) {
    this.nodes = nodeSet("new RoundRobinBalancer()", nodes);
  }

  /** The next node in the cycle, skipping `exclude` when another exists. */
  pick(exclude?: N): N | undefined {
    const size = this.nodes.size;
    if (size === 0) return undefined;
    // `#next` stays below the size it was computed for; after removals it
    // may be out of range, and the modulo brings it back.
    let i = this.#next < size ? this.#next : this.#next % size;
    let node = this.nodes.at(i)!;
    if (exclude !== undefined && node === exclude && size > 1) {
      i = i + 1 === size ? 0 : i + 1;
      node = this.nodes.at(i)!;
    }
    this.#next = i + 1 === size ? 0 : i + 1;
    return node;
  }
}
