/**
 * Request throughput over UDP beside TCP, in one run, against the same
 * reference node on loopback: two SDK `Connection`s, one negotiated to TCP
 * and one to UDP, ECHO requests with a 16-byte payload, 64 in flight.
 *
 *   deno run -A --unstable-net bench/udp.bench.ts   (Deno.listenDatagram)
 *   deno run -A bench/udp.bench.ts                  (node:dgram on Deno)
 *   bun bench/udp.bench.ts
 *   node --import tsx bench/udp.bench.ts
 *
 * The two connections alternate round by round (tcp, udp, then udp, tcp,
 * …) so drift on a noisy machine hits both alike; each round is a fixed
 * count of requests, cut short by a time limit. Reported: the median
 * round's req/s per transport, the ratio UDP/TCP, p50/p99 latency of every
 * 8th request, and requests lost (a UDP request whose datagram or reply
 * was dropped fails after 1 s and is counted, not retried).
 *
 * The node runs in this process, so client and node share one thread, as
 * in the test suite. BENCH_IN_FLIGHT=1,64 adds other concurrencies;
 * BENCH_QUICK=1 makes it a smoke run of a few seconds. The last line is
 * one JSON object.
 *
 * @module
 */

import { Connection } from "../src/connection.ts";
import { createHandshake, handshakeResult } from "../src/handshake.ts";
import type { ProtocolType } from "../src/protocol/negotiation.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { udpTransport } from "../src/udp.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import {
  env,
  fixed,
  int,
  median,
  now,
  printTable,
  quantile,
  QUICK,
  runtimeLabel,
  runtimeName,
  yieldToEventLoop,
} from "./harness.ts";

type Transport = "tcp" | "udp";
const TRANSPORTS: Transport[] = ["tcp", "udp"];
const IN_FLIGHT = (env("BENCH_IN_FLIGHT") ?? "64").split(",").map(Number);
const ROUNDS = QUICK ? 2 : 9;
const WARMUP_ROUNDS = QUICK ? 1 : 2;
const REQUESTS_PER_ROUND = QUICK ? 2_000 : 50_000;
/** A round stops early after this long, whatever its count. */
const ROUND_LIMIT_MS = QUICK ? 1_000 : 3_000;
/** Only every 8th request is timed: a clock read is not free. */
const SAMPLE_EVERY = 8;
/** A lost UDP request gives up after this long and counts as lost. */
const REQUEST_TIMEOUT_MS = 1_000;
const PAYLOAD = ops.echo(new Uint8Array(16));

interface Round {
  completed: number;
  lost: number;
  sampled: number;
  seconds: number;
}

async function runRound(
  connection: Connection,
  inFlight: number,
  latencies: Float64Array,
  offset: number,
): Promise<Round> {
  let issued = 0;
  let completed = 0;
  let lost = 0;
  let sampled = 0;
  let stop = false;
  const started = now();
  const deadline = started + ROUND_LIMIT_MS;
  const worker = async () => {
    while (!stop && issued < REQUESTS_PER_ROUND) {
      const timed = issued++ % SAMPLE_EVERY === 0;
      const t0 = timed ? now() : 0;
      try {
        await connection.sendRequest(PAYLOAD, { idempotent: true });
        completed++;
      } catch {
        lost++;
        continue;
      }
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
  await Promise.all(workers);
  return { completed, lost, sampled, seconds: (now() - started) / 1000 };
}

const node = await startTestNode({
  nodeId: "bench-node",
  protocols: ["tcp", "udp"],
  udpPort: 0,
});
const adapter = await getAdapter();
const open = async (protocol: ProtocolType) => {
  const connection = await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: node.port,
    clientName: "bench",
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    handshake: createHandshake({
      protocols: [protocol],
      transports: { udp: udpTransport({ adapter }) },
    }),
  });
  const chosen = handshakeResult(connection)?.protocol;
  if (chosen !== protocol) {
    throw new Error(`asked for ${protocol}, negotiated ${chosen}`);
  }
  return connection;
};
const connections: Record<Transport, Connection> = {
  tcp: await open("tcp"),
  udp: await open("udp"),
};

interface Series {
  transport: Transport;
  inFlight: number;
  rates: number[];
  latencies: Float64Array;
  filled: number;
  requests: number;
  lost: number;
}

