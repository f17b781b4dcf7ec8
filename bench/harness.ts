/**
 * Small helpers shared by the benchmark scripts: quick mode, runtime
 * identification, medians and percentiles, and table output. Written
 * against globals only, so the same file runs on Deno, Bun and Node.
 *
 * @module
 */

import { cpus, release, type } from "node:os";
import { readFileSync } from "node:fs";

interface RuntimeGlobals {
  Deno?: {
    version: { deno: string };
    env: { get(name: string): string | undefined };
  };
  Bun?: { version: string };
  process?: {
    version: string;
    env: Record<string, string | undefined>;
    cpuUsage?(): { user: number; system: number };
  };
}

const globals = globalThis as unknown as RuntimeGlobals;

/** Reads an environment variable on any of the three runtimes. */
export function env(name: string): string | undefined {
  // Deno first: Deno 2 also defines `process`, but Deno.env is its own.
  if (globals.Deno) return globals.Deno.env.get(name);
  return globals.process?.env[name];
}

/**
 * BENCH_QUICK=1 shrinks every count so a run takes seconds: a smoke test
 * that the benchmarks still work, not a measurement.
 */
export const QUICK: boolean = env("BENCH_QUICK") === "1";

/** "deno", "bun" or "node", checked in that order (Deno and Bun fake Node). */
export function runtimeName(): "deno" | "bun" | "node" {
  if (globals.Deno) return "deno";
  if (globals.Bun) return "bun";
  return "node";
}

/** The runtime's version string, e.g. "deno 2.9.6". */
export function runtimeLabel(): string {
  if (globals.Deno) return `deno ${globals.Deno.version.deno}`;
  if (globals.Bun) return `bun ${globals.Bun.version}`;
  return `node ${globals.process?.version ?? "?"}`;
}

/**
 * The machine a run measured: CPU model and count, kernel, and the date.
 * Ratios move with it (how a core's time splits between the runtime's
 * JavaScript and its syscalls), so every result file names it.
 */
export function machineLabel(): string {
  const list = cpus();
  const model = list[0]?.model?.trim() || "unknown CPU";
  const day = new Date().toISOString().slice(0, 10);
  return `${list.length} x ${model}, ${type()} ${release()}, ${day}`;
}

/** Median of `values` (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * How fast `a` ran against `b` measured side by side: the median of the
 * ratios of their rates round by round (`a[r] / b[r]`, both from the same
 * rotation, seconds apart), or, when the two have no rounds in common
 * (files written before rounds were kept), the ratio of their medians.
 * On a shared machine whose speed drifts over a run by more than the
 * differences measured, a pair of rounds shares the machine's state of
 * the moment, and the median of ratios cancels the drift that the ratio
 * of medians (each from rounds a minute apart) keeps.
 */
export function pairedRatio(
  a: { reqPerSecond: number; roundRates?: readonly number[] },
  b: { reqPerSecond: number; roundRates?: readonly number[] },
): number {
  const x = a.roundRates ?? [];
  const y = b.roundRates ?? [];
  if (x.length > 0 && x.length === y.length && y.every((v) => v > 0)) {
    return median(x.map((v, r) => v / y[r]));
  }
  return a.reqPerSecond / b.reqPerSecond;
}

/**
 * The smallest of `values` (Infinity when there is none, as `Math.min()`).
 * A loop, not `Math.min(...values)`: spread into a call, an array of some
 * hundred thousand numbers overflows the stack.
 */
export function minOf(values: Iterable<number>): number {
  let min = Infinity;
  for (const v of values) if (v < min || Number.isNaN(v)) min = v;
  return min;
}

/** The largest of `values` (-Infinity when there is none): see `minOf`. */
export function maxOf(values: Iterable<number>): number {
  let max = -Infinity;
  for (const v of values) if (v > max || Number.isNaN(v)) max = v;
  return max;
}

/** The `q` quantile (0..1) of an already sorted array, nearest rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

/** Formats a rate or count with thousands separators and no decimals. */
export function int(value: number): string {
  return Number.isFinite(value)
    ? Math.round(value).toLocaleString("en-US")
    : String(value);
}

/** Formats `value` with `digits` decimals. */
export function fixed(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}

/** `value` with `digits` decimals, or "-" when there is none. */
export function orDash(
  value: number | null | undefined,
  digits: number,
): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? "-"
    : fixed(value, digits);
}

