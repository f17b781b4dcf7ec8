/**
 * Choosing a node for a request among the healthy ones.
 *
 * The set of healthy nodes changes rarely (a health transition) while picks
 * happen on every request, so the work is put on the change side: a
 * {@linkcode HealthyNodeSet} keeps its members in a dense array with an
 * index map, adds and removes in O(1) by swap-remove, and a balancer picks
 * by indexing into that array. No pick builds, filters or scans a list.
 *
 * With thousands of nodes the cost of a pick is memory, not arithmetic:
 * reading the load of two random node objects is two cache misses. So the
 * set can also keep each member's slot (a small integer) in a typed array,
 * and the least-in-flight balancer can read loads from a dense array by
 * slot: a pick then touches two small arrays, whatever the cluster size.
 *
 * @module
 */

import {
  func,
  is,
  methods,
  readOptions,
  refuse,
  type Rules,
} from "../config/options.ts";
import { oneOf } from "../config/validate.ts";
import type { LoadBalancing } from "../config/shapes.ts";
import { systemClock } from "../clock.ts";
import { PeakEwma } from "./peak_ewma.ts";

/** The strategies `createBalancer` knows, as the config's rule has them. */
const LOAD_BALANCING = oneOf(["round-robin", "least-in-flight", "peak-ewma"]);

/**
 * A set of nodes with O(1) add, remove, membership and random access by
 * position. The manager keeps one up to date as node health changes; the
 * balancers read it on every pick.
 *
 * Positions are not stable: removing a node moves the last one into its
 * place. That is what keeps removal O(1), and the balancers do not depend on
 * order.
 *
 * @typeParam N the node type; compared by identity (`Map` semantics).
 * @example
 * ```ts
 * import { HealthyNodeSet } from "@nodewire/client/core";
 * const healthy = new HealthyNodeSet(["a:7000", "b:7000", "c:7000"]);
 * healthy.delete("b:7000"); // b failed its health checks
 * console.log(healthy.size, healthy.has("b:7000")); // 2 false
 * healthy.add("b:7000"); // and came back
 * ```
 */
export class HealthyNodeSet<N> {
  readonly #nodes: N[] = [];
  readonly #index = new Map<N, number>();
  readonly #slotOf: ((node: N) => number) | undefined;
  // Each member's slot, by position; kept only when `slotOf` is given.
  #slots: Int32Array | undefined;