const series: Series[] = [];
const totalStarted = now();
for (const inFlight of IN_FLIGHT) {
  const pair: Series[] = TRANSPORTS.map((transport) => ({
    transport,
    inFlight,
    rates: [],
    latencies: new Float64Array(
      Math.ceil(REQUESTS_PER_ROUND / SAMPLE_EVERY + inFlight) * ROUNDS,
    ),
    filled: 0,
    requests: 0,
    lost: 0,
  }));
  const scratch = new Float64Array(REQUESTS_PER_ROUND);
  for (let w = 0; w < WARMUP_ROUNDS; w++) {
    for (const s of pair) {
      await runRound(connections[s.transport], inFlight, scratch, 0);
    }
  }
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? pair : [...pair].reverse();
    for (const s of order) {
      await yieldToEventLoop();
      const round = await runRound(
        connections[s.transport],
        inFlight,
        s.latencies,
        s.filled,
      );
      s.filled += round.sampled;
      s.requests += round.completed;
      s.lost += round.lost;
      s.rates.push(round.completed / round.seconds);
    }
  }
  series.push(...pair);
}
const totalSeconds = (now() - totalStarted) / 1000;

await connections.tcp.close();
await connections.udp.close();
await node.close();

const figures = series.map((s) => {
  const sorted = s.latencies.subarray(0, s.filled).sort();
  return {
    transport: s.transport,
    inFlight: s.inFlight,
    rounds: s.rates.length,
    requests: s.requests,
    lost: s.lost,
    reqPerSecond: median(s.rates),
    minReqPerSecond: Math.min(...s.rates),
    maxReqPerSecond: Math.max(...s.rates),
    p50Us: quantile(sorted, 0.5) * 1000,
    p99Us: quantile(sorted, 0.99) * 1000,
  };
});
const ratios: Record<string, number> = {};
for (const inFlight of IN_FLIGHT) {
  const rate = (t: Transport) =>
    figures.find((f) => f.transport === t && f.inFlight === inFlight)!
      .reqPerSecond;
  ratios[inFlight] = rate("udp") / rate("tcp");
}

const datagrams = runtimeName() !== "deno"
  ? runtimeName() === "bun" ? "Bun.udpSocket" : "node:dgram"
  : typeof (globalThis as { Deno?: { listenDatagram?: unknown } }).Deno
      ?.listenDatagram === "function"
  ? "Deno.listenDatagram"
  : "node:dgram (no --unstable-net)";
console.log(
  `UDP vs TCP on ${runtimeLabel()} (${datagrams}), ECHO of ${
    PAYLOAD.byteLength - 1
  } B, node in-process` +
    `${QUICK ? " (BENCH_QUICK: smoke run, figures not meaningful)" : ""}`,
);
console.log(
  `${ROUNDS} alternating rounds per transport after ${WARMUP_ROUNDS} ` +
    `warm-up; ${fixed(totalSeconds, 1)} s measured`,
);
printTable(
  [
    "transport",
    "in flight",
    "median req/s",
    "min",
    "max",
    "p50 us",
    "p99 us",
    "lost",
    "vs tcp",
  ],
  figures.map((f) => [
    f.transport,
    String(f.inFlight),
    int(f.reqPerSecond),
    int(f.minReqPerSecond),
    int(f.maxReqPerSecond),
    fixed(f.p50Us, 0),
    fixed(f.p99Us, 0),
    int(f.lost),
    f.transport === "tcp" ? "-" : `${fixed(ratios[f.inFlight] * 100, 1)}%`,
  ]),
);
console.log(JSON.stringify({
  bench: "udp",
  runtime: runtimeName(),
  version: runtimeLabel(),
  datagrams,
  quick: QUICK,
  payloadBytes: PAYLOAD.byteLength,
  results: figures.map((f) => ({
    ...f,
    reqPerSecond: Math.round(f.reqPerSecond),
    minReqPerSecond: Math.round(f.minReqPerSecond),
    maxReqPerSecond: Math.round(f.maxReqPerSecond),
    p50Us: Number(f.p50Us.toFixed(1)),
    p99Us: Number(f.p99Us.toFixed(1)),
  })),
  ratios: Object.fromEntries(
    Object.entries(ratios).map(([k, v]) => [k, Number(v.toFixed(3))]),
  ),
}));
