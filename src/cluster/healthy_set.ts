/**
 * The set of healthy nodes the balancers pick from.
 *
 * The set changes rarely (a health transition) while picks happen on every
 * request, so the work is put on the change side: a
 * {@linkcode HealthyNodeSet} keeps its members in a dense array with an
 * index map, adds and removes in O(1) by swap-remove, and a balancer picks
 * by indexing into that array. No pick builds, filters or scans a list.
 *
 * With thousands of nodes the cost of a pick is memory, not arithmetic:
 * reading the load of two random node objects is two cache misses. So the
 * set can also keep each member's slot (a small integer) in a typed array,
 * and a balancer can read loads from a dense array by slot: a pick then
 * touches two small arrays, whatever the cluster size.
 *
 * Apart from the balancers because the manager keeps it up to date, while
 * they only read it.
 *
 * @module
 */

import { func, integer, readOptions, refuse } from "../config/options.ts";

/** A slot indexes typed arrays: an integer an Int32Array can hold. */
const SLOT = integer(0, 2 ** 31 - 1);

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

  /**
   * Adds `node`; returns false when it was already there. O(1).
   *
   * @throws what `slotOf` throws, or {@linkcode InvalidArgumentError}
   *   naming `slotOf` when the slot it gives is no integer from 0 to
   *   2^31 - 1; the set is left as it was either way.
   * @example
   * ```ts
   * import { HealthyNodeSet } from "@nodewire/client/core";
   * const hosts = ["a:7000", "b:7000"];
   * const healthy = new HealthyNodeSet<string>([], { slotOf: (h) => hosts.indexOf(h) });
   * healthy.add("b:7000");
   * console.log(healthy.slotAt(0)); // 1
   * ```
   */
  add(node: N): boolean {
    if (this.#index.has(node)) return false;
    // The slot first: a slotOf that throws leaves the set as it was.
    const slot = this.#slots !== undefined ? this.#slotOf!(node) : 0;
    // Stored as it came, NaN or "3" became slot 0 (another node's loads)
    // and 2^31 a wrapped number: the balancers read the wrong cell.
    const bad = SLOT(slot);
    if (bad) throw refuse("HealthyNodeSet.add", "slotOf", slot, bad);
    const position = this.#nodes.length;
    this.#index.set(node, position);
    this.#nodes.push(node);
    if (this.#slots !== undefined) {
      if (position === this.#slots.length) {
        const grown = new Int32Array(this.#slots.length * 2);
        grown.set(this.#slots);
        this.#slots = grown;
      }
      this.#slots[position] = slot;
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
