/**
 * Choosing a node for a request among the healthy ones: the strategies
 * (round-robin, least in flight, peak EWMA) and `createBalancer`, which
 * builds the one a config names.
 *
 * Picks happen on every request, so a pick only indexes into the
 * {@linkcode HealthyNodeSet} (`healthy_set.ts`), where the work of keeping
 * it is done on the change side; with a set that keeps slots, the
 * least-in-flight and peak-EWMA balancers read loads from a dense array
 * by slot, so a pick touches two small arrays, whatever the cluster size.
 *
 * @module
 */

import {
  func,
  integer,
  is,
  readOptions,
  refuse,
  type Rules,
  timeSource,
} from "../config/options.ts";
import { clockFailed, oneOf } from "../config/validate.ts";
import { type InvalidArgumentError, messageOf } from "../errors.ts";
import type { LoadBalancing } from "../config/shapes.ts";
import { systemClock } from "../clock.ts";
import { Candidates } from "./candidates.ts";
import { HealthyNodeSet } from "./healthy_set.ts";
import { isPeakEwma, type PeakEwma, pickCost } from "./peak_ewma.ts";

// Re-exported: the set began in this file, and `core.ts` and the tests
// take it from here, beside the balancers that read it.
export { HealthyNodeSet };

/** The strategies `createBalancer` knows, as the config's rule has them. */
const LOAD_BALANCING = oneOf(["round-robin", "least-in-flight", "peak-ewma"]);

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

// Loads are read on every pick: an array of them, checked once here.
const loads = is(
  (v) => typeof (v as ArrayLike<number>)?.length === "number",
  "expected an array of loads",
);
const LEAST_IN_FLIGHT: Rules = { inFlight: func, loads, random: func };
const PEAK_EWMA: Rules = {
  // Once, here: a pick reads its fields, which a Proxy of one lacks.
  latency: is(
    (v) => isPeakEwma(v),
    "expected a PeakEwma (made by new PeakEwma())",
  ),
  loads,
  // Its reading too: a clock that read NaN, a string or a BigInt was
  // taken, and every pick then ignored decay or threw.
  clock: timeSource,
  random: func,
};

const COUNT = integer(0);

/**
 * Refuses `loads` that hold no count of requests for a slot of `nodes`:
 * a pick reads `loads[slot]` unchecked, and a missing or NaN load made a
 * NaN cost (peak EWMA) or a node never less loaded, a negative one a
 * node chosen at every pick (both balancers).
 */
function checkLoads<N>(
  method: string,
  nodes: HealthyNodeSet<N>,
  loads: ArrayLike<number>,
): void {
  for (let i = 0; i < nodes.size; i++) {
    const slot = nodes.slotAt(i);
    let load: unknown;
    try {
      load = loads[slot];
    } catch (error) {
      // A proxy whose index read throws: raw, the caller could not tell
      // which argument was wrong.
      throw refuse(
        method,
        `options.loads[${slot}]`,
        loads,
        `could not be read (${messageOf(error)})`,
        error,
      );
    }
    if (COUNT(load) !== undefined) {
      throw refuse(
        method,
        `options.loads[${slot}]`,
        load,
        "expected a count of requests (an integer ≥ 0) for each slot of " +
          "the set",
      );
    }
  }
}

/**
 * What a pick that threw `error` as it read or weighed its loads throws:
 * the InvalidArgumentError naming the first slot of `nodes` whose load is
 * no count (see checkLoads), or, when each reads as one now (an index
 * read that throws now and then), naming the loads. Only they can throw
 * there: the rest is arithmetic on the set's and the estimates' arrays.
 */
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

function loadsFailed<N>(
  method: string,
  nodes: HealthyNodeSet<N>,
  loads: ArrayLike<number>,
  error: unknown,
): InvalidArgumentError {
  try {
    checkLoads(method, nodes, loads);
  } catch (refused) {
    return refused as InvalidArgumentError;
  }
  return refuse(
    method,
    "options.loads",
    loads,
    `could not be read or weighed (${messageOf(error)})`,
    error,
  );
}

/** `nodes`, when it is a HealthyNodeSet: a pick reads it every time. */
function nodeSet<N>(method: string, nodes: HealthyNodeSet<N>) {
  if (nodes instanceof HealthyNodeSet) return nodes;
  throw refuse(method, "nodes", nodes, "expected a HealthyNodeSet");
}

/**
 * Creates the balancer a {@linkcode LoadBalancing} setting names.
 * `inFlight` is required for `"least-in-flight"`; `latency` and `loads`
 * (and a set that keeps slots) for `"peak-ewma"`, whose `clock` defaults
 * to the system clock.
 *
 * @throws {InvalidArgumentError} for an unknown strategy, a missing or
 *   bad option.
 * @example
 * ```ts
 * import { createBalancer, HealthyNodeSet } from "@nodewire/client/core";
 * const healthy = new HealthyNodeSet(["a:7000", "b:7000"]);
 * const balancer = createBalancer("least-in-flight", healthy, { inFlight: () => 0 });
 * balancer.pick();
 * ```
 */
export function createBalancer<N>(
  strategy: LoadBalancing,
  nodes: HealthyNodeSet<N>,
  options: Partial<LeastInFlightOptions<N>> & Partial<PeakEwmaOptions> = {},
): Balancer<N> {
  const method = "createBalancer";
  const expected = LOAD_BALANCING(strategy);
  if (expected) throw refuse(method, "strategy", strategy, expected);
  // Read once, here; the balancer's constructor checks the copy.
  const { inFlight, loads, latency, clock = systemClock, random } = readOptions<
    typeof options
  >(method, options, {
    ...LEAST_IN_FLIGHT,
    ...PEAK_EWMA,
  });
  const peak = strategy === "peak-ewma";
  return strategy === "round-robin"
    ? new RoundRobinBalancer(nodes)
    : peak
    ? new PeakEwmaBalancer(nodes, {
      latency: latency!,
      loads: loads!,
      clock,
      random,
    })
    : new LeastInFlightBalancer(nodes, { inFlight: inFlight!, loads, random });
}
