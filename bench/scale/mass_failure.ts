/**
 * What it costs when everything in flight fails at once, as the number in
 * flight grows: 1,000 to 100,000 requests held by a node that never
 * answers, over 8 connections on the memory network with a virtual clock,
 * then failed together by their deadline (one virtual clock step) or by
 * the connections dropping. Reported: wall time from the trigger until
 * every request has settled, in µs per request, through Client.request
 * (no retry) and through Connection.sendRequest. Flat is the goal; a cost
 * per request that grows with the count means something is quadratic.
 *
 *   node_modules/.bin/deno run -A bench/scale/mass_failure.ts
 *   node_modules/.bin/bun bench/scale/mass_failure.ts
 *   node --import tsx bench/scale/mass_failure.ts
 *
 * BENCH_QUICK=1 stops at 10,000. Results go to
 * bench/results/scale-<runtime>.json (section "massFailure").
 *
 * @module
 */

import { Client } from "../../src/client/client.ts";
import { Connection } from "../../src/connection/connection.ts";
import { createMemoryNetwork } from "../../src/runtime/memory.ts";
import { ops } from "../../testing/ops.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";
import {
  fixed,
  int,
  now,
  printTable,
  QUICK,
  runtimeLabel,
} from "../harness.ts";
import { startBlackHole } from "./black_hole.ts";
import { saveSection } from "./results.ts";

const COUNTS = QUICK ? [1_000, 10_000] : [1_000, 10_000, 100_000];
const CONNECTIONS = 8;
const TIMEOUT_MS = 1_000;
const PAYLOAD = ops.echo(new Uint8Array(16));

type Trigger = "deadline" | "connection lost";
type Layer = "Client.request" | "Connection.sendRequest";

interface Setup {
  send(payload: Uint8Array): Promise<unknown>;
  drop(): void;
  close(): Promise<void>;
}

async function setup(layer: Layer, clock: VirtualClock): Promise<Setup> {
  const network = createMemoryNetwork();
  const hole = await startBlackHole(network);
  if (layer === "Client.request") {
    const client = await Client.connect({
      hosts: [hole.address],
      runtime: network,
      clock,
      requestTimeoutMs: TIMEOUT_MS,
      poolConfig: { minConnections: CONNECTIONS, maxConnections: CONNECTIONS },
      healthConfig: { intervalMs: 0 },
    });
    const pool = client.manager.nodes[0].pool;
    for (let i = 0; i < 100 && pool.stats().open < CONNECTIONS; i++) {
      await clock.advance(0);
    }
    const options = { retry: false };
    return {
      send: (payload) => client.request(payload, options),
      drop: () => client.manager.destroyConnections(new Error("dropped")),
      async close() {
        await client.disconnect();
        await hole.close();
      },
    };
  }
  const [hostname, port] = hole.address.split(":");
  const connections = await Promise.all(
    Array.from({ length: CONNECTIONS }, () =>
      Connection.connect({
        adapter: network,
        hostname,
        port: Number(port),
        clock,
        requestTimeoutMs: TIMEOUT_MS,
      })),
  );
  let next = 0;
  return {
    send: (payload) => connections[next++ % CONNECTIONS].sendRequest(payload),
    drop: () => connections.forEach((c) => c.destroy()),
    async close() {
      connections.forEach((c) => c.destroy());
      await hole.close();
    },
  };
}

/** µs per request from the trigger until all `count` have failed. */
async function measure(layer: Layer, trigger: Trigger, count: number) {
  const clock = new VirtualClock();
  const s = await setup(layer, clock);
  try {
    let failed = 0;
    const onFail = () => failed++;
    const settled = Array.from(
      { length: count },
      () => s.send(PAYLOAD).then(onFail, onFail),
    );
    await clock.advance(TIMEOUT_MS - 1); // all sent, none expired
    if (failed !== 0) throw new Error("requests failed before the trigger");
    const start = now();
    if (trigger === "deadline") await clock.advance(1);
    else s.drop();
    await Promise.all(settled);
    const us = ((now() - start) * 1000) / count;
    if (failed !== count) throw new Error(`${failed} of ${count} failed`);
    return us;
  } finally {
    await s.close();
  }
}

async function main() {
  console.log(
    `${runtimeLabel()}: everything in flight fails at once${
      QUICK ? " (quick)" : ""
    }`,
  );
  const rows = [];
  for (const layer of ["Client.request", "Connection.sendRequest"] as const) {
    for (const trigger of ["deadline", "connection lost"] as const) {
      await measure(layer, trigger, 1_000); // warm-up
      const usPerRequest: number[] = [];
      for (const count of COUNTS) {
        usPerRequest.push(await measure(layer, trigger, count));
      }
      rows.push({ layer, trigger, counts: COUNTS, usPerRequest });
    }
  }
  printTable(
    ["layer", "trigger", ...COUNTS.map((c) => `µs/req at ${int(c)}`)],
    rows.map((r) => [
      r.layer,
      r.trigger,
      ...r.usPerRequest.map((us) => fixed(us, 2)),
    ]),
  );
  const file = saveSection("massFailure", { quick: QUICK, rows });
  console.log(`written to ${file}`);
  console.log(JSON.stringify({ bench: "massFailure", rows }));
}

await main();
