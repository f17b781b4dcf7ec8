/**
 * The commands that talk to running nodes as a client: `ping`, `health`
 * and `bench`. Each connects with the options' credentials and TLS
 * settings, prints one result (a table, or one JSON document) and exits
 * 0 only when every node answered.
 *
 * @module
 */

import { Client } from "../client/client.ts";
import type { ConnectionConfig } from "../config/shapes.ts";
import { numberOption, type ParsedArgs } from "./args.ts";
import { formatCount, formatMs, quantile, renderTable } from "./format.ts";
import { runLoad } from "./load.ts";
import type { Output } from "./output.ts";
import { ProgressLine } from "./progress.ts";
import { ExitCode } from "./spec.ts";

/** `ping`: a health check of every node, with its round trip. */
export async function ping(
  config: ConnectionConfig,
  out: Output,
): Promise<number> {
  const client = await Client.connect(config);
  try {
    const results = await client.healthCheckAllNodes();
    const protocols = new Map(
      client.stats().nodes.map((n) => [n.address, n.protocol]),
    );
    const ok = results.every((r) => r.ok);
    out.result({
      ok,
      nodes: results.map((r) => ({
        address: r.address,
        nodeId: r.nodeId ?? null,
        ok: r.ok,
        latencyMs: r.latencyMs ?? null,
        protocol: protocols.get(r.address) ?? null,
        error: r.error
          ? {
            code: (r.error as { code?: string }).code ?? "ERROR",
            message: r.error.message,
          }
          : null,
      })),
    }, () =>
      renderTable(
        ["node", "id", "round trip", "protocol", "result"],
        results.map((r) => [
          r.address,
          r.nodeId ?? "–",
          formatMs(r.latencyMs),
          protocols.get(r.address) ?? "–",
          r.ok ? "ok" : `FAILED: ${r.error?.message}`,
        ]),
      ));
    return ok ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    await client.disconnect();
  }
}

/** `health`: every node's health, latency and pool after one sweep. */
export async function health(
  config: ConnectionConfig,
  out: Output,
): Promise<number> {
  const client = await Client.connect(config);
  try {
    await client.healthCheckAllNodes();
    const stats = client.stats();
    const ok = stats.nodes.every((n) => n.healthy);
    out.result({
      ok,
      nodes: stats.nodes.map((n) => ({
        address: n.address,
        nodeId: n.nodeId ?? null,
        healthy: n.healthy,
        latencyMs: n.latencyMs ?? null,
        consecutiveFailures: n.consecutiveFailures,
        protocol: n.protocol ?? null,
        inFlight: n.inFlight,
        pool: n.pool,
      })),
    }, () =>
      renderTable(
        ["node", "id", "healthy", "latency", "failures", "open", "in flight"],
        stats.nodes.map((n) => [
          n.address,
          n.nodeId ?? "–",
          n.healthy ? "yes" : "NO",
          formatMs(n.latencyMs),
          n.consecutiveFailures,
          n.pool.open,
          n.inFlight,
        ]),
      ));
    return ok ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    await client.disconnect();
  }
}

/** What `bench` was asked for, validated. */
export interface BenchOptions {
  /** How long, in ms. */
  durationMs: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Payload size, in bytes. */
  size: number;
}

/** Validates `bench`'s own options, before anything is read or opened. */
export function benchOptions(parsed: ParsedArgs): BenchOptions {
  return {
    durationMs: numberOption(parsed, "duration", 5, { min: 0.1, max: 600 }) *
      1000,
    concurrency: numberOption(parsed, "concurrency", 64, {
      min: 1,
      max: 10_000,
      integer: true,
    }),
    size: numberOption(parsed, "size", 16, {
      min: 0,
      max: 1 << 20,
      integer: true,
    }),
  };
}

/**
 * `bench`: a bounded load of `echo` payloads (the reference node's ECHO,
 * given by the entry point, which may use the testing kit), progress on
 * stderr, then a summary.
 */
export async function bench(
  { durationMs, concurrency, size }: BenchOptions,
  config: ConnectionConfig,
  out: Output,
  echo: (data: Uint8Array) => Uint8Array,
): Promise<number> {
  const client = await Client.connect(config);
  const progress = new ProgressLine({ stream: "stderr" });
  try {
    const result = await runLoad(client, {
      concurrency,
      durationMs,
      payload: echo(new Uint8Array(size)),
      idempotent: true,
      onTick: (s) =>
        progress.update(
          `${(s.elapsedMs / 1000).toFixed(1)} s  ${
            formatCount(s.recentRate)
          } req/s  p50 ${formatMs(quantile(s.recent, 0.5))}  p99 ${
            formatMs(quantile(s.recent, 0.99))
          }  errors ${s.errors}`,
        ),
    });
    progress.done();
    const seconds = result.elapsedMs / 1000;
    const latency = (q: number) => quantile(result.latencies, q) ?? null;
    const ok = result.errors === 0 && result.ok > 0;
    out.result({
      ok,
      requests: result.ok,
      errors: result.errors,
      errorKinds: Object.fromEntries(result.errorKinds),
      elapsedMs: result.elapsedMs,
      requestsPerSecond: result.ok / seconds,
      latencyMs: {
        p50: latency(0.5),
        p99: latency(0.99),
        max: result.latencies[result.latencies.length - 1] ?? null,
      },
      perNode: Object.fromEntries(result.perNode),
      otherIds: result.otherIds,
    }, () =>
      renderTable(["measure", "value"], [
        ["requests", formatCount(result.ok)],
        ["throughput", `${formatCount(result.ok / seconds)} req/s`],
        ["errors", result.errors],
        ["p50", formatMs(quantile(result.latencies, 0.5))],
        ["p99", formatMs(quantile(result.latencies, 0.99))],
        ["max", formatMs(result.latencies[result.latencies.length - 1])],
        ...[...result.perNode].map((
          [id, n],
        ): [string, string] => [`node ${id}`, formatCount(n)]),
        ...(result.otherIds > 0
          ? [["other node ids", formatCount(result.otherIds)]]
          : []),
      ]));
    return ok ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    await client.disconnect();
  }
}
