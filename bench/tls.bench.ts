/**
 * Request throughput over TLS beside TCP, in one run, against the same
 * reference node on loopback: SDK `Connection`s negotiated to TCP and to
 * TLS (upgraded after NEGOTIATE_OK, certificate verified against the test
 * CA), ECHO requests with a 16-byte payload, 64 in flight on each.
 *
 *   deno run -A bench/tls.bench.ts
 *   bun bench/tls.bench.ts
 *   node --import tsx bench/tls.bench.ts
 *
 * The connections alternate round by round so drift on a noisy machine
 * hits them alike; each round is a fixed count of requests, cut short by
 * a time limit. Reported: the median round's req/s per transport, the
 * ratio TLS/TCP, p50/p99 latency of every 8th request, and the time to
 * open a connection (TCP connect + HELLO + NEGOTIATE, plus the TLS
 * handshake for TLS).
 *
 * The node runs in this process, so client and node share one thread (and
 * both ends' crypto), as in the test suite; BENCH_NODE=host:port targets a
 * node elsewhere instead. On Deno and Bun the node's side of the upgrade
 * goes through node:tls over the socket (src/runtime/node/tls_stream.ts: neither
 * has a native server-side upgrade); the client's side is node:tls over
 * the socket on Deno (Deno.startTls cannot abandon a handshake), Bun's
 * upgradeTLS, and node:tls on Node. BENCH_IN_FLIGHT=1,64 adds other
 * concurrencies; BENCH_QUICK=1 makes it a smoke run of a few seconds. The
 * last line is one JSON object.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { systemClock } from "../src/clock.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  createHandshake,
  handshakeResult,
} from "../src/handshake/handshake.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { tlsTransport } from "../src/handshake/tls.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import {
  countFigures,
  env,
  envList,
  fixed,
  median,
  newSeries,
  now,
  printTable,
  QUICK,
  quickNote,
  RATE_HEADERS,
  rateCells,
  rateFigures,
  type Round,
  runRound,
  runRounds,
  runtimeLabel,
  runtimeName,
  type Series,
  splitHostPort,
} from "./harness.ts";

type Transport = "tcp" | "tls";
const TRANSPORTS: Transport[] = ["tcp", "tls"];
const IN_FLIGHT = envList("BENCH_IN_FLIGHT", "64").map(Number);
const ROUNDS = QUICK ? 2 : 9;
const WARMUP_ROUNDS = QUICK ? 1 : 2;
const REQUESTS_PER_ROUND = QUICK ? 2_000 : 50_000;
/** A round stops early after this long, whatever its count. */
const ROUND_LIMIT_MS = QUICK ? 1_000 : 3_000;
/** Only every 8th request is timed: a clock read is not free. */
const SAMPLE_EVERY = 8;
/** Connections opened per transport to time the open. */
const OPENS = QUICK ? 5 : 30;
const PAYLOAD = ops.echo(new Uint8Array(16));

const pem = (name: string) =>
  readFileSync(new URL(`../testing/certs/${name}`, import.meta.url), "utf8");
const ca = pem("ca.pem");

/** One round on `connection`. */
function measure(
  connection: Connection,
  inFlight: number,
  latencies: Float64Array,
  offset: number,
): Promise<Round> {
  return runRound(async () => {
    await connection.sendRequest(PAYLOAD);
    return true;
  }, {
    inFlight,
    count: REQUESTS_PER_ROUND,
    limitMs: ROUND_LIMIT_MS,
    sampleEvery: SAMPLE_EVERY,
    latencies,
    offset,
  });
}

