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
 * Each strategy is in a file of its own (`round_robin.ts`,
 * `least_in_flight.ts`, `peak_ewma_balancer.ts`, over `balancer_base.ts`
 * and the load checks of `balancer_loads.ts`); this one names them all,
 * for `core.ts` and the cluster, and holds `createBalancer`.
 *
 * @module
 */

import { readOptions, refuse } from "../config/options.ts";
import { oneOf } from "../config/validate.ts";
import type { LoadBalancing } from "../config/shapes.ts";
import { systemClock } from "../clock.ts";
import { HealthyNodeSet } from "./healthy_set.ts";
import type { Balancer } from "./balancer_base.ts";
import { RoundRobinBalancer } from "./round_robin.ts";
import {
  LEAST_IN_FLIGHT,
  LeastInFlightBalancer,
  type LeastInFlightOptions,
} from "./least_in_flight.ts";
import {
  PEAK_EWMA,
  PeakEwmaBalancer,
  type PeakEwmaOptions,
} from "./peak_ewma_balancer.ts";

// Re-exported: the set began in this file, and `core.ts` and the tests
// take it from here, beside the balancers that read it.
export { HealthyNodeSet };

// Re-exported: every strategy is named from here, by `core.ts`, the
// registry and the tests, beside `createBalancer`; each lives in a file
// of its own.
export type { Balancer, LeastInFlightOptions, PeakEwmaOptions };
export { LeastInFlightBalancer, PeakEwmaBalancer, RoundRobinBalancer };

/** The strategies `createBalancer` knows, as the config's rule has them. */
const LOAD_BALANCING = oneOf(["round-robin", "least-in-flight", "peak-ewma"]);

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
