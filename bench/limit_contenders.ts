/**
 * The contenders of the limit bench (`limit.bench.ts`): `Client.request`,
 * `requestMany`, the raw promise client and the raw batching client, each
 * behind one `round()` that the measuring loop drives alike. Their round
 * loops are what the bench measures, so the settings those loops read (per
 * request, SAMPLE_EVERY; per round, the time limit) live in this module.
 *
 * @module
 */

import { Client } from "../src/client/client.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { ops } from "../testing/ops.ts";
import { type BatchingClient, connectBatching } from "./batching_client.ts";
import { env, now, QUICK, type Round, runtimeName } from "./harness.ts";
import type { Target } from "./limit_target.ts";
import { connectRaw, type RawClient, type RawTls } from "./raw_client.ts";

/** Longest a round runs, in ms (BENCH_ROUND_MS). */
export const ROUND_LIMIT_MS = Number(
  env("BENCH_ROUND_MS") ?? (QUICK ? 300 : 1_500),
);
/**
 * Every so many requests of a timed round, one latency is sampled (up to
 * limit_measure.ts's MAX_SAMPLES_PER_ROUND per round).
 */
export const SAMPLE_EVERY = 32;
/** Concurrent requestMany callers in the batch row (BENCH_BATCH_CALLERS). */
const BATCH_CALLERS = Number(env("BENCH_BATCH_CALLERS") ?? 4);

/** One way of sending requests, measured a round at a time. */
export interface Contender {
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

/**
 * Learns the id length of the node's replies, which the awaiting rounds
 * check every reply's length against.
 */
export async function learnReplyOverhead(target: Target): Promise<void> {
  const raw = await connectRaw(target.host, target.port);
  const reply = await raw.request(ops.echo(new Uint8Array(0)));
  replyOverhead = reply.byteLength;
  await raw.close();
}

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
        // The clock is read on failures too: a round whose every request
        // fails (each at its timeout) must still end on time, not after
        // `count` of them.
        if (now() > deadline) stop = true;
        continue;
      }
      if (reply.byteLength !== expect) {
        failed++;
        if (now() > deadline) stop = true;
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

/** `Client.request` on a client with one connection and no health loop. */
export async function clientContender(
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

/** The shape of `client.requestMany`. */
export type RequestMany = (payloads: Uint8Array[]) => Promise<unknown[]>;

/** `client.requestMany`, once another branch has added it. */
export function requestManyOf(client: Client): RequestMany | undefined {
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

/** `requestMany` from BENCH_BATCH_CALLERS callers sharing the in-flight count. */
export function batchContender(requestMany: RequestMany): Contender {
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

/** The raw promise-per-request client, over TCP or the runtime's own TLS. */
export async function promiseContender(
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

/** The raw batching client, or with `handOut` the floor of a batch API. */
export async function batchingContender(
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
export const RAW_TLS_API = runtimeName() === "deno"
  ? "Deno.startTls (rustls)"
  : runtimeName() === "bun"
  ? "Bun upgradeTLS"
  : "node:tls";
