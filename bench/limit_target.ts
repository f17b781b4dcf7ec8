/**
 * The node the limit bench (`limit.bench.ts`) measures against: the native
 * C node out of process, the TypeScript reference node in a child process
 * when there is no compiler, or (BENCH_IN_PROCESS=1) the reference node in
 * this process. Apart from the bench so that its sections read as what
 * they measure, not how the node was found.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { startTestNode } from "../testing/node.ts";
import { env, processCpuMicros } from "./harness.ts";
import {
  startNativeNode,
  startScriptNode,
  TEST_CERT,
} from "./native/native_node.ts";

/** The node under the bench, however it was started. */
export interface Target {
  kind: "native" | "script" | "in-process";
  address: string;
  host: string;
  port: number;
  udp: boolean;
  tls: boolean;
  /** Said in every header: which node, and why when it is not the native one. */
  note: string;
  /**
   * The node's own CPU time so far, in µs, when it runs in a process of
   * its own (NaN when it cannot be read, or is this process).
   */
  cpuMicros(): number;
  close(): Promise<void>;
}

/**
 * Starts the node: native out of process, else the reference node in a
 * child process (said on stderr and in every header), or in this process
 * with BENCH_IN_PROCESS=1.
 */
export async function startTarget(): Promise<Target> {
  if (env("BENCH_IN_PROCESS") === "1") {
    const node = await startTestNode({
      nodeId: "inproc-1",
      protocols: ["tls", "tcp", "udp"],
      tls: {
        cert: readFileSync(TEST_CERT.cert, "utf8"),
        key: readFileSync(TEST_CERT.key, "utf8"),
      },
    });
    return {
      kind: "in-process",
      address: node.address,
      host: node.hostname,
      port: node.port,
      udp: node.udpPort !== undefined,
      tls: true,
      note: "reference node IN THIS PROCESS (BENCH_IN_PROCESS=1)",
      cpuMicros: () => NaN,
      close: () => node.close(),
    };
  }
  let started = await startNativeNode({ tls: true });
  let note = "native C node, out of process";
  if ("unavailable" in started) {
    note =
      `TypeScript reference node out of process: native node ${started.unavailable}`;
    console.error(`WARNING: native node ${started.unavailable}`);
    console.error(
      "WARNING: falling back to the TypeScript reference node in a child process; " +
        "its own cost now limits the figures",
    );
    started = await startScriptNode({ tls: true });
  }
  const node = started;
  return {
    kind: node.kind,
    address: node.address,
    host: node.host,
    port: node.port,
    udp: node.udpPort > 0,
    tls: node.tls,
    note,
    cpuMicros: () => processCpuMicros(node.pid),
    close: async () => {
      if (await node.close() === "killed") {
        console.error("WARNING: the node did not exit by itself; killed");
      }
    },
  };
}
