/**
 * Large payloads: MB/s of ECHO requests of 1 KiB, 64 KiB and 1 MiB through
 * `Client.request`, beside the raw-socket client of raw_client.ts in the
 * same run, one reference node, one connection each.
 *
 *   deno run -A bench/large.bench.ts
 *   bun bench/large.bench.ts
 *   node --import tsx bench/large.bench.ts
 *
 * MB/s counts payload bytes sent (the echo brings as many back). The raw
 * client copies every payload into its write slab, as the client did before
 * large payloads went out uncopied. BENCH_NODES=host:port targets a node
 * that runs elsewhere (the node's own copies then leave this thread);
 * BENCH_IN_FLIGHT (default 8) sets the requests in flight; BENCH_QUICK=1
 * makes it a smoke run. The last line is one JSON object.
 *
 * @module
 */

import { Client } from "../src/client/client.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import {
  env,
  fixed,
  int,
  median,
  newSeries,
  printTable,
  QUICK,
  quickNote,
  runRound,
  runRounds,
  runtimeLabel,
  runtimeName,
  type Series,
  splitHostPort,
} from "./harness.ts";
import { connectRaw } from "./raw_client.ts";

const SIZES = [1024, 64 * 1024, 1024 * 1024];
const IN_FLIGHT = Number(env("BENCH_IN_FLIGHT") ?? 8);
const ROUNDS = QUICK ? 2 : 5;
const WARMUP_ROUNDS = 1;
/** Bytes per round: about 0.2-1 s each at full size. */
const BYTES_PER_ROUND = QUICK ? 16 << 20 : 256 << 20;
const ROUND_LIMIT_MS = QUICK ? 1_000 : 4_000;

let node: TestNode | undefined;
let host = env("BENCH_NODES")?.split(",")[0];
if (host === undefined) {
  node = await startTestNode({ nodeId: "bench", maxFrameSize: 4 << 20 });
  host = node.address;
}
const { hostname, port } = splitHostPort(host);
const raw = await connectRaw(hostname, port);
const client = await Client.connect({
  hosts: [host],
  healthConfig: { intervalMs: 0 },
  poolConfig: { minConnections: 1, maxConnections: 1 },
  maxFrameSize: 4 << 20,
});

type Name = "raw" | "client";
const send: Record<Name, (p: Uint8Array) => Promise<Uint8Array>> = {
  raw: (p) => raw.request(p),
  client: (p) => client.request(p),
};

interface LargeSeries extends Series {
  name: Name;
  size: number;
}

const series: LargeSeries[] = [];
for (const size of SIZES) {
  const payload = ops.echo(new Uint8Array(size - 1).fill(7));
  const count = Math.max(IN_FLIGHT * 4, Math.floor(BYTES_PER_ROUND / size));
  const scratch = new Float64Array(count);
  const group: LargeSeries[] = (["raw", "client"] as Name[]).map((name) => ({
    name,
    size,
    ...newSeries(IN_FLIGHT, count * ROUNDS),
  }));
  await runRounds(
    group,
    { rounds: ROUNDS, warmupRounds: WARMUP_ROUNDS, scratch },
    (s, _label, latencies, offset) =>
      runRound(async () => {
        const reply = await send[s.name](payload);
        return reply.byteLength >= size;
      }, {
        inFlight: IN_FLIGHT,
        count,
        limitMs: ROUND_LIMIT_MS,
        sampleEvery: 1,
        latencies,
        offset,
      }),
  );
  series.push(...group);
}

await client.disconnect();
await raw.close();
await node?.close();

const figures = series.map((s) => {
  const reqPerSecond = median(s.rates);
  return {
    client: s.name,
    payloadBytes: s.size,
    inFlight: s.inFlight,
    reqPerSecond: Math.round(reqPerSecond),
    mbPerSecond: Number(((reqPerSecond * s.size) / 1e6).toFixed(1)),
  };
});
console.log(
  `Large payloads on ${runtimeLabel()}: ECHO, ${IN_FLIGHT} in flight, ` +
    `node ${node ? "in-process" : `at ${host}`}` + quickNote(),
);
printTable(
  ["contender", "payload", "req/s", "MB/s", "vs raw"],
  figures.map((f) => {
    const base = figures.find((r) =>
      r.client === "raw" && r.payloadBytes === f.payloadBytes
    )!;
    return [
      f.client,
      `${f.payloadBytes >> 10} KiB`,
      int(f.reqPerSecond),
      fixed(f.mbPerSecond, 1),
      f.client === "raw"
        ? "-"
        : `${fixed((f.mbPerSecond / base.mbPerSecond) * 100, 1)}%`,
    ];
  }),
);
console.log(JSON.stringify({
  bench: "large",
  runtime: runtimeName(),
  version: runtimeLabel(),
  quick: QUICK,
  results: figures,
}));
