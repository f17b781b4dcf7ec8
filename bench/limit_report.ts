/**
 * Turns the limit results of every runtime (bench/results/limit-*.json, as
 * written by `BENCH_OUT=bench/results/limit-<runtime>.json` with
 * bench/limit.bench.ts) into bench/results/limit.md (a table per runtime
 * and the issue's targets across runtimes) and bench/results/limit.svg
 * (req/s and CPU per request against requests in flight, and the ratios
 * against their targets, one column per runtime).
 *
 *   node_modules/.bin/deno run -A bench/limit_report.ts
 *   node_modules/.bin/bun bench/limit_report.ts
 *   node --import tsx bench/limit_report.ts
 *
 * BENCH_RESULTS_DIR=dir reads and writes `dir` instead (BENCH_QUICK=1:
 * bench/results/quick/). A runtime without a file is left out with a note.
 *
 * @module
 */

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  env,
  fixed,
  int,
  orDash,
  pairedRatio,
  percent,
  QUICK,
  sizeLabel,
} from "./harness.ts";
import type { CellFigures } from "./limit_measure.ts";
import { type Runtime, RUNTIMES } from "./scale/results.ts";
import { type Chart, type Series, svgDocument } from "./scale/svg.ts";

/**
 * One cell of bench/limit.bench.ts's output, as read back: files written
 * before 2026-12-06 have no `roundRates` (their ratios are of medians).
 */
type Cell = Omit<CellFigures, "roundRates"> & { roundRates?: number[] };

