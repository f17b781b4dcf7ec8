/**
 * The least-in-flight strategy: {@linkcode LeastInFlightBalancer}, power
 * of two choices over requests in flight, with its options, their rules
 * and the error of a pick whose caller's `inFlight` failed. Apart from
 * the other strategies: it alone reads a caller's callback.
 *
 * @module
 */

import { func, readOptions, refuse, type Rules } from "../config/options.ts";
import { type InvalidArgumentError, messageOf } from "../errors.ts";
import { Candidates } from "./candidates.ts";
import type { HealthyNodeSet } from "./healthy_set.ts";
import { type Balancer, nodeSet } from "./balancer_base.ts";
import { checkLoads, loadsFailed, loadsRule } from "./balancer_loads.ts";

/**
 * Options for {@linkcode LeastInFlightBalancer}.
 *
 * @example
 * ```ts
 * import type { LeastInFlightOptions } from "@nodewire/client/core";
 * const inFlight = new Map<string, number>();
 * const options: LeastInFlightOptions<string> = {
 *   inFlight: (node) => inFlight.get(node) ?? 0,
 * };
 * ```
 */
export interface LeastInFlightOptions<N> {
  /**
   * How many requests are in flight on `node` right now. Called at most
   * twice per pick, so it should be a field read, not a computation. One
   * that throws, or returns what cannot be compared (a Symbol), makes
   * `pick` throw an InvalidArgumentError naming it; a count that compares
   * wrongly (NaN) misranks its node.
   */
  inFlight: (node: N) => number;
  /**
   * The same loads by slot, for a set that keeps slots: when given, a pick
   * reads `loads[set.slotAt(position)]` instead of calling `inFlight` on
   * two node objects, which keeps it in cache among thousands of nodes.
   * The caller keeps it up to date (it is read, never written); it must
   * hold a count for each slot of the set (checked at construction, read
   * unchecked after that: a load written later that cannot be compared,
   * such as a Symbol or an index read that throws, makes `pick` throw an
   * InvalidArgumentError naming it; one that compares wrongly, NaN or
   * negative, misranks its node).
   */
  loads?: ArrayLike<number>;
  /** Uniform numbers in `[0, 1)`. Default `Math.random`. */
  random?: () => number;
}

/**
 * Power of two choices over requests in flight: of two distinct healthy
 * nodes, takes the one with fewer requests in flight. O(1) per pick, and
 * nearly as good as scanning every node for the least loaded: a node that
 * answers slowly keeps its requests longer, so it stops being chosen while
 * its load is above the others', without any timing or health signal.
 *
 * The two candidates are the next node in a rotation and a node drawn at
 * random among the others; on a tie the rotation's candidate wins. So
 * equal nodes with equal loads (an idle client, or one request at a time)
 * are visited strictly in turn, every one of them, as round-robin would,
 * rather than by coin flips that can leave a node without requests for a
 * while; the rotation starts at a random node, so that many clients do not
 * all begin with the same one. Under load the random candidate is what
 * lets the pick steer away from a busy node.
 *
 * @example
 * ```ts
 * import { HealthyNodeSet, LeastInFlightBalancer } from "@nodewire/client/core";
 * const load = new Map([["a", 5], ["b", 0]]);
 * const balancer = new LeastInFlightBalancer(new HealthyNodeSet(["a", "b"]), {
 *   inFlight: (node) => load.get(node) ?? 0,
 * });
 * balancer.pick(); // "b", the idle one
 * ```
 */
export class LeastInFlightBalancer<N> implements Balancer<N> {
  /** The set this balancer picks from. */
  readonly nodes: HealthyNodeSet<N>;
  readonly #inFlight: (node: N) => number;
  readonly #loads: ArrayLike<number> | undefined;
  readonly #candidates: Candidates;

