/**
 * The tables of one runtime's run in the limit report (`limit_report.ts`):
 * TCP (every contender by in-flight count and payload), UDP and TLS
 * against TCP, large payloads, and the section of limit.md that holds
 * them with the run's own notes.
 *
 * @module
 */

import { int, orDash, percent, sizeLabel, table } from "./harness.ts";
import {
  BASELINE,
  type Cell,
  cell,
  CONTENDERS,
  IN_FLIGHT,
  type LimitRun,
  ofBaseline,
  ratio,
  versusTcp,
} from "./limit_report_figures.ts";

const GRID_SIZES = [16, 1024];
const LARGE_SIZES = [1024, 64 * 1024, 1024 * 1024];

const count = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? "-" : int(v);

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

/** A run's section of limit.md: its node and rounds, then its tables. */
export function runSection(run: LimitRun): string {
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
