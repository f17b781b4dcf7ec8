/**
 * A bounded request load against a client: a fixed number of concurrent
 * workers, stopped by a duration and a request cap, with counts per node,
 * latencies and errors kept for progress lines and a summary.
 *
 * @module
 */

import type { Client } from "../client/client.ts";

const decoder = new TextDecoder();

/** Options of {@linkcode runLoad}. */
export interface LoadOptions {
  /** Requests in flight at once. */
  concurrency: number;
  /** Stop after this long, in ms. */
  durationMs: number;
  /** Stop after this many requests, at most. */
  maxRequests?: number;
  /** The request payload (the reference node's ECHO by default). */
  payload: Uint8Array;
  /** Whether requests may be retried after they may have reached a node. */
  idempotent?: boolean;
  /** Called about every `tickMs` with the counters so far. */
  onTick?: (snapshot: LoadSnapshot) => void;
  /** Interval of `onTick`, in ms. Default 250. */
  tickMs?: number;
  /** Stops the load early. */
  signal?: AbortSignal;
}

/** Counters of a load, so far or in total. */
export interface LoadSnapshot {
  /** Milliseconds since the load began. */
  elapsedMs: number;
  /** Requests answered. */
  ok: number;
  /** Requests that failed for good. */
  errors: number;
  /**
   * Answers per node id, from the reply (reference node format), for the
   * first {@linkcode MAX_NODE_IDS} ids seen.
   */
  perNode: Map<string, number>;
  /** Answers from ids past the first {@linkcode MAX_NODE_IDS}. */
  otherIds: number;
  /** Latencies (ms) of the requests answered since the last tick. */
  recent: Float64Array;
  /** Requests per second since the last tick. */
  recentRate: number;
  /** Error messages by count. */
  errorKinds: Map<string, number>;
}

/** The outcome of {@linkcode runLoad}. */
export interface LoadResult extends LoadSnapshot {
  /** Every latency sample kept (all of them, up to a cap), sorted. */
  latencies: Float64Array;
}

const SAMPLE_CAP = 2_000_000;

/**
 * The most node ids counted apart: a cluster has a few, and a node that
 * puts a new id in every reply must not grow the counts without bound.
 */
export const MAX_NODE_IDS = 64;

/** Runs a bounded load and resolves with its counters. */
export async function runLoad(
  client: Client,
  options: LoadOptions,
): Promise<LoadResult> {
  const start = performance.now();
  const deadline = start + options.durationMs;
  const maxRequests = options.maxRequests ?? Number.MAX_SAFE_INTEGER;
  const all = new Float64Array(Math.min(SAMPLE_CAP, maxRequests));
  let kept = 0;
  let recent: number[] = [];
  let sent = 0;
  let lastTick = start;
  let lastOk = 0;
  const state = {
    ok: 0,
    errors: 0,
    perNode: new Map<string, number>(),
    otherIds: 0,
    errorKinds: new Map<string, number>(),
  };
  const snapshot = (now: number): LoadSnapshot => {
    const sorted = Float64Array.from(recent).sort();
    const s = {
      ...state,
      elapsedMs: now - start,
      recent: sorted,
      recentRate: ((state.ok - lastOk) * 1000) / Math.max(1, now - lastTick),
    };
    recent = [];
    lastTick = now;
    lastOk = state.ok;
    return s;
  };
  const ticker = options.onTick
    ? setInterval(
      () => options.onTick!(snapshot(performance.now())),
      options.tickMs ?? 250,
    )
    : undefined;
  const worker = async () => {
    while (
      sent < maxRequests && !options.signal?.aborted &&
      performance.now() < deadline
    ) {
      sent++;
      const t = performance.now();
      try {
        const reply = await client.request(options.payload, {
          idempotent: options.idempotent,
        });
        const latency = performance.now() - t;
        state.ok++;
        recent.push(latency);
        if (kept < all.length) all[kept++] = latency;
        const id = decoder.decode(reply.subarray(1, 1 + reply[0]));
        const count = state.perNode.get(id);
        if (count !== undefined) state.perNode.set(id, count + 1);
        else if (state.perNode.size < MAX_NODE_IDS) state.perNode.set(id, 1);
        else state.otherIds++;
      } catch (error) {
        state.errors++;
        const kind = error instanceof Error
          ? `${(error as { code?: string }).code ?? error.name}`
          : String(error);
        state.errorKinds.set(kind, (state.errorKinds.get(kind) ?? 0) + 1);
        // Keep a failing cluster from turning the loop into a busy spin.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
  }
  const end = snapshot(performance.now());
  return { ...end, latencies: all.subarray(0, kept).sort() };
}
