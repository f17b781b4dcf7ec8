/**
 * The two candidates of a power-of-two-choices pick, drawn without
 * allocating. Apart from the balancers because two of them share it, and
 * its arithmetic (the rotation, the holes stepped over) reads on its own.
 *
 * @module
 */

import type { HealthyNodeSet } from "./healthy_set.ts";

/**
 * The two candidates of a power-of-two-choices pick, shared by the
 * balancers that weigh them: the next position in rotation (so equal nodes
 * are visited strictly in turn) and one other drawn uniformly at random.
 * The result is left in two fields, so a pick allocates nothing.
 */
export class Candidates {
  /** The rotation's candidate of the last draw. */
  first = 0;
  /** The random candidate of the last draw; -1 when there was none. */
  second = -1;
  readonly #random: () => number;
  /** The rotation's next position; may exceed the size after removals. */
  #next: number;

  /**
   * Draws with `random` (default `Math.random`); the rotation starts at a
   * random position below `size`.
   */
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

  /**
   * The node of `nodes` when it holds exactly one, with the state a draw
   * from one leaves; undefined otherwise. The only choice, whatever a pick
   * excludes (as a draw from one has it), and nothing drawn: the draw is a
   * call each balancer's pick would pay on the request path for nothing.
   */
  only<N>(nodes: HealthyNodeSet<N>): N | undefined {
    if (nodes.size !== 1) return undefined;
    this.drawnFromOne();
    return nodes.at(0);
  }

  /** What {@linkcode Candidates.draw} leaves after a draw from one. */
  drawnFromOne(): void {
    this.#next = 0;
    this.first = 0;
    this.second = -1;
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
