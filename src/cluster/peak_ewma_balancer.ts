/**
 * The peak-EWMA strategy: {@linkcode PeakEwmaBalancer}, power of two
 * choices over `latency estimate × (in flight + 1)`, with its options and
 * their rules. The estimates it reads are peak_ewma.ts's; this file only
 * picks with them.
 *
 * @module
 */

import {
  func,
  is,
  readOptions,
  refuse,
  type Rules,
  timeSource,
} from "../config/options.ts";
import { clockFailed } from "../config/clock_failure.ts";
import { Candidates } from "./candidates.ts";
import type { HealthyNodeSet } from "./healthy_set.ts";
import { isPeakEwma, type PeakEwma, pickCost } from "./peak_ewma.ts";
import { type Balancer, nodeSet } from "./balancer_base.ts";
import { checkLoads, loadsFailed, loadsRule } from "./balancer_loads.ts";

/**
 * Options for {@linkcode PeakEwmaBalancer}.
 *
 * @example
 * ```ts
 * import { PeakEwma, type PeakEwmaOptions, systemClock } from "@nodewire/client/core";
 * const options: PeakEwmaOptions = {
 *   latency: new PeakEwma(3),
 *   loads: new Int32Array(3),
 *   clock: systemClock,
 * };
 * ```
 */
export interface PeakEwmaOptions {
  /** The latency estimates by slot, which the caller feeds with replies. */
  latency: PeakEwma;
  /**
   * Requests in flight by slot (read, never written): a count for each
   * slot of the set, checked at construction, read unchecked after that
   * (a load written later that cannot be priced, such as a Symbol, a
   * BigInt or an index read that throws, makes `pick` throw an
   * InvalidArgumentError naming it; NaN or a negative misprices its node).
   */
  loads: ArrayLike<number>;
  /**
   * The clock the estimates are stamped with; its `now()` must read a
   * finite number (checked at construction). A later reading that is none
   * counts as no reading: that pick decays no estimate; a `now()` that
   * throws makes the pick throw a `ConfigError` naming `clock`.
   */
  clock: { now(): number };
  /** Uniform numbers in `[0, 1)`. Default `Math.random`. */
  random?: () => number;
}

/**
 * Power of two choices over peak-EWMA cost: of two distinct healthy
 * nodes (the next in a rotation and one at random among the others, as
 * {@linkcode LeastInFlightBalancer} draws them), takes the one with the
 * lower `latency estimate × (in flight + 1)`; the rotation's on a tie.
 * O(1) per pick. The set must keep slots (`slotOf`).
 *
 * @example
 * ```ts
 * import { HealthyNodeSet, PeakEwma, PeakEwmaBalancer } from "@nodewire/client/core";
 * import { VirtualClock } from "@nodewire/client/testing";
 * const clock = new VirtualClock();
 * const latency = new PeakEwma(2);
 * latency.observe(0, 40, clock.now()); // a is slow
 * latency.observe(1, 1, clock.now());
 * const balancer = new PeakEwmaBalancer(
 *   new HealthyNodeSet(["a", "b"], { slotOf: (n) => (n === "a" ? 0 : 1) }),
 *   { latency, loads: new Int32Array(2), clock },
 * );
 * balancer.pick(); // "b"
 * ```
 */
export class PeakEwmaBalancer<N> implements Balancer<N> {
  /** The set this balancer picks from. */
  readonly nodes: HealthyNodeSet<N>;
  readonly #latency: PeakEwma;
  readonly #loads: ArrayLike<number>;
  readonly #clock: { now(): number };
  readonly #candidates: Candidates;

  /**
   * Creates a balancer over `nodes`, which the caller keeps up to date.
   *
   * @throws {InvalidArgumentError} when `nodes` keeps no slots, or for a
   *   bad option: a `clock` whose `now()` reads no finite number, `loads`
   *   without a count for a slot of `nodes`.
   */
  constructor(nodes: HealthyNodeSet<N>, options: PeakEwmaOptions) {
    const method = "new PeakEwmaBalancer()";
    if (!nodeSet(method, nodes).hasSlots) {
      throw refuse(method, "nodes", nodes, "expected a set with slots");
    }
    this.nodes = nodes;
    const { latency, loads, clock, random } = readOptions<typeof options>(
      method,
      options,
      PEAK_EWMA,
      ["latency", "loads", "clock"],
    );
    checkLoads(method, nodes, loads);
    this.#latency = latency;
    this.#loads = loads;
    this.#clock = clock;
    this.#candidates = new Candidates(random, nodes.size);
  }

  /**
   * The cheaper of two nodes, neither of them `exclude` when possible.
   *
   * @throws {ConfigError} naming `clock` when its `now()` throws.
   * @throws {InvalidArgumentError} naming `options.loads[slot]` (or
   *   `options.loads`) when a load written after construction cannot be
   *   priced.
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
    let now: number;
    try {
      now = this.#clock.now();
    } catch (error) {
      // A clock that throws once in use (checked once, at construction)
      // is named, not let out raw from a pick. The try costs nothing
      // until it catches.
      throw clockFailed(this.#clock, error);
    }
    // A reading that is no finite number (the clock was checked once, at
    // construction) is taken as no reading: NaN, under which nothing
    // decays. A BigInt threw a raw TypeError from the estimate, and
    // Infinity with an estimate that never decays gave NaN costs.
    if (typeof now !== "number" || now - now !== 0) now = NaN;
    const loads = this.#loads;
    const latency = this.#latency;
    const a = nodes.slotAt(first);
    const b = nodes.slotAt(second);
    // As LeastInFlightBalancer's: a load written after construction that
    // cannot be priced (a Symbol, a BigInt, a throwing read) is named.
    try {
      return nodes.at(
        pickCost(latency, b, loads[b], now) <
            pickCost(latency, a, loads[a], now)
          ? second
          : first,
      );
    } catch (error) {
      throw loadsFailed("PeakEwmaBalancer.pick", nodes, loads, error);
    }
  }
}

/**
 * The rules of {@linkcode PeakEwmaOptions}, for the balancer's
 * constructor and for `createBalancer`, which reads the options once.
 */
export const PEAK_EWMA: Rules = {
  // Once, here: a pick reads its fields, which a Proxy of one lacks.
  latency: is(
    (v) => isPeakEwma(v),
    "expected a PeakEwma (made by new PeakEwma())",
  ),
  loads: loadsRule,
  // Its reading too: a clock that read NaN, a string or a BigInt was
  // taken, and every pick then ignored decay or threw.
  clock: timeSource,
  random: func,
};
