/**
 * The targets of the limit report (`limit_report.ts`): the issue's
 * must-show figures, each checked against every runtime's run (met or
 * not), and two ceilings shown beside them that are not targets.
 *
 * @module
 */

import { fixed, percent, table } from "./harness.ts";
import {
  cell,
  type LimitRun,
  ratio,
  versusTcp,
} from "./limit_report_figures.ts";

interface Target {
  name: string;
  /** The figure as shown and whether it meets the target; undefined: not measured. */
  check(run: LimitRun): [string, boolean] | undefined;
}

const shareTarget = (
  a: string,
  b: string,
  inFlight: number,
  least: number,
): Target => ({
  name: `${a} ≥ ${least * 100}% of ${b} req/s, ${inFlight} in flight, 16 B`,
  check(run) {
    const r = ratio(
      cell(run, "tcp", a, inFlight, 16),
      cell(run, "tcp", b, inFlight, 16),
    );
    return r === undefined ? undefined : [percent(r), r >= least];
  },
});

/**
 * Not a target: how far the batch shape's floor reaches (the raw batching
 * client handing out a view and a result object per reply), the most a
 * batch API returning one result per request can reach; "met" when it
 * leaves room for the batch target.
 */
const floorRow = (inFlight: number): Target => ({
  name: `(the ceiling: floor of batching req/s, ${inFlight} in flight, 16 B)`,
  check(run) {
    const r = ratio(
      cell(run, "tcp", "floor", inFlight, 16),
      cell(run, "tcp", "batching", inFlight, 16),
    );
    return r === undefined ? undefined : [percent(r), r >= 0.75];
  },
});

const TARGETS: Target[] = [
  shareTarget("client", "promise", 64, 0.85),
  shareTarget("client", "promise", 256, 0.85),
  {
    name: "sequential (1 in flight, 16 B): client p50 within 5 µs of promise's",
    check(run) {
      const c = cell(run, "tcp", "client", 1, 16)?.p50Us;
      const p = cell(run, "tcp", "promise", 1, 16)?.p50Us;
      if (c == null || p == null) return undefined;
      const d = c - p;
      return [
        `${fixed(c, 1)} vs ${fixed(p, 1)} µs (${d >= 0 ? "+" : ""}${
          fixed(d, 1)
        })`,
        d <= 5,
      ];
    },
  },
  shareTarget("batch", "batching", 64, 0.75),
  shareTarget("batch", "batching", 256, 0.75),
  floorRow(64),
  floorRow(256),
  {
    name: "UDP ≥ 50% of TCP req/s, 64 in flight",
    check(run) {
      const r = versusTcp(run, "udp").ratio;
      return r === undefined ? undefined : [percent(r), r >= 0.5];
    },
  },
  {
    name: "UDP p50 < 300 µs, 64 in flight",
    check(run) {
      const p = versusTcp(run, "udp").other?.p50Us;
      return p == null ? undefined : [`${fixed(p, 1)} µs`, p < 300];
    },
  },
  {
    name: "TLS ≥ 85% of TCP req/s, 64 in flight",
    check(run) {
      const r = versusTcp(run, "tls").ratio;
      return r === undefined ? undefined : [percent(r), r >= 0.85];
    },
  },
  {
    name: "(the ceiling: the runtime's own TLS, raw TLS/raw TCP)",
    check(run) {
      const r = ratio(
        cell(run, "tls", "raw tls"),
        cell(run, "tls", "raw tcp"),
      );
      return r === undefined ? undefined : [percent(r), r >= 0.85];
    },
  },
];

/** The targets against every run, a column per runtime. */
export function targetTable(runs: readonly LimitRun[]): string {
  return table(
    ["target", ...runs.map((r) => r.version)],
    TARGETS.map((t) => [
      t.name,
      ...runs.map((run) => {
        const v = t.check(run);
        return v === undefined
          ? "-"
          : `${v[0]} (${v[1] ? "met" : "**not met**"})`;
      }),
    ]),
  );
}
