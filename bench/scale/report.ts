/**
 * Turns the scale results of every runtime (bench/results/scale-*.json)
 * into bench/results/scale.md (all tables), bench/results/scale.svg (the
 * charts) and bench/results/README-section.md (what the README shows).
 *
 *   node_modules/.bin/deno run -A bench/scale/report.ts
 *   node_modules/.bin/bun bench/scale/report.ts
 *   node --import tsx bench/scale/report.ts
 *
 * With BENCH_QUICK=1 it reads and writes bench/results/quick/ instead.
 * Runtimes or sections not measured yet show as "-".
 *
 * @module
 */

import { writeFileSync } from "node:fs";
import { fixed, int, QUICK } from "../harness.ts";
import {
  loadAll,
  resultsDir,
  type Runtime,
  type RuntimeResults,
} from "./results.ts";
import { type Chart, type Series, svgDocument } from "./svg.ts";

interface InFlightData {
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

interface MemoryData {
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

interface RealNodesData {
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

interface SimulatedData {
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

interface MassFailureData {
  rows: {
    layer: string;
    trigger: string;
    counts: number[];
    usPerRequest: number[];
  }[];
}

const COLORS: Record<Runtime, string> = {
  deno: "#1f77b4",
  bun: "#e6820e",
  node: "#2ca02c",
};

function section<T>(r: RuntimeResults, name: string): T | undefined {
  return r.sections[name]?.data as T | undefined;
}

const all = loadAll();
if (all.length === 0) {
  throw new Error(
    `no results in ${resultsDir()}: run the bench/scale scripts first`,
  );
}

/** A markdown table. */
function table(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const align = headers.map((_, i) => (i === 0 ? "---" : "---:"));
  return [line(headers), line(align), ...rows.map(line)].join("\n");
}

const bytes = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n)
    ? "-"
    : Math.abs(n) >= 10_240
    ? `${fixed(n / 1024, 1)} KiB`
    : `${int(n)} B`;
const verdict = (ok: boolean | undefined) =>
  ok === undefined ? "-" : ok ? "met" : "**missed**";

// --- targets -----------------------------------------------------------------

interface TargetRow {
  name: string;
  cells: string[];
}

function targets(): TargetRow[] {
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

// --- tables ------------------------------------------------------------------

function inFlightTable(): string {
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

function cpuTable(): string {
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

function realNodesTable(r: RuntimeResults): string {
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

function simulatedTable(r: RuntimeResults): string {
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

function pickTable(): string {
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

function massFailureTable(): string {
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

function memoryTable(): string {
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

// --- charts ------------------------------------------------------------------

function charts(): Chart[] {
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

// --- notes -------------------------------------------------------------------

/** What the figures say where a target is missed or a cost stands out. */
function notes(): string[] {
  const out: string[] = [];
  const per = (f: (r: RuntimeResults) => string | undefined) =>
    all.map((r) => `${f(r) ?? "-"} (${r.runtime})`).join(", ");
  const memory = (r: RuntimeResults) => section<MemoryData>(r, "memory");
  const flight = (r: RuntimeResults) => section<InFlightData>(r, "inFlight");
  if (all.some((r) => memory(r) !== undefined)) {
    out.push(
      `**Memory per request in flight.** Through \`Connection.sendRequest\` a
request holds ${
        per((r) => bytes(memory(r)?.inFlight.connection.js))
      } of JS heap, counting the \`.then\` the benchmark itself attaches
(${
        per((r) => bytes(memory(r)?.inFlight.benchThen))
      }): the promise and its resolve function (a failure settles through it
too, so no reject closure is kept: \`src/resolve_only.ts\`), a one-field
sink, the connection's eight-field pending record with its deadline links,
and one slot of the connection's sequence ring (\`src/pending_table.ts\`,
where a \`Map\` entry cost about 37 B). Through \`Client.request\` it holds
${
        per((r) => bytes(memory(r)?.inFlight.client.js))
      }: the same, with the Client's request record as the sink (the
Connection reports to it directly, so there is no second promise).`,
    );
  }
  const cpu = (r: RuntimeResults, level: number) =>
    flight(r)?.levels.find((l) => l.inFlight === level)?.cpuUsPerRequest;
  const missed = all.some((r) => {
    const ratio = flight(r)?.topVs256;
    return ratio !== undefined && Number.isFinite(ratio) && ratio < 0.8;
  });
  if (all.some((r) => cpu(r, 256) && cpu(r, 10_000))) {
    out.push(
      `**Throughput at 10,000 in flight.** What grows is garbage collection:
at 10,000 in flight each request's objects live for tens of milliseconds,
survive young-generation collections and get copied and promoted, so the
cost per request grows with the bytes each one holds. CPU per request at 256
vs 10,000 in flight: ${
        per((r) => {
          const a = cpu(r, 256);
          const b = cpu(r, 10_000);
          return a && b ? `${fixed(a, 1)} → ${fixed(b, 1)} µs` : undefined;
        })
      }.${
        missed
          ? " Shrinking what a request holds (above) is the fix."
          : " Throughput at the two levels is compared round by round (the" +
            " median of per-round ratios), since on a shared machine the" +
            " rounds of one level vary by a third."
      }`,
    );
  }
  if (
    all.some((r) => (memory(r)?.idle.externalPerConnection ?? 0) >= 32 * 1024)
  ) {
    out.push(
      `**Buffers per idle connection.** Outside the JS heap each connection
keeps ${
        per((r) => bytes(memory(r)?.idle.externalPerConnection))
      }. The frame writer's slab starts at 1 KiB and grows with the traffic
(\`src/protocol/frame_writer.ts\`); what remains on Deno is the adapter's
64 KiB read buffer, kept because reading into a reused large buffer is what
makes Deno's reads fast (\`src/runtime/deno.ts\`).`,
    );
  }
  // A cost per request that at 100,000 failing at once is several times
  // its cost at a smaller count is quadratic somewhere.
  const quadratic = all.flatMap((r) =>
    section<MassFailureData>(r, "massFailure")?.rows.filter((row) => {
      const b = row.usPerRequest[row.counts.indexOf(100_000)];
      return b !== undefined && b > 3 * Math.min(...row.usPerRequest);
    }).map((row) => ({ runtime: r.runtime, ...row })) ?? []
  );
  if (quadratic.length > 0) {
    out.push(
      `**Everything failing at once.** ${
        quadratic.map((q) =>
          `${q.layer} on ${q.runtime} (${q.trigger}): ${
            q.usPerRequest.map((us) => fixed(us, 0)).join(" → ")
          } µs per request with ${
            q.counts.map((c) => int(c)).join(" / ")
          } failing`
        ).join("; ")
      }. Deno slows down quadratically when many promises are rejected
before a handler is attached to them, which is what happens when a
rejection callback returns an already rejected promise (an \`async\`
function that throws): each handler arrives a microtask later, after the
whole batch was rejected. Measured on Deno alone: 20,000 / 40,000 such
rejections take 1.5 / 7.2 s, the same with a synchronous \`throw\` in the
callback 0.12 / 0.37 s. Throwing synchronously when no retry will follow,
or attaching the handler in the same microtask, keeps it flat
(\`src/client.ts\`).`,
    );
  }
  const connect = (r: RuntimeResults, n: number) =>
    section<SimulatedData>(r, "simulatedNodes")?.sweeps.find((s) =>
      s.nodes === n
    )?.connectMs;
  if (
    all.some((r) => {
      const a = connect(r, 1_000);
      const b = connect(r, 10_000);
      return a !== undefined && b !== undefined && b > 15 * a;
    })
  ) {
    out.push(
      `**Connecting 10,000 simulated nodes** grows faster than the node
count (${
        per((r) => {
          const a = connect(r, 1_000);
          const b = connect(r, 10_000);
          return a && b
            ? `${fixed(a / 1000, 1)} → ${fixed(b / 1000, 1)} s`
            : undefined;
        })
      } from 1,000 to 10,000). Connecting is not on a request's path; the
sweep and the pick stay flat. (The test clock's timers were once an array
scanned on every \`clearTimeout\`, which made this quadratic; they are a
heap now, so a rise here is new.)`,
    );
  }
  return out;
}

// --- output ------------------------------------------------------------------

const runtimes = all.map((r) => r.label).join(", ");
const machine = all[0].machine;
const dates = all.flatMap((r) => Object.values(r.sections).map((s) => s.at))
  .sort();
const when = dates.length
  ? `${dates[0].slice(0, 10)}${
    dates[dates.length - 1].slice(0, 10) !== dates[0].slice(0, 10)
      ? ` – ${dates[dates.length - 1].slice(0, 10)}`
      : ""
  }`
  : "";
const dir = resultsDir();
const svgName = "scale.svg";
const targetTable = table(
  ["target", ...all.map((r) => r.runtime)],
  targets().map((t) => [t.name, ...t.cells]),
);
const inFlightInfo = all.map((r) => section<InFlightData>(r, "inFlight"))
  .find(Boolean);
const noteText = notes().map((n) => `- ${n.replace(/\n/g, "\n  ")}`).join(
  "\n",
);

writeFileSync(
  `${dir}${svgName}`,
  svgDocument(
    charts(),
    2,
    `${runtimes} · ${machine} · ${when}${QUICK ? " · QUICK smoke run" : ""}`,
  ),
);

const full = `# Scale benchmarks${
  QUICK ? " (quick smoke run: not measurements)" : ""
}

${runtimes} on ${machine}, ${when}. Generated by \`bench/scale/report.ts\`
from \`scale-<runtime>.json\`; the scripts in \`bench/scale/\` say how each
figure is taken.

![scale charts](${svgName})

## Targets

${targetTable}

## Requests in flight (${
  inFlightInfo?.connections ?? 8
} connections, one reference node in a ${inFlightInfo?.node ?? "child process"})

Throughput is the median of ${
  inFlightInfo?.rounds ?? "-"
} rounds per level; p99 over all of them. The 10,000-vs-256 ratio in the
targets is the median of the per-round ratios (the two levels run back to
back in every round).

${inFlightTable()}

Client CPU time per request (this process only; steadier than throughput on
a shared machine):

${cpuTable()}

## Memory

${memoryTable()}

${noteText ? `## Notes\n\n${noteText}\n` : ""}
## Everything in flight failing at once

Memory network, virtual clock, 8 connections, a node that never answers;
wall time from the trigger until every request has failed.

${massFailureTable()}

## Real nodes on loopback

${all.map((r) => `### ${r.label}\n\n${realNodesTable(r)}`).join("\n\n")}

## Simulated nodes (memory network, virtual clock)

${all.map((r) => `### ${r.label}\n\n${simulatedTable(r)}`).join("\n\n")}

### Choosing a node (ConnectionManager.pickNode)

${pickTable()}
`;
writeFileSync(`${dir}scale.md`, full);

const readme = `## How cost grows

Each hot path is independent of the size it serves: a request in flight
costs one small record and no timer (one deadline timer per connection,
whatever the number of requests), choosing a node reads two entries of a
dense array whatever the cluster size, and a health sweep pings every node
with a bound on parallel checks (\`healthConfig.maxConcurrentChecks\`,
default 16). \`tests/scale.test.ts\` checks the first and the last on every
runtime: 100,000 requests in flight over 8 loopback connections complete
with 9 live timers (8 deadlines and the pool's), and a sweep over 200 nodes
never runs more than its bound.

![How throughput, latency, health sweeps and node choice grow](bench/results/${svgName})

${runtimes} on ${machine} (${when}), shared with other jobs: throughput
varied by up to a third between runs, CPU time per request much less. Full
tables: [bench/results/scale.md](bench/results/scale.md).

${targetTable}

${noteText}

Reproduce (each script writes its section of \`bench/results/scale-<runtime>.json\`,
\`BENCH_QUICK=1\` for a smoke run):

\`\`\`sh
node bench/scale/run_all.mjs            # everything, on all three runtimes
node_modules/.bin/deno run -A --v8-flags=--expose-gc bench/scale/in_flight.ts
node_modules/.bin/bun bench/scale/memory.ts
node --expose-gc --import tsx bench/scale/real_nodes.ts
# ... and simulated_nodes.ts, then:
node --import tsx bench/scale/report.ts
\`\`\`
`;
writeFileSync(`${dir}README-section.md`, readme);
console.log(`wrote ${dir}scale.md, ${dir}${svgName}, ${dir}README-section.md`);
