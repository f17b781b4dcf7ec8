/**
 * The charts of the scale report (`report.ts`), drawn into scale.svg by
 * svg.ts: throughput and p99 by requests in flight, health sweeps and node
 * picks by node count, a line per runtime in its own colour.
 *
 * @module
 */

import {
  type InFlightData,
  type RealNodesData,
  section,
  type SimulatedData,
} from "./report_data.ts";
import type { Runtime, RuntimeResults } from "./results.ts";
import type { Chart, Series } from "./svg.ts";

const COLORS: Record<Runtime, string> = {
  deno: "#1f77b4",
  bun: "#e6820e",
  node: "#2ca02c",
};

/** The report's four charts over every runtime's results. */
export function charts(all: readonly RuntimeResults[]): Chart[] {
  const inFlight = (f: (l: InFlightData["levels"][number]) => number) =>
    all.map((r): Series => ({
      name: r.runtime,
      color: COLORS[r.runtime],
      points: section<InFlightData>(r, "inFlight")?.levels.map((
        l,
      ) => [l.inFlight, f(l)]) ?? [],
    }));
  const sweeps: Series[] = all.flatMap((r) => [
    {
      name: `${r.runtime}, loopback`,
      color: COLORS[r.runtime],
      points: section<RealNodesData>(r, "realNodes")?.sizes.map((
        s,
      ) => [s.nodes, s.sweepMs]) ?? [],
    },
    {
      name: `${r.runtime}, simulated`,
      color: COLORS[r.runtime],
      dashed: true,
      points: section<SimulatedData>(r, "simulatedNodes")?.sweeps.map((
        s,
      ) => [s.nodes, s.sweepMs]) ?? [],
    },
  ]);
  const picks: Series[] = all.flatMap((r) =>
    (["round-robin", "least-in-flight"] as const).map((strategy) => ({
      name: `${r.runtime}, ${strategy}`,
      color: COLORS[r.runtime],
      dashed: strategy === "least-in-flight",
      points: section<SimulatedData>(r, "simulatedNodes")?.picks.filter((p) =>
        p.strategy === strategy
      ).map((p): [number, number] => [p.nodes, p.nsPerPick]) ?? [],
    }))
  );
  return [
    {
      title: "Throughput, 8 connections",
      xLabel: "requests in flight",
      yLabel: "requests / s",
      xLog: true,
      series: inFlight((l) => l.throughput),
    },
    {
      title: "p99 latency, 8 connections",
      xLabel: "requests in flight",
      yLabel: "ms",
      xLog: true,
      yLog: true,
      series: inFlight((l) => l.p99Ms),
    },
    {
      title: "Full health sweep (16 checks at a time)",
      xLabel: "nodes",
      yLabel: "ms",
      xLog: true,
      yLog: true,
      series: sweeps,
    },
    {
      title: "Choosing a node",
      xLabel: "healthy nodes",
      yLabel: "ns per pick",
      xLog: true,
      series: picks,
    },
  ];
}
