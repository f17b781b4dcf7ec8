/**
 * What every balancer is: the {@linkcode Balancer} interface, and the
 * check that what a balancer is built over is a {@linkcode HealthyNodeSet}.
 * Apart from the strategies so that each of them, and `createBalancer`
 * in balancer.ts, can name it without an import cycle.
 *
 * @module
 */

import { refuse } from "../config/options.ts";
import { HealthyNodeSet } from "./healthy_set.ts";

/**
 * A node-choosing strategy bound to a {@linkcode HealthyNodeSet}.
 *
 * @example
 * ```ts
 * import { type Balancer, HealthyNodeSet, RoundRobinBalancer } from "@nodewire/client/core";
 * const balancer: Balancer<string> = new RoundRobinBalancer(new HealthyNodeSet(["a", "b"]));
 * balancer.pick(); // "a"
 * ```
 */
export interface Balancer<N> {
  /** The set this balancer picks from. */
  readonly nodes: HealthyNodeSet<N>;
  /**
   * A node from the set, or `undefined` when the set is empty. With
   * `exclude`, a different node is returned whenever the set holds one;
   * the excluded node is returned only when it is the sole member, since a
   * retry on the same node beats no retry.
   */
  pick(exclude?: N): N | undefined;
}

/** `nodes`, when it is a HealthyNodeSet: a pick reads it every time. */
export function nodeSet<N>(method: string, nodes: HealthyNodeSet<N>) {
  if (nodes instanceof HealthyNodeSet) return nodes;
  throw refuse(method, "nodes", nodes, "expected a HealthyNodeSet");
}
