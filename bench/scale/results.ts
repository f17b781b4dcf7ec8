/**
 * Where the scale benchmarks keep their figures: one JSON file per runtime
 * in bench/results/ (bench/results/quick/ for BENCH_QUICK=1 smoke runs),
 * each holding a section per benchmark script, so scripts run one at a
 * time and on different runtimes add up to one report.
 *
 * @module
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { QUICK, runtimeLabel, runtimeName } from "../harness.ts";

/** Runtimes the report knows, in the order it shows them. */
export const RUNTIMES = ["deno", "bun", "node"] as const;
/** One of {@linkcode RUNTIMES}. */
export type Runtime = typeof RUNTIMES[number];

/** The figures one runtime produced. */
export interface RuntimeResults {
  runtime: Runtime;
  /** e.g. "deno 2.9.6". */
  label: string;
  /** CPU model and count of the machine. */
  machine: string;
  /** Section name to its data and when it was written. */
  sections: Record<string, { at: string; data: unknown }>;
}

/** The folder results are written to (quick runs get their own). */
export function resultsDir(quick = QUICK): string {
  const dir = fileURLToPath(
    new URL(quick ? "../results/quick/" : "../results/", import.meta.url),
  );
  mkdirSync(dir, { recursive: true });
  return dir;
}

function fileFor(runtime: Runtime, quick: boolean): string {
  return `${resultsDir(quick)}scale-${runtime}.json`;
}

/** This machine, as "2 x Intel(R) Xeon(R) ...". */
export function machine(): string {
  const list = cpus();
  return `${list.length} x ${list[0]?.model ?? "unknown CPU"}`;
}

/**
 * Stores `data` as section `name` of this runtime's results, keeping the
 * other sections. Returns the file written.
 */
export function saveSection(name: string, data: unknown): string {
  const runtime = runtimeName();
  const file = fileFor(runtime, QUICK);
  const results: RuntimeResults = existsSync(file)
    ? JSON.parse(readFileSync(file, "utf8"))
    : { runtime, label: runtimeLabel(), machine: machine(), sections: {} };
  results.label = runtimeLabel();
  results.machine = machine();
  results.sections[name] = { at: new Date().toISOString(), data };
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  return file;
}

/** Every runtime's results that exist, in {@linkcode RUNTIMES} order. */
export function loadAll(quick = QUICK): RuntimeResults[] {
  const all: RuntimeResults[] = [];
  for (const runtime of RUNTIMES) {
    const file = fileFor(runtime, quick);
    if (existsSync(file)) all.push(JSON.parse(readFileSync(file, "utf8")));
  }
  return all;
}
