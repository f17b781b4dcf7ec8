/**
 * How the limit bench (`limit.bench.ts`) measures: rotating rounds of
 * every contender of a cell, the figures each cell reports (the JSON that
 * `limit_report.ts` reads back), the probe before measuring and the paired
 * ratio of two contenders. Apart from the contenders, whose round loops are
 * the thing measured, and from the sections, which only choose cells.
 *
 * @module
 */

import { ops } from "../testing/ops.ts";
import {
  cpuMicros,
  env,
  median,
  newSeries,
  pairedRatio,
  QUICK,
  rateFigures,
  runRounds,
  type Series,
} from "./harness.ts";
import { type Contender, SAMPLE_EVERY } from "./limit_contenders.ts";
import type { Target } from "./limit_target.ts";

/** Measured rounds per cell (BENCH_ROUNDS). */
export const ROUNDS = Number(env("BENCH_ROUNDS") ?? (QUICK ? 2 : 7));
const WARMUP_ROUNDS = QUICK ? 1 : 2;
/**
 * Latencies kept per round (for p50/p99), one every SAMPLE_EVERY requests:
 * the first 4 million requests of a round, more than a round of
 * BENCH_ROUND_MS carries at the rates awaited requests reach here (about 3
 * million in 1.5 s).
 */
const MAX_SAMPLES_PER_ROUND = 1 << 17;

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
export async function measureCells(
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
export async function probe(contender: Contender): Promise<void> {
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

/** The paired ratio of contender `a` to `b` in one cell, if both ran. */
export function ratio(
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
