/**
 * Small helpers shared by the benchmark scripts: quick mode, runtime
 * identification, medians and percentiles, and table output. Written
 * against globals only, so the same file runs on Deno, Bun and Node.
 *
 * @module
 */

interface RuntimeGlobals {
  Deno?: {
    version: { deno: string };
    env: { get(name: string): string | undefined };
  };
  Bun?: { version: string };
  process?: { version: string; env: Record<string, string | undefined> };
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

/** Median of `values` (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2;
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

/** Prints rows as a left/right aligned text table (numbers right). */
export function printTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): void {
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i].length))
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

/** Milliseconds on a monotonic clock. */
export const now = (): number => performance.now();

/**
 * Resolves after a macrotask, letting pending I/O callbacks and timers run
 * between rounds (a microtask would not).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