  /**
   * Creates a set holding `nodes` (duplicates are ignored). With `slotOf`,
   * the set also keeps each member's slot (a non-negative integer fixed
   * for the node, such as its index in the configured hosts) by position,
   * for {@linkcode HealthyNodeSet.slotAt}; it is called once per add.
   */
  constructor(
    nodes: Iterable<N> = [],
    options: { slotOf?: (node: N) => number } = {},
  ) {
    const method = "new HealthyNodeSet()";
    // Read once and checked here: a slotOf that is no function would
    // otherwise fail the add of a node, long after.
    this.#slotOf = readOptions<typeof options>(method, options, {
      slotOf: func,
    }).slotOf;
    if (this.#slotOf) this.#slots = new Int32Array(8);
    try {
      for (const node of nodes) this.add(node);
    } catch (cause) {
      // Not iterable, a revoked proxy, an iterator (or slotOf) that threw.
      throw refuse(method, "nodes", nodes, "could not be read", cause);
    }
  }

  /** Whether the set keeps slots (it was given `slotOf`). */
  get hasSlots(): boolean {
    return this.#slots !== undefined;
  }

  /** How many nodes the set holds. */
  get size(): number {
    return this.#nodes.length;
  }

  /** Adds `node`; returns false when it was already there. O(1). */
  add(node: N): boolean {
    if (this.#index.has(node)) return false;
    const position = this.#nodes.length;
    this.#index.set(node, position);
    this.#nodes.push(node);
    if (this.#slots !== undefined) {
      if (position === this.#slots.length) {
        const grown = new Int32Array(this.#slots.length * 2);
        grown.set(this.#slots);
        this.#slots = grown;
      }
      this.#slots[position] = this.#slotOf!(node);
    }
    return true;
  }

  /** Removes `node`; returns false when it was not there. O(1). */
  delete(node: N): boolean {
    const i = this.#index.get(node);
    if (i === undefined) return false;
    const last = this.#nodes.pop()!;
    this.#index.delete(node);
    if (last !== node) {
      // Fill the hole with the former last element.
      this.#nodes[i] = last;
      this.#index.set(last, i);
      if (this.#slots) this.#slots[i] = this.#slots[this.#nodes.length];
    }
    return true;
  }

  /** Whether `node` is in the set. O(1). */
  has(node: N): boolean {
    return this.#index.has(node);
  }

  /** Position of `node`, or -1. O(1). */
  indexOf(node: N): number {
    return this.#index.get(node) ?? -1;
  }

  /**
   * The node at `position`, `0 <= position < size`; `undefined` outside.
   * Positions change when nodes are removed.
   */
  at(position: number): N | undefined {
    return this.#nodes[position];
  }

  /**
   * The slot of the node at `position` (see the constructor's `slotOf`),
   * read from a typed array without touching the node; -1 when the set
   * keeps no slots or `position` is out of range.
   */
  slotAt(position: number): number {
    return this.#slots !== undefined && position >= 0 &&
        position < this.#nodes.length
      ? this.#slots[position]
      : -1;
  }

  /** Removes every node. */
  clear(): void {
    this.#nodes.length = 0;
    this.#index.clear();
  }

  /** A copy of the members, in position order. */
  toArray(): N[] {
    return this.#nodes.slice();
  }

  /** Iterates over the members, in position order. */
  [Symbol.iterator](): IterableIterator<N> {
    return this.#nodes.values();
  }
}

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
   * twice per pick, so it should be a field read, not a computation.
   */
  inFlight: (node: N) => number;
  /**
   * The same loads by slot, for a set that keeps slots: when given, a pick
   * reads `loads[set.slotAt(position)]` instead of calling `inFlight` on
   * two node objects, which keeps it in cache among thousands of nodes.
   * The caller keeps it up to date (it is read, never written).
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

  /** Creates a balancer over `nodes`, which the caller keeps up to date. */
  constructor(nodes: HealthyNodeSet<N>, options: LeastInFlightOptions<N>) {
    const method = "new LeastInFlightBalancer()";
    this.nodes = nodeSet(method, nodes);
    const { inFlight, loads, random } = readOptions<typeof options>(
      method,
      options,
      LEAST_IN_FLIGHT,
      ["inFlight"],
    );
    this.#inFlight = inFlight;
    this.#loads = nodes.hasSlots ? loads : undefined;
    this.#candidates = new Candidates(random, nodes.size);
  }

  /** The less loaded of two nodes, neither of them `exclude` when possible. */
  pick(exclude?: N): N | undefined {
    const nodes = this.nodes;
    const c = this.#candidates;
    if (!c.drawFrom(nodes, exclude)) return undefined;
    const first = c.first;
    const second = c.second;
    if (second < 0) return nodes.at(first);
    const loads = this.#loads;
    if (loads !== undefined) {
      return nodes.at(
        loads[nodes.slotAt(second)] < loads[nodes.slotAt(first)]
          ? second
          : first,
      );
    }
    const x = nodes.at(first)!;
    const y = nodes.at(second)!;
    return this.#inFlight(y) < this.#inFlight(x) ? y : x;
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
  /** Requests in flight by slot (read, never written). */
  loads: ArrayLike<number>;
  /** The clock the estimates are stamped with. */
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
   *   bad option.
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
    this.#latency = latency;
    this.#loads = loads;
    this.#clock = clock;
    this.#candidates = new Candidates(random, nodes.size);
  }

  /** The cheaper of two nodes, neither of them `exclude` when possible. */
  pick(exclude?: N): N | undefined {
    const nodes = this.nodes;
    const c = this.#candidates;
    if (!c.drawFrom(nodes, exclude)) return undefined;
    const first = c.first;
    const second = c.second;
    if (second < 0) return nodes.at(first);
    const now = this.#clock.now();
    const loads = this.#loads;
    const latency = this.#latency;
    const a = nodes.slotAt(first);
    const b = nodes.slotAt(second);
    return nodes.at(
      latency.cost(b, loads[b], now) < latency.cost(a, loads[a], now)
        ? second
        : first,
    );
  }
}

// Loads are read on every pick: an array of them, checked once here.
const loads = is(
  (v) => typeof (v as ArrayLike<number>)?.length === "number",
  "expected an array of loads",
);
const LEAST_IN_FLIGHT: Rules = { inFlight: func, loads, random: func };
const PEAK_EWMA: Rules = {
  latency: is((v) => v instanceof PeakEwma, "expected a PeakEwma"),
  loads,
  clock: methods("now"),
  random: func,
};

/** `nodes`, when it is a HealthyNodeSet: a pick reads it every time. */
function nodeSet<N>(method: string, nodes: HealthyNodeSet<N>) {
  if (nodes instanceof HealthyNodeSet) return nodes;
  throw refuse(method, "nodes", nodes, "expected a HealthyNodeSet");
}

/**
 * The two candidates of a power-of-two-choices pick, shared by the
 * balancers that weigh them: the next position in rotation (so equal nodes
 * are visited strictly in turn) and one other drawn uniformly at random.
 * The result is left in two fields, so a pick allocates nothing.
 */
class Candidates {
  /** The rotation's candidate of the last draw. */
  first = 0;
  /** The random candidate of the last draw; -1 when there was none. */
  second = -1;
  readonly #random: () => number;
  /** The rotation's next position; may exceed the size after removals. */
  #next: number;

  constructor(random: (() => number) | undefined, size: number) {
    this.#random = random ?? Math.random;
    this.#next = this.#uniform(Math.max(1, size));
  }

  /**
   * Draws two positions of `nodes`, neither of them `exclude`'s when
   * another is there; false when `nodes` is empty.
   */
  drawFrom<N>(nodes: HealthyNodeSet<N>, exclude: N | undefined): boolean {
    const size = nodes.size;
    if (size === 0) return false;
    this.draw(
      size,
      exclude === undefined || size === 1 ? -1 : nodes.indexOf(exclude),
    );
    return true;
  }

  /** Draws two positions below `size`, neither of them `skip` (-1: none). */
  draw(size: number, skip: number): void {
    let first = this.#next < size ? this.#next : this.#next % size;
    if (first === skip) first = first + 1 === size ? 0 : first + 1;
    this.#next = first + 1 === size ? 0 : first + 1;
    this.first = first;
    // The other candidate: uniform over the positions that are neither
    // `first` nor `skip`, drawn from a range that short and stepped over
    // the holes in increasing order, so nothing is filtered.
    const others = skip < 0 ? size - 1 : size - 2;
    if (others <= 0) {
      this.second = -1;
      return;
    }
    let second = this.#uniform(others);
    const low = skip < 0 || first < skip ? first : skip;
    const high = skip < 0 ? size : first < skip ? skip : first;
    if (second >= low) second++;
    if (second >= high) second++;
    this.second = second;
  }

  /** A uniform integer in `[0, n)`, safe against a generator returning 1. */
  #uniform(n: number): number {
    const i = Math.floor(this.#random() * n);
    return i < n ? (i >= 0 ? i : 0) : n - 1;
  }
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