/** A ratio as a percentage with one decimal, or "-" when there is none. */
export function percent(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio)
    ? "-"
    : `${fixed(ratio * 100, 1)}%`;
}

/** A payload size in B, KiB or MiB. */
export function sizeLabel(bytes: number): string {
  return bytes >= 1 << 20
    ? `${bytes >> 20} MiB`
    : bytes >= 1024
    ? `${bytes >> 10} KiB`
    : `${bytes} B`;
}

/** A markdown table, the first column left-aligned and the rest right. */
export function table(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const align = headers.map((_, i) => (i === 0 ? "---" : "---:"));
  return [line(headers), line(align), ...rows.map(line)].join("\n");
}

/** Prints rows as a left/right aligned text table (numbers right). */
export function printTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): void {
  const widths = headers.map((h, i) =>
    Math.max(h.length, maxOf(rows.map((r) => r[i].length)))
  );
  const numeric = headers.map((_, i) =>
    rows.every((r) => /^[-+]?[\d,.]+(%|x)?$/.test(r[i]) || r[i] === "-")
  );
  const line = (cells: readonly string[]) =>
    cells.map((c, i) =>
      numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])
    ).join("  ");
  console.log(line(headers));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

/**
 * CPU time this process has used so far (user + system), in microseconds:
 * `process.cpuUsage()`, which Deno 2, Bun and Node all have. NaN where it
 * is missing, so a figure built on it shows as NaN rather than as 0.
 */
export function cpuMicros(): number {
  const usage = globals.process?.cpuUsage?.();
  return usage === undefined ? NaN : usage.user + usage.system;
}

/**
 * CPU time process `pid` has used so far (user + system), in
 * microseconds, from Linux's `/proc/<pid>/stat` (in clock ticks, taken as
 * the usual 100 a second: 10 ms steps, fine over rounds of a second or
 * more). NaN elsewhere, or once the process is gone.
 */
export function processCpuMicros(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name, in parentheses, may hold spaces: fields are
    // counted after its closing one (utime and stime are 14th and 15th).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10_000 : NaN;
  } catch {
    return NaN;
  }
}

/** Milliseconds on a monotonic clock. */
export const now = (): number => performance.now();

/**
 * Resolves after a macrotask, letting pending I/O callbacks and timers run
 * between rounds (a microtask would not).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Reads a comma-separated list from the environment, else `fallback`. */
export function envList(name: string, fallback: string): string[] {
  return (env(name) ?? fallback).split(",");
}

/** Splits "host:port" at the last colon. */
export function splitHostPort(
  address: string,
): { hostname: string; port: number } {
  const at = address.lastIndexOf(":");
  return {
    hostname: address.slice(0, at),
    port: Number(address.slice(at + 1)),
  };
}

/** Appended to a bench's heading line in quick mode. */
export function quickNote(): string {
  return QUICK ? " (BENCH_QUICK: smoke run, figures not meaningful)" : "";
}

/** What one round of `runRound` did. */
export interface Round {
  /** Calls that resolved `true`. */
  completed: number;
  /** Latencies recorded. */
  sampled: number;
  seconds: number;
}

/** How `runRound` drives its calls. */
export interface RoundOptions {
  inFlight: number;
  /** Calls to issue at most. */
  count: number;
  /** The round stops early once a timed call ends after this long. */
  limitMs: number;
  /** Time every Nth call only: a clock read is not free. */
  sampleEvery: number;
  /** Sampled latencies (ms) go here from `offset` on, while there is room. */
  latencies: Float64Array;
  offset: number;
}

/**
 * Runs up to `count` calls with `inFlight` workers, each awaiting its call
 * before the next. A call resolving `false` is not counted as completed,
 * nor timed (a lost request).
 */
