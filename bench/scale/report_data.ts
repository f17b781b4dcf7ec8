/**
 * What the scale report (`report.ts`) reads and how it writes a figure:
 * the shape of each section of bench/results/scale-<runtime>.json as the
 * report reads it back, and the markdown table and byte formatting that
 * its tables, targets and notes share. Apart so that each part of the
 * report imports only these, not one another.
 *
 * @module
 */

import { fixed, int } from "../harness.ts";
import type { RuntimeResults } from "./results.ts";

/** The `inFlight` section (in_flight.ts). */
export interface InFlightData {
  connections: number;
  node: string;
  rounds: number;
  topVs256: number;
  levels: {
    inFlight: number;
    throughput: number;
    p50Ms: number;
    p99Ms: number;
    cpuUsPerRequest: number;
  }[];
}

/** The `memory` section (memory.ts). */
export interface MemoryData {
  forcedGc: boolean;
  idle: {
    connections: number;
    jsPerConnection: number;
    externalPerConnection: number;
  };
  inFlight: {
    requests: number;
    client: { js: number; external: number };
    connection: { js: number; external: number };
    benchThen: number;
  };
}

/** The `realNodes` section (real_nodes.ts). */
export interface RealNodesData {
  processes: number;
  sizes: {
    nodes: number;
    connections: number;
    connectMs: number;
    readyMs: number;
    sweepMs: number;
    jsBytes: number;
    externalBytes: number;
  }[];
}

/** The `simulatedNodes` section (simulated_nodes.ts). */
export interface SimulatedData {
  sweeps: {
    nodes: number;
    connectMs: number;
    sweepMs: number;
    sweepUsPerNode: number;
    usPerRequest: number;
    usPerRequestAlone: number;
  }[];
  picks: { strategy: string; nodes: number; nsPerPick: number }[];
}

/** The `massFailure` section (mass_failure.ts). */
export interface MassFailureData {
  rows: {
    layer: string;
    trigger: string;
    counts: number[];
    usPerRequest: number[];
  }[];
}

/** A runtime's section `name`, if it was measured. */
export function section<T>(r: RuntimeResults, name: string): T | undefined {
  return r.sections[name]?.data as T | undefined;
}

/** Bytes as `1,234 B` or `12.3 KiB`; "-" when not measured. */
export const bytes = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n)
    ? "-"
    : Math.abs(n) >= 10_240
    ? `${fixed(n / 1024, 1)} KiB`
    : `${int(n)} B`;
