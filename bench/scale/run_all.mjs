#!/usr/bin/env node
// Runs every scale benchmark on Deno, Bun and Node, one at a time, then
// the report. Each script writes its own section of
// bench/results/scale-<runtime>.json, so an interrupted run keeps what it
// finished. BENCH_QUICK=1 is passed through; BENCH_RUNTIMES=deno,bun and
// BENCH_SCRIPTS=in_flight,memory narrow a run.
//
//   node bench/scale/run_all.mjs
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const runtimes = (process.env.BENCH_RUNTIMES ?? "deno,bun,node").split(",");
const scripts = (process.env.BENCH_SCRIPTS ??
  "in_flight,memory,real_nodes,simulated_nodes,mass_failure").split(",");
const command = {
  deno: (
    script,
  ) => [bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", script]],
  bun: (script) => [bin("bun"), [script]],
  node: (
    script,
  ) => [process.execPath, ["--expose-gc", "--import", "tsx", script]],
};
let failed = 0;
for (const script of scripts) {
  for (const runtime of runtimes) {
    const [cmd, args] = command[runtime](`bench/scale/${script}.ts`);
    console.log(`\n=== ${runtime}: ${script}`);
    const result = spawnSync(cmd, args, {
      cwd: root,
      stdio: "inherit",
      timeout: 15 * 60_000,
      env: { ...process.env, NO_COLOR: "1" },
    });
    if (result.status !== 0) {
      failed++;
      console.log(
        `=== ${runtime}: ${script} failed (${result.status ?? result.signal})`,
      );
    }
  }
}
const report = spawnSync(process.execPath, [
  "--import",
  "tsx",
  "bench/scale/report.ts",
], {
  cwd: root,
  stdio: "inherit",
});
process.exit(failed > 0 || report.status !== 0 ? 1 : 0);
