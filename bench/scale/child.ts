/**
 * Runs reference nodes in child processes of the same runtime, so that a
 * benchmark measures the client on its own thread and heap.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { env, runtimeName } from "../harness.ts";

/** Reference nodes running in other processes. */
export interface NodeProcesses {
  /** `host:port` of every node, across all processes. */
  readonly addresses: string[];
  /** Stops every process. */
  stop(): Promise<void>;
}

const SERVE = fileURLToPath(new URL("./serve_nodes.ts", import.meta.url));

/**
 * The command line that runs `script` on this runtime. BENCH_CHILD_FLAGS
 * adds runtime flags, e.g. "--cpu-prof" to profile the node on Node.
 */
export function commandFor(script: string): string[] {
  const flags = env("BENCH_CHILD_FLAGS")?.split(" ").filter(Boolean) ?? [];
  switch (runtimeName()) {
    case "deno":
      return ["run", "-A", ...flags, script];
    case "bun":
      return [...flags, script];
    default:
      return [...flags, "--import", "tsx", script];
  }
}

/**
 * Runs `script` with `args` in a child process of this runtime and
 * resolves with it and the first JSON line it prints (what it serves),
 * once it printed it; `what` names the child in errors. Fails after 60 s,
 * or if the child exits first.
 */
export function spawnReporting(
  script: string,
  args: string[],
  what: string,
): Promise<{ child: ChildProcess; report: unknown }> {
  const child = spawn(process.execPath, [...commandFor(script), ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${what} did not start in 60 s: ${output}`));
    }, 60_000);
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      const line = output.split("\n").find((l) => l.startsWith("{"));
      if (line === undefined || !output.includes("\n")) return;
      clearTimeout(timer);
      resolve({ child, report: JSON.parse(line) });
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${output}`));
    });
  });
}

/**
 * Stops a child started by {@linkcode spawnReporting}: closing its stdin
 * lets it exit on its own (and write a profile if it was asked to);
 * signals follow if it does not.
 */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    const term = setTimeout(() => child.kill("SIGTERM"), 3_000);
    const kill = setTimeout(() => child.kill("SIGKILL"), 6_000);
    child.once("exit", () => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve();
    });
    child.stdin!.end();
  });
}

async function startOne(
  count: number,
): Promise<{ child: ChildProcess; addresses: string[] }> {
  const { child, report } = await spawnReporting(
    SERVE,
    [String(count)],
    "node process",
  );
  return { child, addresses: (report as { addresses: string[] }).addresses };
}

/**
 * Starts `count` reference nodes spread over `processes` child processes
 * and resolves once all listen.
 *
 * @example
 * ```ts ignore
 * const cluster = await startNodeProcesses(100, 2);
 * console.log(cluster.addresses.length); // 100
 * await cluster.stop();
 * ```
 */
export async function startNodeProcesses(
  count: number,
  processes = 1,
): Promise<NodeProcesses> {
  const per = Math.ceil(count / processes);
  const started = await Promise.all(
    Array.from(
      { length: processes },
      (_, i) => startOne(Math.min(per, count - i * per)),
    ),
  );
  return {
    addresses: started.flatMap((s) => s.addresses),
    async stop() {
      await Promise.all(started.map(({ child }) => stopChild(child)));
    },
  };
}