export async function runRound(
  call: () => Promise<boolean>,
  options: RoundOptions,
): Promise<Round> {
  const { inFlight, count, sampleEvery, latencies, offset } = options;
  let issued = 0;
  let completed = 0;
  let sampled = 0;
  let stop = false;
  const started = now();
  const deadline = started + options.limitMs;
  const worker = async () => {
    while (!stop && issued < count) {
      if (issued++ % sampleEvery !== 0) {
        if (await call()) completed++;
        continue;
      }
      const t0 = now();
      const ok = await call();
      const t1 = now();
      if (!ok) continue;
      completed++;
      if (offset + sampled < latencies.length) {
        latencies[offset + sampled++] = t1 - t0;
      }
      if (t1 > deadline) stop = true;
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < inFlight; i++) workers.push(worker());
  await Promise.all(workers);
  return { completed, sampled, seconds: (now() - started) / 1000 };
}

/** The measured rounds of one contender at one concurrency. */
export interface Series {
  inFlight: number;
  /** req/s of each measured round. */
  rates: number[];
  latencies: Float64Array;
  /** Latency samples recorded. */
  filled: number;
  requests: number;
}

/** A fresh `Series` with room for `samples` latencies. */
export function newSeries(inFlight: number, samples: number): Series {
  return {
    inFlight,
    rates: [],
    latencies: new Float64Array(samples),
    filled: 0,
    requests: 0,
  };
}

/**
 * Warm-up rounds (into `scratch`), then measured rounds of every member of
 * `group`, rotating who goes first each round so drift on a busy machine
 * hits all alike. `measure` runs one round; `record` adds a measured
 * round's own counters to its series.
 */
export async function runRounds<S extends Series, R extends Round>(
  group: readonly S[],
  counts: { rounds: number; warmupRounds: number; scratch: Float64Array },
  measure: (
    s: S,
    label: string,
    latencies: Float64Array,
    offset: number,
  ) => Promise<R>,
  record?: (s: S, round: R) => void,
): Promise<void> {
  for (let w = 0; w < counts.warmupRounds; w++) {
    for (const s of group) {
      await measure(s, `warm-up ${w + 1}`, counts.scratch, 0);
    }
  }
  for (let r = 0; r < counts.rounds; r++) {
    const order = group.map((_, i) => group[(i + r) % group.length]);
    for (const s of order) {
      await yieldToEventLoop();
      const round = await measure(s, `round ${r + 1}`, s.latencies, s.filled);
      s.filled += round.sampled;
      s.requests += round.completed;
      record?.(s, round);
      s.rates.push(round.completed / round.seconds);
    }
  }
}

/** Counts of a series: concurrency, measured rounds, requests. */
export function countFigures(
  s: Series,
): { inFlight: number; rounds: number; requests: number } {
  return { inFlight: s.inFlight, rounds: s.rates.length, requests: s.requests };
}

/** Rate and latency figures of a series. */
export interface RateFigures {
  reqPerSecond: number;
  minReqPerSecond: number;
  maxReqPerSecond: number;
  p50Us: number;
  p99Us: number;
}

/** Median/min/max req/s and p50/p99 latency (us) of `s`. */
export function rateFigures(s: Series): RateFigures {
  const sorted = s.latencies.subarray(0, s.filled).sort();
  return {
    reqPerSecond: median(s.rates),
    minReqPerSecond: minOf(s.rates),
    maxReqPerSecond: maxOf(s.rates),
    p50Us: quantile(sorted, 0.5) * 1000,
    p99Us: quantile(sorted, 0.99) * 1000,
  };
}

/** Table headers for the cells of `rateCells`. */
export const RATE_HEADERS: readonly string[] = [
  "median req/s",
  "min",
  "max",
  "p50 us",
  "p99 us",
];

/** Table cells of `RateFigures`, under `RATE_HEADERS`. */
export function rateCells(f: RateFigures): string[] {
  return [
    int(f.reqPerSecond),
    int(f.minReqPerSecond),
    int(f.maxReqPerSecond),
    fixed(f.p50Us, 0),
    fixed(f.p99Us, 0),
  ];
}

/** `f` with rates rounded to integers and latencies to 0.1 us, for JSON. */
export function roundFigures<F extends RateFigures>(f: F): F {
  return {
    ...f,
    reqPerSecond: Math.round(f.reqPerSecond),
    minReqPerSecond: Math.round(f.minReqPerSecond),
    maxReqPerSecond: Math.round(f.maxReqPerSecond),
    p50Us: Number(f.p50Us.toFixed(1)),
    p99Us: Number(f.p99Us.toFixed(1)),
  };
}

/** Ratios rounded to 3 decimals, for JSON. */
export function roundRatios(
  ratios: Record<string, number>,
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(ratios).map(([k, v]) => [k, Number(v.toFixed(3))]),
  );
}
