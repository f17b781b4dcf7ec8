/**
 * The loads a balancer reads by slot (requests in flight, in a dense
 * array the caller keeps): their rule, their check at construction, and
 * the error of a pick that could not read or weigh them. Shared by the
 * least-in-flight and the peak-EWMA balancers, which read them alike.
 *
 * @module
 */

import { integer, is, refuse } from "../config/options.ts";
import { type InvalidArgumentError, messageOf } from "../errors.ts";
import type { HealthyNodeSet } from "./healthy_set.ts";

/**
 * The rule for a balancer's `loads` option. Loads are read on every
 * pick: an array of them, checked once here (and their counts against
 * the set by {@linkcode checkLoads}).
 */
export const loadsRule = is(
  (v) => typeof (v as ArrayLike<number>)?.length === "number",
  "expected an array of loads",
);

const COUNT = integer(0);

/**
 * Refuses `loads` that hold no count of requests for a slot of `nodes`:
 * a pick reads `loads[slot]` unchecked, and a missing or NaN load made a
 * NaN cost (peak EWMA) or a node never less loaded, a negative one a
 * node chosen at every pick (both balancers).
 */
export function checkLoads<N>(
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
export function loadsFailed<N>(
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