interface LimitRun {
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

const IN_FLIGHT = [1, 64, 256];
const GRID_SIZES = [16, 1024];
const LARGE_SIZES = [1024, 64 * 1024, 1024 * 1024];
const CONTENDERS = ["client", "batch", "promise", "batching", "floor"] as const;
/** The contender each is measured against in "of baseline". */
const BASELINE: Record<string, string> = {
  client: "promise",
  batch: "batching",
  floor: "batching",
};
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

const dir = env("BENCH_RESULTS_DIR")?.replace(/\/?$/, "/") ??
  fileURLToPath(
    new URL(QUICK ? "./results/quick/" : "./results/", import.meta.url),
  );

const runs: LimitRun[] = [];
const missing: string[] = [];
for (const runtime of RUNTIMES) {
  const file = `${dir}limit-${runtime}.json`;
  if (!existsSync(file)) {
    missing.push(`${runtime}: no \`limit-${runtime}.json\`, left out`);
    console.error(`note: ${file} does not exist; ${runtime} left out`);
    continue;
  }
  const run = JSON.parse(readFileSync(file, "utf8")) as LimitRun;
  // The file name decides the column, whatever runtime wrote the file.
  runs.push({ ...run, runtime });
}
if (runs.length === 0) {
  throw new Error(
    `no limit-<runtime>.json in ${dir}: run ` +
      "BENCH_OUT=bench/results/limit-<runtime>.json bench/limit.bench.ts first",
  );
}

// --- reading the figures

function cell(
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
function hasRounds(run: LimitRun): boolean {
  return Object.values(run.sections).every((cells) =>
    cells.every((c) => c.roundRates !== undefined)
  );
}

/** req/s of `a` over `b` in the same section, in flight and payload. */
function ratio(a?: Cell, b?: Cell): number | undefined {
  return a && b && b.reqPerSecond > 0 ? pairedRatio(a, b) : undefined;
}

/** The TCP cell's req/s as a share of its baseline's, if it has one. */
function ofBaseline(run: LimitRun, c: Cell): number | undefined {
  const base = BASELINE[c.contender];
  return base === undefined
    ? undefined
    : ratio(c, cell(run, "tcp", base, c.inFlight, c.payloadBytes));
}

/** The transport's client against the client over TCP measured beside it. */
function versusTcp(run: LimitRun, section: "udp" | "tls") {
  const tcp = cell(run, section, "client tcp");
  const other = cell(run, section, `client ${section}`);
  return { tcp, other, ratio: ratio(other, tcp) };
}

// --- formatting

const count = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? "-" : int(v);

/** A markdown table, the first column left-aligned and the rest right. */
function table(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const align = headers.map((_, i) => (i === 0 ? "---" : "---:"));
  return [line(headers), line(align), ...rows.map(line)].join("\n");
}

// --- targets

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

function targetTable(): string {
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

// --- the tables of one run

function tcpTable(run: LimitRun): string {
  const rows: string[][] = [];
  for (const size of GRID_SIZES) {
    for (const inFlight of IN_FLIGHT) {
      for (const contender of CONTENDERS) {
        const c = cell(run, "tcp", contender, inFlight, size);
        if (!c) continue;
        rows.push([
          contender,
          String(inFlight),
          sizeLabel(size),
          int(c.reqPerSecond),
          `${int(c.minReqPerSecond)}–${int(c.maxReqPerSecond)}`,
          orDash(c.cpuUsPerRequest, 2),
          orDash(c.nodeCpuUsPerRequest, 2),
          orDash(c.p50Us, 1),
          BASELINE[contender]
            ? `${percent(ofBaseline(run, c))} of ${BASELINE[contender]}`
            : "-",
        ]);
      }
    }
  }
  if (rows.length === 0) return "_not measured_";
  return table(
    [
      "contender",
      "in flight",
      "payload",
      "req/s",
      "min–max req/s",
      "CPU µs/request",
      "node CPU µs/request",
      "p50 µs",
      "of baseline",
    ],
    rows,
  );
}

function transportTable(run: LimitRun): string {
  const rows: string[][] = [];
  for (const section of ["udp", "tls"] as const) {
    const { tcp, other, ratio: r } = versusTcp(run, section);
    if (!tcp || !other) {
      const why = run.skipped?.[section];
      rows.push([
        `${section.toUpperCase()}/TCP`,
        why ? `skipped: ${why}` : "not measured",
        ...new Array<string>(7).fill("-"),
      ]);
      continue;
    }
    rows.push([
      `${section.toUpperCase()}/TCP`,
      percent(r),
      int(tcp.reqPerSecond),
      int(other.reqPerSecond),
      orDash(tcp.p50Us, 1),
      orDash(other.p50Us, 1),
      orDash(other.cpuUsPerRequest, 2),
      nodeCpuPair(tcp, other),
      String(other.failed),
    ]);
    const rawTcp = cell(run, section, "raw tcp");
    const rawOther = cell(run, section, `raw ${section}`);
    if (rawTcp && rawOther) {
      rows.push([
        `raw ${section.toUpperCase()}/raw TCP`,
        percent(ratio(rawOther, rawTcp)),
        int(rawTcp.reqPerSecond),
        int(rawOther.reqPerSecond),
        orDash(rawTcp.p50Us, 1),
        orDash(rawOther.p50Us, 1),
        orDash(rawOther.cpuUsPerRequest, 2),
        nodeCpuPair(rawTcp, rawOther),
        String(rawOther.failed),
      ]);
    }
  }
  return table(
    [
      "64 in flight, 16 B",
      "req/s ratio",
      "TCP req/s",
      "req/s",
      "TCP p50 µs",
      "p50 µs",
      "CPU µs/request",
      "node CPU µs/request, TCP → it",
      "failed",
    ],
    rows,
  );
}

/**
 * The node's CPU µs per request over TCP and over the other transport,
 * when the run measured them (out of process, on Linux).
 */
function nodeCpuPair(tcp: Cell, other: Cell): string {
  const a = orDash(tcp.nodeCpuUsPerRequest, 2);
  const b = orDash(other.nodeCpuUsPerRequest, 2);
  return a === "-" && b === "-" ? "-" : `${a} → ${b}`;
}

function largeTable(run: LimitRun): string {
  const rows = LARGE_SIZES.flatMap((size) => {
    const c = cell(run, "large", "client", undefined, size);
    const p = cell(run, "large", "promise", undefined, size);
    if (!c && !p) return [];
    return [[
      sizeLabel(size),
      orDash(c?.mbPerSecond, 1),
      orDash(p?.mbPerSecond, 1),
      percent(ratio(c, p)),
      orDash(c?.cpuUsPerRequest, 1),
      orDash(p?.cpuUsPerRequest, 1),
      count(c?.inFlight ?? p?.inFlight),
    ]];
  });
  if (rows.length === 0) return "_not measured_";
  return table(
    [
      "payload",
      "client MB/s",
      "promise MB/s",
      "client/promise",
      "client CPU µs/request",
      "promise CPU µs/request",
      "in flight",
    ],
    rows,
  );
}

function runSection(run: LimitRun): string {
  const skipped = Object.entries(run.skipped ?? {}).map(([s, why]) =>
    `${s} skipped: ${why}`
  );
  return `## ${run.version}

${
    run.quick
      ? "> **Warning: a quick smoke run (BENCH_QUICK=1), not a measurement.**\n\n"
      : ""
  }Node: ${run.node.note} (${run.node.kind}, ${run.node.address}); ${run.rounds} measured rounds per cell.${
    run.machine ? ` Machine: ${run.machine}.` : ""
  }${skipped.length ? ` ${skipped.join("; ")}.` : ""}

### TCP: Client.request against the raw clients

*of baseline*: req/s as a share of the raw client beside it (client of
promise, batch and floor of batching). *floor* is the raw batching client
handing out each reply as a batch API must (a view and a result object
per reply, each payload copied into its frame): the most any batch API
with requestMany's results can reach. p50 only for contenders that await
each request.

${tcpTable(run)}

### UDP and TLS against TCP

Each against the client over TCP measured in the same rounds. At 64 in
flight a round trip waits on the client's work and then on the node's, so
the node's CPU per request (read from /proc when it runs in its own
process on Linux) counts in the ratio as much as the client's.

${transportTable(run)}

### Large payloads: MB/s of ECHO payload each way

${largeTable(run)}
`;
}

// --- the chart

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

function charts(): Chart[] {
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

// --- output

const anyQuick = runs.some((r) => r.quick);
const versions = runs.map((r) => r.version).join(", ");
const notes = [
  ...new Set(runs.map((r) => r.node.note)),
].join("; ");
const machines = [...new Set(runs.map((r) => r.machine ?? "not recorded"))];
const header = [
  `Node: ${notes}. Runtimes: ${versions}; ${
    runs.map((r) => `${r.runtime} ${r.rounds} rounds`).join(", ")
  } per cell. Machine: ${machines.join("; ")}.`,
  "Figures are medians of alternating rounds (each round rotates which " +
  "contender goes first) from one run per runtime; one connection to one " +
  "node. " +
  (runs.every((r) => hasRounds(r))
    ? "A ratio is the median of the two contenders' ratios round by round."
    : "A ratio is of the two medians where a file keeps no rounds " +
      "(written before 2026-12-06's seventh stop), else the median of the " +
      "ratios round by round."),
  ...runs.filter((r) => r.quick).map((r) =>
    `**Warning: \`limit-${r.runtime}.json\` is a quick smoke run (BENCH_QUICK=1): its figures are not measurements.**`
  ),
  ...missing.map((m) => `Note: ${m}.`),
];

writeFileSync(
  `${dir}limit.svg`,
  svgDocument(
    charts(),
    runs.length,
    `bench/limit.bench.ts · ${versions} · ${notes}${
      anyQuick ? " · QUICK smoke run" : ""
    }`,
  ),
);

writeFileSync(
  `${dir}limit.md`,
  `# How close Client.request comes to the limit${
    anyQuick ? " (quick smoke run: not measurements)" : ""
  }

Generated by \`bench/limit_report.ts\` from \`limit-<runtime>.json\`, each
written by \`BENCH_OUT=bench/results/limit-<runtime>.json\` with
\`bench/limit.bench.ts\` (its header describes the contenders and the method).

${header.map((l) => `- ${l}`).join("\n")}

![limit charts](limit.svg)

## Targets

${targetTable()}

${runs.map(runSection).join("\n")}`,
);

console.log(`wrote ${dir}limit.md, ${dir}limit.svg`);
