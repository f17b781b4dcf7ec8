/**
 * Every process exits on its own. Each scenario of support/exit/scenarios.ts
 * (refused and black-holed connects, requests cut by timeouts, disconnect
 * with work in flight and callers queued, nodes and proxies closed under
 * live sessions) runs in a child process of this runtime, which prints a
 * mark right after its last call and must then exit by itself, without
 * process.exit, within 1 s. A child still alive 10 s after its mark is
 * killed and named. The measured times are printed as one line per run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startTestNode } from "../testing/node.ts";
import { type BlackHole, startBlackHole } from "./support/exit/black_hole.ts";
import { scenarios } from "./support/exit/scenarios.ts";
import { runtime, spawnScript } from "./support/exit/spawn.ts";

/** The contract: gone within this long after the last call. */
const EXIT_WITHIN_MS = 1000;
/** A child still running this long after its mark is killed. */
const KILL_AFTER_MARK_MS = 10_000;
/** A child that has not marked after this long is killed (start-up included). */
const KILL_AFTER_SPAWN_MS = 60_000;
/** Children at once, one per core: more only adds contention at exit. */
const PARALLEL = 2;
/** Set to print every child's output (its notes), not only a failing one's. */
const VERBOSE = process.env.NODEWIRE_EXIT_VERBOSE === "1";
/** Scenario names, comma-separated, to run only those (when chasing one). */
const ONLY = process.env.NODEWIRE_EXIT_ONLY?.split(",");

interface Outcome {
  name: string;
  /** ms from the mark to the exit; undefined when killed or never marked. */
  exitMs?: number;
  code: number | null;
  problems: string[];
  output: string;
}

const child = fileURLToPath(
  new URL("./support/exit/child.ts", import.meta.url),
);

function runScenario(
  name: string,
  blackHole: string,
  slowNode: string,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const proc: ChildProcess = spawnScript(child, [name, blackHole, slowNode]);
    let output = "";
    let markedAt: number | undefined;
    let killed: string | undefined;
    const problems: string[] = [];
    const kill = (why: string) => {
      killed = why;
      proc.kill("SIGKILL");
    };
    let timer = setTimeout(
      () => kill(`no mark within ${KILL_AFTER_SPAWN_MS / 1000} s`),
      KILL_AFTER_SPAWN_MS,
    );
    proc.stdout!.on("data", (chunk) => {
      output += chunk;
      const mark = /^mark (\d+)$/m.exec(output);
      if (mark && markedAt === undefined) {
        markedAt = Number(mark[1]);
        clearTimeout(timer);
        timer = setTimeout(
          () =>
            kill(
              `still running ${
                KILL_AFTER_MARK_MS / 1000
              } s after its last call`,
            ),
          Math.max(0, markedAt + KILL_AFTER_MARK_MS - Date.now()),
        );
      }
    });
    proc.stderr!.on("data", (chunk) => (output += chunk));
    proc.on("exit", (code) => {
      const exitedAt = Date.now();
      clearTimeout(timer);
      for (const m of output.matchAll(/^fail (.*)$/gm)) problems.push(m[1]);
      if (killed) problems.push(killed);
      else if (markedAt === undefined) problems.push("exited without a mark");
      else if (code !== 0) problems.push(`exit code ${code}`);
      const exitMs = killed || markedAt === undefined
        ? undefined
        : exitedAt - markedAt;
      if (exitMs !== undefined && exitMs > EXIT_WITHIN_MS) {
        problems.push(`exited ${exitMs} ms after its last call`);
      }
      resolve({ name, exitMs, code, problems, output });
    });
  });
}

/** Runs every scenario, `PARALLEL` at a time, in table order. */
async function runAll(blackHole: string, slowNode: string) {
  const names = Object.keys(scenarios).filter((n) => ONLY?.includes(n) ?? true);
  // A misspelt NODEWIRE_EXIT_ONLY ran nothing, and nothing has no problems.
  const unknown = ONLY?.filter((n) => !(n in scenarios)) ?? [];
  assert.deepEqual(unknown, [], "NODEWIRE_EXIT_ONLY names no such scenario");
  assert.ok(names.length > 0, "no scenario to run");
  const outcomes: Outcome[] = new Array(names.length);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const i = next++;
      outcomes[i] = await runScenario(names[i], blackHole, slowNode);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return outcomes;
}

test("every scenario's process exits on its own within 1 s of its last call", {
  timeout: 180_000,
}, async () => {
  const slow = await startTestNode({ nodeId: "slow" });
  let hole: BlackHole | undefined;
  try {
    hole = await startBlackHole();
    const outcomes = await runAll(`127.0.0.1:${hole.port}`, slow.address);
    if (VERBOSE) {
      for (const o of outcomes) console.log(`--- ${o.name}\n${o.output}`);
    }
    console.log(
      `exit times on ${runtime} (ms from the last call to the exit): ` +
        outcomes.map((o) => `${o.name} ${o.exitMs ?? "-"}`).join(", "),
    );
    assert.ok(hole.alive(), "the black hole's listener died during the run");
    const failed = outcomes.filter((o) => o.problems.length > 0);
    assert.deepEqual(
      failed.map((o) => `${o.name}: ${o.problems.join("; ")}`),
      [],
      failed.map((o) => `--- ${o.name}\n${o.output}`).join("\n"),
    );
  } finally {
    hole?.close();
    await slow.close();
  }
});
