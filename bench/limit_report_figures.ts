/**
 * The limit results as the limit report (`limit_report.ts`) reads them
 * back, and the lookups every part of the report shares: a cell by
 * section, contender, in-flight count and payload; the paired ratio of two
 * cells; a contender against its baseline, a transport against TCP; and
 * the markdown table they are all written as. Apart so that the targets,
 * tables and charts import these, not one another.
 *
 * @module
 */

import { pairedRatio } from "./harness.ts";
import type { CellFigures } from "./limit_measure.ts";
import type { Runtime } from "./scale/results.ts";

/**
 * One cell of bench/limit.bench.ts's output, as read back: files written
 * before 2026-12-06 have no `roundRates` (their ratios are of medians).
 */
export type Cell = Omit<CellFigures, "roundRates"> & { roundRates?: number[] };

/** One runtime's limit-<runtime>.json, as read back. */
export interface LimitRun {
  runtime: Runtime;
  version: string;
  /** CPU, kernel and date of the run (machineLabel); older files lack it. */
  machine?: string;
  quick: boolean;
  node: { kind: string; address: string; note: string };
  rounds: number;
  sections: Partial<Record<"tcp" | "udp" | "tls" | "large", Cell[]>>;
  skipped?: Record<string, string>;
}

/** The in-flight counts of the TCP grid. */
export const IN_FLIGHT = [1, 64, 256];
/** The TCP grid's contenders, in the order of the tables and charts. */
export const CONTENDERS = [
  "client",
  "batch",
  "promise",
  "batching",
  "floor",
] as const;
/** The contender each is measured against in "of baseline". */
export const BASELINE: Record<string, string> = {
  client: "promise",
  batch: "batching",
  floor: "batching",
};

/**
 * The cell of `contender` in `section`, at `inFlight` and `payloadBytes`
 * when given.
 */
export function cell(
  run: LimitRun,
  section: "tcp" | "udp" | "tls" | "large",
  contender: string,
  inFlight?: number,
  payloadBytes?: number,
): Cell | undefined {
  return run.sections[section]?.find((c) =>
    c.contender === contender &&
    (inFlight === undefined || c.inFlight === inFlight) &&
    (payloadBytes === undefined || c.payloadBytes === payloadBytes)
  );
}

/** Whether the run's cells keep their rounds' rates (see `pairedRatio`). */
export function hasRounds(run: LimitRun): boolean {
  return Object.values(run.sections).every((cells) =>
    cells.every((c) => c.roundRates !== undefined)
  );
}

/** req/s of `a` over `b` in the same section, in flight and payload. */
export function ratio(a?: Cell, b?: Cell): number | undefined {
  return a && b && b.reqPerSecond > 0 ? pairedRatio(a, b) : undefined;
}

/** The TCP cell's req/s as a share of its baseline's, if it has one. */
export function ofBaseline(run: LimitRun, c: Cell): number | undefined {
  const base = BASELINE[c.contender];
  return base === undefined
    ? undefined
    : ratio(c, cell(run, "tcp", base, c.inFlight, c.payloadBytes));
}

/** The transport's client against the client over TCP measured beside it. */
export function versusTcp(run: LimitRun, section: "udp" | "tls") {
  const tcp = cell(run, section, "client tcp");
  const other = cell(run, section, `client ${section}`);
  return { tcp, other, ratio: ratio(other, tcp) };
}
