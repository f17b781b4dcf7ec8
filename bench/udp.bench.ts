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
 * BENCH_ROUNDS=3 measures fewer rounds (on a shared machine);
 * BENCH_QUICK=1 makes it a smoke run of a few seconds; BENCH_UDP_BATCH=0
 * runs the node without "udp-batch" (one frame per datagram, as before
 * it). Also reported: frames per datagram each way, from the client's UDP
 * counters. The last line is one JSON object.
 *
 * @module
 */

import { Connection } from "../src/connection/connection.ts";
import {
  createHandshake,
  handshakeResult,
} from "../src/handshake/handshake.ts";
import type { ProtocolType } from "../src/protocol_type.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { udpStats, udpTransport } from "../src/handshake/udp.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import {
  countFigures,
  env,
  envList,
  fixed,
  int,
  newSeries,
  now,
  printTable,
  QUICK,
  quickNote,
  RATE_HEADERS,
  rateCells,
  rateFigures,
  type Round,
  roundFigures,
  roundRatios,
  runRound,
  runRounds,
  runtimeLabel,
  runtimeName,
  type Series,
} from "./harness.ts";

type Transport = "tcp" | "udp";
const TRANSPORTS: Transport[] = ["tcp", "udp"];
const IN_FLIGHT = envList("BENCH_IN_FLIGHT", "64").map(Number);
const ROUNDS = Number(env("BENCH_ROUNDS") ?? (QUICK ? 2 : 9));
const UDP_BATCH = env("BENCH_UDP_BATCH") !== "0";
const WARMUP_ROUNDS = QUICK ? 1 : 2;
const REQUESTS_PER_ROUND = QUICK ? 2_000 : 50_000;
/** A round stops early after this long, whatever its count. */
const ROUND_LIMIT_MS = QUICK ? 1_000 : 3_000;
/** Only every 8th request is timed: a clock read is not free. */
const SAMPLE_EVERY = 8;
/** A lost UDP request gives up after this long and counts as lost. */
const REQUEST_TIMEOUT_MS = 1_000;
const PAYLOAD = ops.echo(new Uint8Array(16));

/** One round on `connection`; a failed request counts as lost. */
async function measure(
  connection: Connection,
  inFlight: number,
  latencies: Float64Array,
  offset: number,
): Promise<Round & { lost: number }> {
  let lost = 0;
  const round = await runRound(async () => {
    try {
      await connection.sendRequest(PAYLOAD, { idempotent: true });
      return true;
    } catch {
      lost++;
      return false;
    }
  }, {
    inFlight,
    count: REQUESTS_PER_ROUND,
    limitMs: ROUND_LIMIT_MS,
    sampleEvery: SAMPLE_EVERY,
    latencies,
    offset,
  });
  return { ...round, lost };
}

const node = await startTestNode({
  nodeId: "bench-node",
  protocols: ["tcp", "udp"],
  udpPort: 0,
  udpBatch: UDP_BATCH,
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

interface TransportSeries extends Series {
  transport: Transport;
  lost: number;
}

const series: TransportSeries[] = [];
const totalStarted = now();
for (const inFlight of IN_FLIGHT) {
  const pair: TransportSeries[] = TRANSPORTS.map((transport) => ({
    transport,
    ...newSeries(
      inFlight,
      Math.ceil(REQUESTS_PER_ROUND / SAMPLE_EVERY + inFlight) * ROUNDS,
    ),
    lost: 0,
  }));
  await runRounds(
    pair,
    {
      rounds: ROUNDS,
      warmupRounds: WARMUP_ROUNDS,
      scratch: new Float64Array(REQUESTS_PER_ROUND),
    },
    (s, _label, latencies, offset) =>
      measure(connections[s.transport], s.inFlight, latencies, offset),
    (s, round) => {
      s.lost += round.lost;
    },
  );
  series.push(...pair);
}
const totalSeconds = (now() - totalStarted) / 1000;
const udpCounters = udpStats(connections.udp)!;
const framesPerDatagram = {
  sent: udpCounters.sent / Math.max(1, udpCounters.datagramsSent),
  received: udpCounters.received / Math.max(1, udpCounters.datagramsReceived),
};

await connections.tcp.close();
await connections.udp.close();
await node.close();

const figures = series.map((s) => ({
  transport: s.transport,
  ...countFigures(s),
  lost: s.lost,
  ...rateFigures(s),
}));
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
    quickNote(),
);
console.log(
  `${ROUNDS} alternating rounds per transport after ${WARMUP_ROUNDS} ` +
    `warm-up; ${fixed(totalSeconds, 1)} s measured`,
);
console.log(
  `udp-batch ${udpCounters.batching ? "agreed" : "not agreed"}: ` +
    `${fixed(framesPerDatagram.sent, 1)} frames per datagram sent, ` +
    `${fixed(framesPerDatagram.received, 1)} per datagram received`,
);
printTable(
  [
    "transport",
    "in flight",
    ...RATE_HEADERS,
    "lost",
    "vs tcp",
  ],
  figures.map((f) => [
    f.transport,
    String(f.inFlight),
    ...rateCells(f),
    int(f.lost),
    f.transport === "tcp" ? "-" : `${fixed(ratios[f.inFlight] * 100, 1)}%`,
  ]),
);
console.log(JSON.stringify({
  bench: "udp",
  runtime: runtimeName(),
  version: runtimeLabel(),
  datagrams,
  udpBatch: udpCounters.batching,
  framesPerDatagram: {
    sent: Number(fixed(framesPerDatagram.sent, 2)),
    received: Number(fixed(framesPerDatagram.received, 2)),
  },
  quick: QUICK,
  payloadBytes: PAYLOAD.byteLength,
  results: figures.map(roundFigures),
  ratios: roundRatios(ratios),
}));