// BENCH_NODE=host:port targets a node running elsewhere (serving TLS with
// testing/certs/server.pem), which takes the node's own cost off the
// client's thread; `node.hostname`/`node.port` are all the bench uses.
const external = env("BENCH_NODE");
const node = external
  ? { ...splitHostPort(external), close: () => Promise.resolve() }
  : await startTestNode({
    nodeId: "bench-node",
    protocols: ["tls", "tcp"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem") },
  });
const adapter = await getAdapter();

function open(transport: Transport): Promise<Connection> {
  const policy = transport === "tcp" ? "disable" : "require";
  const tls = resolveTlsConfig(
    transport === "tcp" ? undefined : { ca },
    policy,
  );
  return Connection.connect({
    adapter,
    hostname: node.hostname,
    port: node.port,
    clientName: "bench",
    handshake: createHandshake({
      tlsPolicy: policy,
      transports: { tls: tlsTransport({ tls, clock: systemClock }) },
    }),
  });
}

const openMs: Record<string, number> = {};
for (const transport of TRANSPORTS) {
  const times: number[] = [];
  for (let i = 0; i < OPENS; i++) {
    const t0 = now();
    const c = await open(transport);
    times.push(now() - t0);
    await c.close();
  }
  openMs[transport] = median(times);
}

const connections = {} as Record<Transport, Connection>;
for (const transport of TRANSPORTS) {
  connections[transport] = await open(transport);
  const chosen = handshakeResult(connections[transport])?.protocol;
  if (chosen !== transport) {
    throw new Error(`expected ${transport}, negotiated ${chosen}`);
  }
}

interface TransportSeries extends Series {
  transport: Transport;
}

const series: TransportSeries[] = [];
const totalStarted = now();
for (const inFlight of IN_FLIGHT) {
  const group: TransportSeries[] = TRANSPORTS.map((transport) => ({
    transport,
    ...newSeries(
      inFlight,
      Math.ceil(REQUESTS_PER_ROUND / SAMPLE_EVERY) * ROUNDS,
    ),
  }));
  await runRounds(
    group,
    {
      rounds: ROUNDS,
      warmupRounds: WARMUP_ROUNDS,
      scratch: new Float64Array(REQUESTS_PER_ROUND),
    },
    (s, _label, latencies, offset) =>
      measure(connections[s.transport], s.inFlight, latencies, offset),
  );
  series.push(...group);
}
const totalSeconds = (now() - totalStarted) / 1000;

for (const transport of TRANSPORTS) await connections[transport].close();
await node.close();

const figures = series.map((s) => ({
  transport: s.transport,
  ...countFigures(s),
  ...rateFigures(s),
  openMs: openMs[s.transport],
}));
const tcpRate = (inFlight: number) =>
  figures.find((f) => f.transport === "tcp" && f.inFlight === inFlight)!
    .reqPerSecond;
const ratio = (f: (typeof figures)[number]) =>
  f.reqPerSecond / tcpRate(f.inFlight);

const clientTls = {
  deno: "node:tls over node:net",
  bun: "Bun upgradeTLS",
  node: "node:tls",
}[
  runtimeName()
];
console.log(
  `TLS vs TCP on ${runtimeLabel()} (client ${clientTls}), ECHO of ${
    PAYLOAD.byteLength - 1
  } B, node ${external ? `at ${external}` : "in-process"}` +
    quickNote(),
);
console.log(
  `${ROUNDS} alternating rounds per transport after ${WARMUP_ROUNDS} ` +
    `warm-up; ${fixed(totalSeconds, 1)} s measured`,
);
printTable(
  [
    "transport",
    "in flight",
    ...RATE_HEADERS,
    "open ms",
    "vs tcp",
  ],
  figures.map((f) => [
    f.transport,
    String(f.inFlight),
    ...rateCells(f),
    fixed(f.openMs, 2),
    f.transport === "tcp" ? "-" : `${fixed(ratio(f) * 100, 1)}%`,
  ]),
);
console.log(JSON.stringify({
  bench: "tls",
  runtime: runtimeName(),
  version: runtimeLabel(),
  clientTls,
  quick: QUICK,
  payloadBytes: PAYLOAD.byteLength,
  results: figures.map((f) => ({
    ...f,
    vsTcp: f.transport === "tcp" ? 1 : ratio(f),
  })),
}));
