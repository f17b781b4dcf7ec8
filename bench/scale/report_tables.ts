/**
 * The markdown tables of the scale report (`report.ts`): the targets with
 * their verdicts, then one table per section of the results. Each takes
 * the loaded results of every runtime (`all`) and returns markdown.
 *
 * @module
 */

import { fixed, int, table } from "../harness.ts";
import {
  bytes,
  type InFlightData,
  type MassFailureData,
  type MemoryData,
  type RealNodesData,
  section,
  type SimulatedData,
} from "./report_data.ts";
import type { RuntimeResults } from "./results.ts";

const verdict = (ok: boolean | undefined) =>
  ok === undefined ? "-" : ok ? "met" : "**missed**";

/** One row of the targets table: the target and a cell per runtime. */
export interface TargetRow {
  name: string;
  cells: string[];
}

/** Each target against every runtime's figure, met or missed. */
export function targets(all: readonly RuntimeResults[]): TargetRow[] {
  const cell = (
    r: RuntimeResults,
    f: (r: RuntimeResults) => [string, boolean] | undefined,
  ) => {
    const v = f(r);
    return v === undefined ? "-" : `${v[0]} (${verdict(v[1])})`;
  };
  const rows: [string, (r: RuntimeResults) => [string, boolean] | undefined][] =
    [
      [
        "JS heap per idle connection ≤ 16 KiB",
        (r) => {
          const m = section<MemoryData>(r, "memory");
          return m && [
            bytes(m.idle.jsPerConnection),
            m.idle.jsPerConnection <= 16 * 1024,
          ];
        },
      ],
      [
        "JS heap per request in flight ≤ 512 B (Client.request)",
        (r) => {
          const m = section<MemoryData>(r, "memory");
          return m &&
            [bytes(m.inFlight.client.js), m.inFlight.client.js <= 512];
        },
      ],
      [
        "… the same through Connection.sendRequest",
        (r) => {
          const m = section<MemoryData>(r, "memory");
          return m && [
            bytes(m.inFlight.connection.js),
            m.inFlight.connection.js <= 512,
          ];
        },
      ],
      [
        "throughput at 10,000 in flight ≥ 80% of 256",
        (r) => {
          const d = section<InFlightData>(r, "inFlight");
          if (!d || !Number.isFinite(d.topVs256)) return undefined;
          return [`${fixed(100 * d.topVs256, 0)}%`, d.topVs256 >= 0.8];
        },
      ],
      ...(["round-robin", "least-in-flight"] as const).map((strategy) =>
        [
          `choosing among 10,000 nodes ≤ 2× among 10 (${strategy})`,
          (r: RuntimeResults) => {
            const d = section<SimulatedData>(r, "simulatedNodes");
            const at = (n: number) =>
              d?.picks.find((p) => p.strategy === strategy && p.nodes === n)
                ?.nsPerPick;
            const small = at(10);
            const big = at(10_000);
            if (small === undefined || big === undefined) return undefined;
            return [
              `${fixed(big, 0)} vs ${fixed(small, 0)} ns = ${
                fixed(big / small, 2)
              }×`,
              big <= 2 * small,
            ] as [string, boolean];
          },
        ] as [string, (r: RuntimeResults) => [string, boolean] | undefined]
      ),
    ];
  return rows.map(([name, f]) => ({
    name,
    cells: all.map((r) => cell(r, f)),
  }));
}

/** Throughput and p99 by requests in flight, a column pair per runtime. */
export function inFlightTable(all: readonly RuntimeResults[]): string {
  const levels = [
    ...new Set(
      all.flatMap((r) =>
        section<InFlightData>(r, "inFlight")?.levels.map((l) => l.inFlight) ??
          []
      ),
    ),
  ].sort((a, b) => a - b);
  const headers = ["in flight"];
  for (const r of all) {
    headers.push(`${r.runtime} req/s`, `${r.runtime} p99 ms`);
  }
  const rows = levels.map((level) => {
    const row = [int(level)];
    for (const r of all) {
      const l = section<InFlightData>(r, "inFlight")?.levels.find((x) =>
        x.inFlight === level
      );
      row.push(l ? int(l.throughput) : "-", l ? fixed(l.p99Ms, 2) : "-");
    }
    return row;
  });
  return table(headers, rows);
}

/** Client CPU µs per request by requests in flight. */
export function cpuTable(all: readonly RuntimeResults[]): string {
  const levels = [
    ...new Set(
      all.flatMap((r) =>
        section<InFlightData>(r, "inFlight")?.levels.map((l) => l.inFlight) ??
          []
      ),
    ),
  ].sort((a, b) => a - b);
  return table(
    ["in flight", ...all.map((r) => `${r.runtime} CPU µs/request`)],
    levels.map((level) => [
      int(level),
      ...all.map((r) => {
        const l = section<InFlightData>(r, "inFlight")?.levels.find((x) =>
          x.inFlight === level
        );
        return l ? fixed(l.cpuUsPerRequest, 2) : "-";
      }),
    ]),
  );
}

