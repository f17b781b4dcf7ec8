/**
 * Starts the three-node cluster of bench/slow_node.ts and bench/tail.ts in
 * two child processes of the running runtime (bench/slow_node_cluster.ts):
 * the "pair" of healthy nodes and the "third" node with its degraded
 * variants, so that the nodes never share the clients' thread.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { SlowNodeCluster } from "./slow_node_cluster.ts";
import { runtimeName } from "./harness.ts";

const CLUSTER = fileURLToPath(
  new URL("./slow_node_cluster.ts", import.meta.url),
);

/** A running cluster child and the addresses it printed. */
export interface ClusterChild {
  readonly child: ChildProcess;
  readonly cluster: SlowNodeCluster;
}

/** Starts bench/slow_node_cluster.ts with `role`; resolves once it listens. */
export function startChild(role: "pair" | "third"): Promise<ClusterChild> {
  const args = runtimeName() === "deno"
    ? ["run", "-A", CLUSTER, role]
    : runtimeName() === "bun"
    ? [CLUSTER, role]
    : ["--import", "tsx", CLUSTER, role];
  const child = spawn(process.execPath, args, {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${role} did not start in 60 s: ${output}`));
    }, 60_000);
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      const line = output.split("\n").find((l) => l.startsWith("{"));
      if (line === undefined || !output.includes("\n")) return;
      clearTimeout(timer);
      resolve({ child, cluster: JSON.parse(line) });
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} exited with ${code}: ${output}`));
    });
  });
}

/** Stops a child: closing its stdin lets it exit on its own. */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.stdin!.end();
  });
}
