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
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import { Client } from "../src/client/client.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { type BatchingClient, connectBatching } from "./batching_client.ts";
import {
  cpuMicros,
  env,
  envList,
  fixed,
  int,
  machineLabel,
  median,
  newSeries,
  now,
  orDash,
  pairedRatio,
  percent,
  printTable,
  processCpuMicros,
  QUICK,
  quickNote,
  rateFigures,
  type Round,
  roundRatios,
  runRounds,
  runtimeLabel,
  runtimeName,
  type Series,
  sizeLabel,
} from "./harness.ts";
import {
  startNativeNode,
  startScriptNode,
  TEST_CERT,
} from "./native/native_node.ts";
import { connectRaw, type RawClient, type RawTls } from "./raw_client.ts";

const SECTIONS = envList("BENCH_SECTIONS", "tcp,udp,tls,large");
const GRID_IN_FLIGHT = envList("BENCH_IN_FLIGHT", "1,64,256").map(Number);
const GRID_SIZES = [16, 1024];
const LARGE_SIZES = [1024, 64 * 1024, 1024 * 1024];
const LARGE_IN_FLIGHT = Number(env("BENCH_LARGE_IN_FLIGHT") ?? 16);
const ROUNDS = Number(env("BENCH_ROUNDS") ?? (QUICK ? 2 : 7));
const WARMUP_ROUNDS = QUICK ? 1 : 2;
const REQUESTS_PER_ROUND = Number(
  env("BENCH_ROUND_REQUESTS") ?? (QUICK ? 3_000 : 20_000_000),
);
/** Payload bytes per round in the large section. */
const LARGE_BYTES_PER_ROUND = QUICK ? 4 << 20 : 512 << 20;
const ROUND_LIMIT_MS = Number(
  env("BENCH_ROUND_MS") ?? (QUICK ? 300 : 1_500),
);
/** Every so many requests of a timed round, one latency is sampled... */
const SAMPLE_EVERY = 32;
/**
 * ...up to this many per round (kept for p50/p99): the first 4 million
 * requests of a round, more than a round of BENCH_ROUND_MS carries at the
 * rates awaited requests reach here (about 3 million in 1.5 s).
 */
const MAX_SAMPLES_PER_ROUND = 1 << 17;
/** Concurrent requestMany callers in the batch row (BENCH_BATCH_CALLERS). */
const BATCH_CALLERS = Number(env("BENCH_BATCH_CALLERS") ?? 4);
/** UDP may lose a datagram: a lost request must not stall a round for 5 s. */
const UDP_REQUEST_TIMEOUT_MS = 1_000;

// --- the node

