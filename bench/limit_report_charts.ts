/**
 * The charts of the limit report (`limit_report.ts`), drawn into
 * limit.svg by scale/svg.ts: per runtime, req/s and client CPU per request
 * against requests in flight, and the ratios against their targets.
 *
 * @module
 */

import {
  type Cell,
  cell,
  CONTENDERS,
  IN_FLIGHT,
  type LimitRun,
  ratio,
  versusTcp,
} from "./limit_report_figures.ts";
import type { Chart, Series } from "./scale/svg.ts";

/** One colour per contender in every panel; the raw baselines dashed. */
const STYLE: Record<string, { color: string; dashed?: boolean }> = {
  client: { color: "#1f77b4" },
  batch: { color: "#9467bd" },
  promise: { color: "#ff7f0e", dashed: true },
  batching: { color: "#7f7f7f", dashed: true },
  floor: { color: "#2ca02c", dashed: true },
  udp: { color: "#d62728" },
  tls: { color: "#8c564b" },
};

function contenderSeries(
  run: LimitRun,
  value: (c: Cell) => number,
): Series[] {
  return CONTENDERS.flatMap((contender) => {
    const points = IN_FLIGHT.flatMap((inFlight): [number, number][] => {
      const c = cell(run, "tcp", contender, inFlight, 16);
      return c ? [[inFlight, value(c)]] : [];
    });
    return points.length
      ? [{ name: contender, points, ...STYLE[contender] }]
      : [];
  });
}

function ratioChart(run: LimitRun): Chart {
  const share = (a: string, b: string): [number, number][] =>
    IN_FLIGHT.flatMap((inFlight): [number, number][] => {
      const r = ratio(
        cell(run, "tcp", a, inFlight, 16),
        cell(run, "tcp", b, inFlight, 16),
      );
      return r === undefined ? [] : [[inFlight, r * 100]];
    });
  const transport = (section: "udp" | "tls"): [number, number][] => {
    const r = versusTcp(run, section).ratio;
    return r === undefined ? [] : [[64, r * 100]];
  };
  const series: Series[] = [
    {
      name: "client/promise",
      points: share("client", "promise"),
      ...STYLE.client,
    },
    {
      name: "batch/batching",
      points: share("batch", "batching"),
      ...STYLE.batch,
    },
    {
      name: "floor/batching",
      points: share("floor", "batching"),
      ...STYLE.floor,
    },
    {
      name: "batch target 75%",
      points: [[1, 75], [256, 75]],
      color: STYLE.batch.color,
      dashed: true,
    },
    { name: "UDP/TCP (target 50%)", points: transport("udp"), ...STYLE.udp },
    { name: "TLS/TCP", points: transport("tls"), ...STYLE.tls },
  ];
  return {
    title: `Targets, ${run.version}, 16 B`,
    xLabel: "requests in flight",
    yLabel: "% of baseline req/s",
    xLog: true,
    series: series.filter((s) => s.points.length > 0),
    reference: { y: 85, label: "client, TLS target 85%" },
  };
}

/** Every chart of limit.svg: a column per run. */
export function charts(runs: readonly LimitRun[]): Chart[] {
  const quick = (run: LimitRun) => (run.quick ? " (QUICK)" : "");
  return [
    ...runs.map((run): Chart => ({
      title: `req/s, ${run.version}, 16 B${quick(run)}`,
      xLabel: "requests in flight",
      yLabel: "requests / s",
      xLog: true,
      yLog: true,
      series: contenderSeries(run, (c) => c.reqPerSecond),
    })),
    ...runs.map((run): Chart => ({
      title: `CPU per request, ${run.version}, 16 B${quick(run)}`,
      xLabel: "requests in flight",
      yLabel: "client CPU µs / request",
      xLog: true,
      yLog: true,
      series: contenderSeries(run, (c) => c.cpuUsPerRequest),
    })),
    ...runs.map(ratioChart),
  ];
}
