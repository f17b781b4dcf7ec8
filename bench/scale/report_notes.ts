/**
 * The notes of the scale report (`report.ts`): prose that explains a
 * missed target or a cost that stands out, written only when the figures
 * call for it. Apart from the tables because each note is a reading of
 * several sections at once, with the why that the numbers alone lack.
 *
 * @module
 */

import { fixed, int } from "../harness.ts";
import {
  bytes,
  type InFlightData,
  type MassFailureData,
  type MemoryData,
  section,
  type SimulatedData,
} from "./report_data.ts";
import type { RuntimeResults } from "./results.ts";

/** What the figures say where a target is missed or a cost stands out. */
export function notes(all: readonly RuntimeResults[]): string[] {
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
too, so no reject closure is kept: \`src/connection/resolve_only.ts\`), a one-field
sink, the connection's six-field pending record (its deadline among them),
and one slot of the connection's sequence ring (\`src/connection/pending_table.ts\`,
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
(\`src/connection/frame_writer.ts\`); the rest is what the runtime's socket
keeps (\`src/runtime/\`).`,
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
(\`src/client/request_path.ts\`).`,
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