  /**
   * Creates a balancer over `nodes`, which the caller keeps up to date.
   *
   * @throws {InvalidArgumentError} for a bad option: `loads` without a
   *   count for a slot of `nodes` (when it keeps slots), an `inFlight`
   *   or `random` that is no function.
   */
  constructor(nodes: HealthyNodeSet<N>, options: LeastInFlightOptions<N>) {
    const method = "new LeastInFlightBalancer()";
    this.nodes = nodeSet(method, nodes);
    const { inFlight, loads, random } = readOptions<typeof options>(
      method,
      options,
      LEAST_IN_FLIGHT,
      ["inFlight"],
    );
    if (nodes.hasSlots && loads !== undefined) {
      checkLoads(method, nodes, loads);
    }
    this.#inFlight = inFlight;
    this.#loads = nodes.hasSlots ? loads : undefined;
    this.#candidates = new Candidates(random, nodes.size);
  }

  /**
   * The less loaded of two nodes, neither of them `exclude` when possible.
   *
   * @throws {InvalidArgumentError} naming `options.loads[slot]` (or
   *   `options.loads`) when a load written after construction cannot be
   *   compared; naming `options.inFlight` when, without loads, that
   *   callback throws or returns what cannot be compared.
   */
  pick(exclude?: N): N | undefined {
    const nodes = this.nodes;
    const c = this.#candidates;
    const only = c.only(nodes);
    if (only !== undefined) return only;
    if (!c.drawFrom(nodes, exclude)) return undefined;
    const first = c.first;
    const second = c.second;
    if (second < 0) return nodes.at(first);
    const loads = this.#loads;
    if (loads !== undefined) {
      // Written after construction, a load that cannot be compared (a
      // Symbol, an object whose valueOf throws, an index read that
      // throws) threw raw from the pick. The try costs nothing until it
      // catches; a load that compares wrongly (NaN, negative) is not
      // looked for, which would cost every pick.
      try {
        return nodes.at(
          loads[nodes.slotAt(second)] < loads[nodes.slotAt(first)]
            ? second
            : first,
        );
      } catch (error) {
        throw loadsFailed("LeastInFlightBalancer.pick", nodes, loads, error);
      }
    }
    const x = nodes.at(first)!;
    const y = nodes.at(second)!;
    // As the loads: the caller's inFlight that throws, or returns what
    // cannot be compared (a Symbol, an object whose valueOf throws),
    // threw raw from the pick. The try costs nothing until it catches.
    try {
      return this.#inFlight(y) < this.#inFlight(x) ? y : x;
    } catch (error) {
      throw inFlightFailed(this.#inFlight, [x, y], error);
    }
  }
}

/**
 * The rules of {@linkcode LeastInFlightOptions}, for the balancer's
 * constructor and for `createBalancer`, which reads the options once.
 */
export const LEAST_IN_FLIGHT: Rules = {
  inFlight: func,
  loads: loadsRule,
  random: func,
};

/**
 * The error of a pick whose caller's `inFlight` threw `error`, as it was
 * called for `drawn` or as its counts were compared: an
 * InvalidArgumentError naming `options.inFlight`, with what it returned
 * when that is what could not be compared.
 */
function inFlightFailed<N>(
  inFlight: (node: N) => number,
  drawn: readonly N[],
  error: unknown,
): InvalidArgumentError {
  const method = "LeastInFlightBalancer.pick";
  const expected = "expected a function returning a count of requests in " +
    "flight for each node";
  for (const node of drawn) {
    let count: unknown;
    try {
      count = inFlight(node);
    } catch (thrown) {
      return refuse(
        method,
        "options.inFlight",
        inFlight,
        `${expected} (it threw ${messageOf(thrown)})`,
        thrown,
      );
    }
    if (typeof count === "symbol" || (count !== null && isObject(count))) {
      return refuse(
        method,
        "options.inFlight",
        count,
        `${expected} (it returned what cannot be compared)`,
        error,
      );
    }
  }
  // Fine again on this second look (a function that throws now and then).
  return refuse(
    method,
    "options.inFlight",
    inFlight,
    `${expected} (it threw ${messageOf(error)})`,
    error,
  );
}

/** Whether `value` is an object or a function (converted by valueOf). */
function isObject(value: unknown): boolean {
  return typeof value === "object" || typeof value === "function";
}