/** One runtime's real nodes on loopback, by node count. */
export function realNodesTable(r: RuntimeResults): string {
  const d = section<RealNodesData>(r, "realNodes");
  if (!d) return "_not measured_";
  return table(
    [
      "nodes",
      "connections",
      "connect ms",
      "pools filled ms",
      "health sweep ms",
      "JS heap",
      "buffers",
      "JS heap / node",
    ],
    d.sizes.map((s) => [
      int(s.nodes),
      int(s.connections),
      fixed(s.connectMs, 1),
      fixed(s.readyMs, 1),
      fixed(s.sweepMs, 2),
      bytes(s.jsBytes),
      bytes(s.externalBytes),
      bytes(s.jsBytes / s.nodes),
    ]),
  );
}

/** One runtime's simulated nodes, by node count. */
export function simulatedTable(r: RuntimeResults): string {
  const d = section<SimulatedData>(r, "simulatedNodes");
  if (!d) return "_not measured_";
  return table(
    [
      "nodes",
      "connect ms",
      "health sweep ms",
      "sweep µs / node",
      "request µs (64 in flight)",
      "request µs (1 in flight)",
    ],
    d.sweeps.map((s) => [
      int(s.nodes),
      fixed(s.connectMs, 0),
      fixed(s.sweepMs, 1),
      fixed(s.sweepUsPerNode, 1),
      fixed(s.usPerRequest, 2),
      fixed(s.usPerRequestAlone, 2),
    ]),
  );
}

/** ns per node pick by strategy and node count. */
export function pickTable(all: readonly RuntimeResults[]): string {
  const keys = [
    ...new Set(
      all.flatMap((r) =>
        section<SimulatedData>(r, "simulatedNodes")?.picks.map((p) =>
          `${p.strategy}|${p.nodes}`
        ) ?? []
      ),
    ),
  ];
  return table(
    ["strategy", "nodes", ...all.map((r) => `${r.runtime} ns / pick`)],
    keys.map((key) => {
      const [strategy, nodes] = key.split("|");
      return [
        strategy,
        int(Number(nodes)),
        ...all.map((r) => {
          const p = section<SimulatedData>(r, "simulatedNodes")?.picks.find(
            (x) => x.strategy === strategy && x.nodes === Number(nodes),
          );
          return p ? fixed(p.nsPerPick, 1) : "-";
        }),
      ];
    }),
  );
}

/** µs per request when everything in flight fails at once, by count. */
export function massFailureTable(all: readonly RuntimeResults[]): string {
  const rows = all.flatMap((r) =>
    section<MassFailureData>(r, "massFailure")?.rows.map((row) => ({
      runtime: r.runtime,
      ...row,
    })) ?? []
  );
  if (rows.length === 0) return "_not measured_";
  const counts = [...new Set(rows.flatMap((r) => r.counts))].sort((a, b) =>
    a - b
  );
  return table(
    [
      "runtime",
      "layer",
      "trigger",
      ...counts.map((c) => `µs/req at ${int(c)}`),
    ],
    rows.map((r) => [
      r.runtime,
      r.layer,
      r.trigger,
      ...counts.map((c) => {
        const i = r.counts.indexOf(c);
        return i < 0 ? "-" : fixed(r.usPerRequest[i], 2);
      }),
    ]),
  );
}

/** Memory per idle connection and per request in flight. */
export function memoryTable(all: readonly RuntimeResults[]): string {
  const rows: [string, (m: MemoryData) => string][] = [
    ["JS heap per idle connection", (m) => bytes(m.idle.jsPerConnection)],
    [
      "buffers per idle connection (outside the JS heap)",
      (m) => bytes(m.idle.externalPerConnection),
    ],
    [
      "JS heap per request in flight, Client.request",
      (m) => bytes(m.inFlight.client.js),
    ],
    [
      "JS heap per request in flight, Connection.sendRequest",
      (m) => bytes(m.inFlight.connection.js),
    ],
    [
      "… of which the bench's own `.then` per request",
      (m) => bytes(m.inFlight.benchThen),
    ],
  ];
  return table(
    ["", ...all.map((r) => r.runtime)],
    rows.map(([name, f]) => [
      name,
      ...all.map((r) => {
        const m = section<MemoryData>(r, "memory");
        return m ? f(m) : "-";
      }),
    ]),
  );
}
