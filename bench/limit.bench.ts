/**
 * How close `Client.request` comes to the physical limit (issue #15's
 * must-show table): one connection to one node, the node in its own
 * process, and in the same run the least a promise-per-request client can
 * do (bench/raw_client.ts) and what the wire and the runtime can carry
 * (bench/batching_client.ts).
 *
 *   deno run -A --unstable-net bench/limit.bench.ts
 *   bun bench/limit.bench.ts
 *   node --import tsx bench/limit.bench.ts
 *
 * The node is the native C node of bench/native/ (built on first use with
 * the system compiler). Without a compiler the bench says so on stderr and
 * in every table header, and runs the TypeScript reference node in a child
 * process of the same runtime instead. BENCH_IN_PROCESS=1 runs the
 * reference node in this process (the old mode: half the CPU is then the
 * node's).
 *
 * Sections (BENCH_SECTIONS, default all the node serves):
 * - `tcp`: contenders `client` (Client.request with a pool of exactly one
 *   connection, health loop off, N callers awaiting in a loop), `batch`
 *   (`client.requestMany`: BENCH_BATCH_CALLERS callers, default 4, each
 *   awaiting batches of its share of N in a loop), `promise` (raw
 *   promise-per-request client) and
 *   `batching` (raw batching client), and `floor` (the raw batching
 *   client handing out each reply as a batch API must: a view and a
 *   result object per reply, payloads copied into frames; what
 *   requestMany's shape costs before any of its own work), at 1, 64 and 256 in flight
 *   (BENCH_IN_FLIGHT), ECHO of 16 B and 1 KiB. Per cell: median req/s,
 *   client CPU us per request (process CPU time / requests: the node is
 *   elsewhere), the node's CPU us per request (its process's, read from
 *   /proc on Linux; "-" elsewhere or in process), p50 latency for the
 *   contenders that await each request, and client/promise,
 *   batch/batching.
 * - `udp`: the client over UDP against the client over TCP, 64 in flight.
 * - `tls`: the client over TLS against the client over TCP, 64 in flight,
 *   beside `raw tcp` and `raw tls`: the raw promise client over TCP and
 *   over the runtime's own TLS (Deno.startTls, Bun's upgradeTLS,
 *   node:tls), whose ratio is the most TLS leaves on that runtime.
 * - `large`: 1 KiB, 64 KiB and 1 MiB ECHO, MB/s of payload each way,
 *   client against the raw promise client, 16 in flight
 *   (BENCH_LARGE_IN_FLIGHT).
 *
 * Rounds rotate who goes first and figures are medians of the measured
 * rounds; a ratio of two contenders is the median of their ratios round
 * by round (`pairedRatio`: the two ran seconds apart in each round, on
 * the machine as it was then), and each cell keeps its rounds' rates
 * (`roundRates`) in the JSON; every round is bounded in time and in count (BENCH_ROUNDS
 * measured rounds, default 7; BENCH_ROUND_MS per round, default 1500;
 * BENCH_ROUND_REQUESTS requests at most, default 20 million, which no
 * contender reaches in that time on these machines: rounds end on time,
 * so each contender is measured over the same span of steady running.
 * Count-bounded rounds of 200,000, as they were until 2026-12-06, lasted
 * 30-60 ms for the fastest contenders at 256 in flight, and measured how
 * each starts a round more than how it runs).
 * BENCH_QUICK=1 makes
 * it a smoke run of a few seconds. Output: a table per section, then one
 * JSON object as the last line; BENCH_OUT=path.json writes it to a file.
 *
 * This file runs the sections; the node is started by limit_target.ts,
 * the contenders and their round loops are in limit_contenders.ts, and the
 * rounds, cells and ratios in limit_measure.ts.
 *
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import {
  env,
  envList,
  fixed,
  int,
  machineLabel,
  now,
  orDash,
  pairedRatio,
  percent,
  printTable,
  QUICK,
  quickNote,
  roundRatios,
  runtimeLabel,
  runtimeName,
  sizeLabel,
} from "./harness.ts";
import {
  batchContender,
  batchingContender,
  clientContender,
  type Contender,
  learnReplyOverhead,
  promiseContender,
  RAW_TLS_API,
  requestManyOf,
} from "./limit_contenders.ts";
import {
  type CellFigures,
  measureCells,
  probe,
  ratio,
  ROUNDS,
} from "./limit_measure.ts";
import { startTarget } from "./limit_target.ts";
import { TEST_CERT } from "./native/native_node.ts";

const SECTIONS = envList("BENCH_SECTIONS", "tcp,udp,tls,large");
const GRID_IN_FLIGHT = envList("BENCH_IN_FLIGHT", "1,64,256").map(Number);
const GRID_SIZES = [16, 1024];
const LARGE_SIZES = [1024, 64 * 1024, 1024 * 1024];
const LARGE_IN_FLIGHT = Number(env("BENCH_LARGE_IN_FLIGHT") ?? 16);
const REQUESTS_PER_ROUND = Number(
  env("BENCH_ROUND_REQUESTS") ?? (QUICK ? 3_000 : 20_000_000),
);
/** Payload bytes per round in the large section. */
const LARGE_BYTES_PER_ROUND = QUICK ? 4 << 20 : 512 << 20;
/** UDP may lose a datagram: a lost request must not stall a round for 5 s. */
const UDP_REQUEST_TIMEOUT_MS = 1_000;