interface Target {
  kind: "native" | "script" | "in-process";
  address: string;
  host: string;
  port: number;
  udp: boolean;
  tls: boolean;
  /** Said in every header: which node, and why when it is not the native one. */
  note: string;
  /**
   * The node's own CPU time so far, in µs, when it runs in a process of
   * its own (NaN when it cannot be read, or is this process).
   */
  cpuMicros(): number;
  close(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  if (env("BENCH_IN_PROCESS") === "1") {
    const node = await startTestNode({
      nodeId: "inproc-1",
      protocols: ["tls", "tcp", "udp"],
      tls: {
        cert: readFileSync(TEST_CERT.cert, "utf8"),
        key: readFileSync(TEST_CERT.key, "utf8"),
      },
    });
    return {
      kind: "in-process",
      address: node.address,
      host: node.hostname,
      port: node.port,
      udp: node.udpPort !== undefined,
      tls: true,
      note: "reference node IN THIS PROCESS (BENCH_IN_PROCESS=1)",
      cpuMicros: () => NaN,
      close: () => node.close(),
    };
  }
  let started = await startNativeNode({ tls: true });
  let note = "native C node, out of process";
  if ("unavailable" in started) {
    note =
      `TypeScript reference node out of process: native node ${started.unavailable}`;
    console.error(`WARNING: native node ${started.unavailable}`);
    console.error(
      "WARNING: falling back to the TypeScript reference node in a child process; " +
        "its own cost now limits the figures",
    );
    started = await startScriptNode({ tls: true });
  }
  const node = started;
  return {
    kind: node.kind,
    address: node.address,
    host: node.host,
    port: node.port,
    udp: node.udpPort > 0,
    tls: node.tls,
    note,
    cpuMicros: () => processCpuMicros(node.pid),
    close: async () => {
      if (await node.close() === "killed") {
        console.error("WARNING: the node did not exit by itself; killed");
      }
    },
  };
}

// --- contenders

interface Contender {
  name: string;
  /** Whether its rounds time requests (those that await each one). */
  timed: boolean;
  round(
    inFlight: number,
    payload: Uint8Array,
    count: number,
    latencies: Float64Array,
    offset: number,
  ): Promise<Round & { failed: number }>;
  close(): Promise<void>;
}

/** Id length of the node's replies, learnt from a probe. */
let replyOverhead = 0;

function awaitingRound(
  send: (payload: Uint8Array) => Promise<Uint8Array>,
  inFlight: number,
  payload: Uint8Array,
  count: number,
  latencies: Float64Array,
  offset: number,
): Promise<Round & { failed: number }> {
  // Each worker awaits the request itself, with no async wrapper per call
  // (harness.ts's runRound has one): a promise per request added to both
  // sides would flatter the client's share of the minimal client.
  const expect = payload.byteLength - 1 + replyOverhead;
  let issued = 0;
  let completed = 0;
  let failed = 0;
  let sampled = 0;
  let stop = false;
  const started = now();
  const deadline = started + ROUND_LIMIT_MS;
  const worker = async () => {
    while (!stop && issued < count) {
      const timed = issued++ % SAMPLE_EVERY === 0;
      const t0 = timed ? now() : 0;
      let reply: Uint8Array;
      try {
        reply = await send(payload);
      } catch {
        failed++; // a lost UDP datagram, or a broken run
        continue;
      }
      if (reply.byteLength !== expect) {
        failed++;
        continue;
      }
      completed++;
      if (timed) {
        const t1 = now();
        if (offset + sampled < latencies.length) {
          latencies[offset + sampled++] = t1 - t0;
        }
        if (t1 > deadline) stop = true;
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < inFlight; i++) workers.push(worker());
  return Promise.all(workers).then(() => ({
    completed,
    sampled,
    seconds: (now() - started) / 1000,
    failed,
  }));
}

async function clientContender(
  name: string,
  target: Target,
  extra: Partial<ConnectionConfig> = {},
): Promise<Contender & { client: Client }> {
  const client = await Client.connect({
    hosts: [target.address],
    poolConfig: { minConnections: 1, maxConnections: 1 },
    healthConfig: { intervalMs: 0 },
    ...extra,
  });
  return {
    name,
    client,
    timed: true,
    round: (inFlight, payload, count, latencies, offset) =>
      awaitingRound(
        (p) => client.request(p),
        inFlight,
        payload,
        count,
        latencies,
        offset,
      ),
    close: () => client.disconnect(),
  };
}

type RequestMany = (payloads: Uint8Array[]) => Promise<unknown[]>;

/** `client.requestMany`, once another branch has added it. */
function requestManyOf(client: Client): RequestMany | undefined {
  const method = (Client.prototype as unknown as Record<string, unknown>)
    .requestMany;
  if (typeof method !== "function") return undefined;
  return (payloads) => method.call(client, payloads) as Promise<unknown[]>;
}

function failedResult(result: unknown): boolean {
  if (result instanceof Error) return true;
  if (typeof result !== "object" || result === null) return false;
  const r = result as { ok?: unknown; error?: unknown };
  return r.ok === false || r.error !== undefined;
}

function batchContender(requestMany: RequestMany): Contender {
  return {
    name: "batch",
    timed: false,
    async round(inFlight, payload, count) {
      // Several callers, each looping over batches of its share, so that
      // between 3/4 and all of `inFlight` are out at any moment, as with
      // the raw batching client (one caller would leave the connection
      // idle for a round trip between batches).
      const callers = Math.min(inFlight, BATCH_CALLERS);
      const started = now();
      const deadline = started + ROUND_LIMIT_MS;
      let completed = 0;
      let failed = 0;
      const caller = async (share: number) => {
        const list = new Array<Uint8Array>(share).fill(payload);
        while (completed + failed < count && now() < deadline) {
          for (const result of await requestMany(list)) {
            if (failedResult(result)) failed++;
            else completed++;
          }
        }
      };
      const running: Promise<void>[] = [];
      for (let i = 0; i < callers; i++) {
        const share = Math.floor(inFlight / callers) +
          (i < inFlight % callers ? 1 : 0);
        running.push(caller(share));
      }
      await Promise.all(running);
      return {
        completed,
        failed,
        sampled: 0,
        seconds: (now() - started) / 1000,
      };
    },
    close: () => Promise.resolve(),
  };
}

async function promiseContender(
  target: Target,
  name = "promise",
  tls?: RawTls,
): Promise<Contender> {
  const raw: RawClient = await connectRaw(target.host, target.port, tls);
  return {
    name,
    timed: true,
    round: (inFlight, payload, count, latencies, offset) =>
      awaitingRound(
        (p) => raw.request(p),
        inFlight,
        payload,
        count,
        latencies,
        offset,
      ),
    close: () => raw.close(),
  };
}

async function batchingContender(
  target: Target,
  name = "batching",
  handOut = false,
): Promise<Contender> {
  const raw: BatchingClient = await connectBatching(target.host, target.port, {
    handOut,
  });
  return {
    name,
    timed: false,
    async round(inFlight, payload, count) {
      const run = await raw.run(count, inFlight, payload, ROUND_LIMIT_MS);
      return {
        completed: run.requests - run.errors,
        failed: run.errors,
        sampled: 0,
        seconds: run.ms / 1000,
      };
    },
    close: () => raw.close(),
  };
}

/** What the `raw tls` contender runs on, by runtime. */
const RAW_TLS_API = runtimeName() === "deno"
  ? "Deno.startTls (rustls)"
  : runtimeName() === "bun"
  ? "Bun upgradeTLS"
  : "node:tls";

// --- measuring

interface Cell extends Series {
  contender: Contender;
  payload: Uint8Array;
  cpu: number[];
  nodeCpu: number[];
  failed: number;
}

/** One cell of the output, as written to the JSON (read by limit_report.ts). */
export interface CellFigures {
  contender: string;
  inFlight: number;
  payloadBytes: number;
  rounds: number;
  requests: number;
  failed: number;
  reqPerSecond: number;
  minReqPerSecond: number;
  maxReqPerSecond: number;
  mbPerSecond: number;
  cpuUsPerRequest: number;
  /**
   * The node's CPU µs per request, when it runs out of process on Linux:
   * at 64 in flight each round trip waits on the client's work and then
   * the node's, so a transport that costs the node more (TLS) lowers the
   * client's rate however little it costs the client.
   */
  nodeCpuUsPerRequest: number | null;
  p50Us: number | null;
  p99Us: number | null;
  /**
   * req/s of each measured round, in the order of the rounds: every
   * contender of the cell ran once in a round, so round r of two cells
   * was measured seconds apart (see `pairedRatio`).
   */
  roundRates: number[];
}

/** Rotating rounds of every contender at one in-flight count and payload. */
async function measureCells(
  target: Target,
  contenders: readonly Contender[],
  inFlight: number,
  size: number,
  count: number,
): Promise<CellFigures[]> {
  const payload = ops.echo(new Uint8Array(size));
  const samples = Math.min(
    Math.ceil(count / SAMPLE_EVERY),
    MAX_SAMPLES_PER_ROUND,
  );
  const scratch = new Float64Array(samples);
  const group: Cell[] = contenders.map((contender) => ({
    contender,
    payload,
    cpu: [],
    nodeCpu: [],
    failed: 0,
    ...newSeries(inFlight, contender.timed ? samples * ROUNDS : 0),
  }));
  await runRounds(
    group,
    { rounds: ROUNDS, warmupRounds: WARMUP_ROUNDS, scratch },
    async (cell, label, latencies, offset) => {
      const cpu0 = cpuMicros();
      const nodeCpu0 = target.cpuMicros();
      try {
        const round = await cell.contender.round(
          inFlight,
          payload,
          count,
          latencies,
          offset,
        );
        return {
          ...round,
          cpuUs: cpuMicros() - cpu0,
          nodeCpuUs: target.cpuMicros() - nodeCpu0,
        };
      } catch (error) {
        throw new Error(
          `${cell.contender.name} failed at ${inFlight} in flight, ` +
            `${size} B, ${label}: ${String(error)}`,
          { cause: error },
        );
      }
    },
    (cell, round) => {
      cell.cpu.push(round.cpuUs / Math.max(1, round.completed));
      cell.nodeCpu.push(round.nodeCpuUs / Math.max(1, round.completed));
      cell.failed += round.failed;
    },
  );
  return group.map((cell) => {
    const f = rateFigures(cell);
    const timed = cell.contender.timed && cell.filled > 0;
    return {
      contender: cell.contender.name,
      inFlight,
      payloadBytes: size,
      rounds: cell.rates.length,
      requests: cell.requests,
      failed: cell.failed,
      reqPerSecond: Math.round(f.reqPerSecond),
      minReqPerSecond: Math.round(f.minReqPerSecond),
      maxReqPerSecond: Math.round(f.maxReqPerSecond),
      mbPerSecond: Number((f.reqPerSecond * size / 1e6).toFixed(2)),
      cpuUsPerRequest: Number(median(cell.cpu).toFixed(3)),
      nodeCpuUsPerRequest: Number.isNaN(median(cell.nodeCpu))
        ? null
        : Number(median(cell.nodeCpu).toFixed(3)),
      p50Us: timed ? Number(f.p50Us.toFixed(1)) : null,
      p99Us: timed ? Number(f.p99Us.toFixed(1)) : null,
      roundRates: cell.rates.map(Math.round),
    };
  });
}

/** Checks a contender's reply size once before measuring it. */
async function probe(contender: Contender): Promise<void> {
  const round = await contender.round(
    1,
    ops.echo(new Uint8Array(16)),
    1,
    new Float64Array(1),
    0,
  );
  if (round.completed !== 1) {
    throw new Error(`${contender.name}: the probe request failed`);
  }
}

async function learnReplyOverhead(target: Target): Promise<void> {
  const raw = await connectRaw(target.host, target.port);
  const reply = await raw.request(ops.echo(new Uint8Array(0)));
  replyOverhead = reply.byteLength;
  await raw.close();
}

function ratio(
  figures: readonly CellFigures[],
  a: string,
  b: string,
  inFlight: number,
  size: number,
): number | undefined {
  const find = (name: string) =>
    figures.find((f) =>
      f.contender === name && f.inFlight === inFlight &&
      f.payloadBytes === size
    );
  const x = find(a);
  const y = find(b);
  return x && y ? pairedRatio(x, y) : undefined;
}

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