// --- the sections

const target = await startTarget();
await learnReplyOverhead(target);
const heading = (what: string) =>
  console.log(
    `\n${what} on ${runtimeLabel()}, one connection to ${target.address} ` +
      `(${target.note})${quickNote()}`,
  );
const results: Record<string, unknown> = {};
const ratios: Record<string, number> = {};
const skipped: Record<string, string> = {};
const started = now();

try {
  if (SECTIONS.includes("tcp")) {
    const client = await clientContender("client", target);
    const requestMany = requestManyOf(client.client);
    const contenders: Contender[] = [
      client,
      ...(requestMany ? [batchContender(requestMany)] : []),
      await promiseContender(target),
      await batchingContender(target),
      ...(requestMany ? [await batchingContender(target, "floor", true)] : []),
    ];
    try {
      for (const c of contenders) await probe(c);
      const figures: CellFigures[] = [];
      for (const size of GRID_SIZES) {
        for (const inFlight of GRID_IN_FLIGHT) {
          figures.push(
            ...await measureCells(
              target,
              contenders,
              inFlight,
              size,
              REQUESTS_PER_ROUND,
            ),
          );
          ratios[`client/promise@${inFlight}/${size}`] = ratio(
            figures,
            "client",
            "promise",
            inFlight,
            size,
          )!;
          const b = ratio(figures, "batch", "batching", inFlight, size);
          if (b !== undefined) ratios[`batch/batching@${inFlight}/${size}`] = b;
          const f = ratio(figures, "floor", "batching", inFlight, size);
          if (f !== undefined) ratios[`floor/batching@${inFlight}/${size}`] = f;
        }
      }
      heading("tcp: Client.request against the raw clients");
      if (!requestMany) {
        console.log(
          "batch: Client.prototype.requestMany does not exist yet; no batch row",
        );
      }
      printTable(
        [
          "contender",
          "in flight",
          "payload",
          "median req/s",
          "min",
          "max",
          "CPU us/req",
          "node CPU",
          "p50 us",
          "of baseline",
        ],
        figures.map((f) => {
          const base = f.contender === "client"
            ? ratios[`client/promise@${f.inFlight}/${f.payloadBytes}`]
            : f.contender === "batch"
            ? ratios[`batch/batching@${f.inFlight}/${f.payloadBytes}`]
            : f.contender === "floor"
            ? ratios[`floor/batching@${f.inFlight}/${f.payloadBytes}`]
            : undefined;
          return [
            f.contender,
            String(f.inFlight),
            sizeLabel(f.payloadBytes),
            int(f.reqPerSecond),
            int(f.minReqPerSecond),
            int(f.maxReqPerSecond),
            orDash(f.cpuUsPerRequest, 2),
            orDash(f.nodeCpuUsPerRequest, 2),
            orDash(f.p50Us, 0),
            percent(base),
          ];
        }),
      );
      console.log(
        "of baseline: client as a share of promise, batch and floor of batching (req/s)",
      );
      results.tcp = figures;
    } finally {
      for (const c of contenders) await c.close();
    }
  }

  /** Client over `name`'s transport against the client over TCP. */
  const versusTcp = async (
    section: "udp" | "tls",
    extra: Partial<ConnectionConfig>,
    baselines: Contender[] = [],
  ) => {
    const contenders = [
      await clientContender("client tcp", target),
      await clientContender(`client ${section}`, target, extra),
      ...baselines,
    ];
    try {
      for (const c of contenders) await probe(c);
      const figures = await measureCells(
        target,
        contenders,
        64,
        16,
        REQUESTS_PER_ROUND,
      );
      ratios[`${section}/tcp@64`] = pairedRatio(figures[1], figures[0]);
      heading(`${section}: the client over ${section} against TCP`);
      printTable(
        [
          "contender",
          "in flight",
          "median req/s",
          "min",
          "max",
          "CPU us/req",
          "node CPU",
          "p50 us",
          "p99 us",
          "failed",
        ],
        figures.map((f) => [
          f.contender,
          String(f.inFlight),
          int(f.reqPerSecond),
          int(f.minReqPerSecond),
          int(f.maxReqPerSecond),
          orDash(f.cpuUsPerRequest, 2),
          orDash(f.nodeCpuUsPerRequest, 2),
          orDash(f.p50Us, 0),
          orDash(f.p99Us, 0),
          String(f.failed),
        ]),
      );
      console.log(`${section}/tcp: ${percent(ratios[`${section}/tcp@64`])}`);
      if (baselines.length === 2) {
        // The raw promise client over the runtime's own TLS against itself
        // over TCP: what the runtime's TLS stack leaves at best.
        ratios[`raw ${section}/raw tcp@64`] = pairedRatio(
          figures[3],
          figures[2],
        );
        console.log(
          `raw ${section}/raw tcp: ${
            percent(ratios[`raw ${section}/raw tcp@64`])
          } (the runtime's own TLS: ${RAW_TLS_API})`,
        );
      }
      results[section] = figures;
    } finally {
      for (const c of contenders) await c.close();
    }
  };

  if (SECTIONS.includes("udp")) {
    if (target.udp) {
      await versusTcp("udp", {
        protocols: ["udp"],
        requestTimeoutMs: UDP_REQUEST_TIMEOUT_MS,
      });
    } else skipped.udp = "the node serves no UDP";
  }

  if (SECTIONS.includes("tls")) {
    if (target.tls) {
      const ca = readFileSync(TEST_CERT.ca, "utf8");
      await versusTcp("tls", { tlsPolicy: "require", tls: { ca } }, [
        await promiseContender(target, "raw tcp"),
        await promiseContender(target, "raw tls", {
          ca,
          serverName: target.host,
        }),
      ]);
    } else skipped.tls = "the node serves no TLS (built without OpenSSL)";
  }

  if (SECTIONS.includes("large")) {
    const contenders = [
      await clientContender("client", target),
      await promiseContender(target),
    ];
    try {
      const figures: CellFigures[] = [];
      for (const size of LARGE_SIZES) {
        const count = Math.max(
          LARGE_IN_FLIGHT * 4,
          Math.ceil(LARGE_BYTES_PER_ROUND / size),
        );
        figures.push(
          ...await measureCells(
            target,
            contenders,
            LARGE_IN_FLIGHT,
            size,
            count,
          ),
        );
        ratios[`large client/promise@${size}`] = ratio(
          figures,
          "client",
          "promise",
          LARGE_IN_FLIGHT,
          size,
        )!;
      }
      heading("large: MB/s of ECHO payload each way");
      printTable(
        [
          "contender",
          "in flight",
          "payload",
          "MB/s",
          "median req/s",
          "CPU us/req",
          "p50 us",
          "of promise",
        ],
        figures.map((f) => [
          f.contender,
          String(f.inFlight),
          sizeLabel(f.payloadBytes),
          fixed(f.mbPerSecond, 1),
          int(f.reqPerSecond),
          orDash(f.cpuUsPerRequest, 1),
          orDash(f.p50Us, 0),
          f.contender === "client"
            ? percent(ratios[`large client/promise@${f.payloadBytes}`])
            : "-",
        ]),
      );
      results.large = figures;
    } finally {
      for (const c of contenders) await c.close();
    }
  }
} finally {
  await target.close();
}

for (const [section, why] of Object.entries(skipped)) {
  console.log(`\n${section}: skipped, ${why}`);
}
console.log(`\n${fixed((now() - started) / 1000, 1)} s`);
const report = {
  bench: "limit",
  runtime: runtimeName(),
  version: runtimeLabel(),
  machine: machineLabel(),
  quick: QUICK,
  node: { kind: target.kind, address: target.address, note: target.note },
  rounds: ROUNDS,
  sections: results,
  skipped,
  ratios: roundRatios(ratios),
};
const json = JSON.stringify(report);
const out = env("BENCH_OUT");
if (out) writeFileSync(out, json + "\n");
console.log(json);
