/**
 * Picks the adapter for the runtime the code runs on. Adapters are imported
 * lazily, so a Bun program never loads `node:net`.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { readDatagram } from "./arguments.ts";
import { missingMethod } from "./contract.ts";
import type { DatagramOpener } from "./datagram.ts";
import type { RuntimeAdapter, RuntimeName } from "./types.ts";
import {
  detectRuntime,
  foreignRuntimeExpected,
  nativeAdapterRuns,
} from "./runtime_name.ts";

export { detectRuntime, type NativeRuntimeName } from "./runtime_name.ts";

/**
 * Returns the adapter to use: the native one of the current runtime by
 * default, the named one, or `adapter` itself when an adapter object is
 * passed (a test's memory network, a wrapper that injects faults).
 *
 * `"memory"` creates a fresh, isolated in-memory network on every call.
 *
 * @throws {ConfigError} for an unknown name, an object without
 *   `connect` and `listen` functions (or whose methods cannot be read),
 *   or `"deno"` or `"bun"` off that runtime (its adapter needs
 *   `Deno.connect` or `Bun.listen`).
 * @example
 * ```ts
 * import { getAdapter } from "@nodewire/client/runtime";
 * const native = await getAdapter();
 * const memory = await getAdapter("memory");
 * console.log(native.name, memory.name);
 * ```
 */
export async function getAdapter(
  adapter?: RuntimeName | RuntimeAdapter,
): Promise<RuntimeAdapter> {
  if (typeof adapter === "object" && adapter !== null) {
    // Each method read once, and a read that throws (a getter, a revoked
    // proxy) told as such: it escaped as it was.
    const problem = missingMethod(adapter, ["connect", "listen"]);
    if (problem === undefined) return adapter;
    throw new ConfigError(
      "runtime",
      adapter,
      `expected a RuntimeAdapter, but ${problem.wrong}`,
      { cause: problem.cause },
    );
  }
  const name = adapter === undefined ? detectRuntime() : adapter;
  switch (name) {
    case "deno":
    case "bun":
      // Off its runtime, Deno's connects failed late with a ReferenceError
      // (as if the node were at fault), and Bun's listen and datagram with
      // "Cannot read properties of undefined".
      if (!nativeAdapterRuns(name)) {
        throw new ConfigError("runtime", name, foreignRuntimeExpected(name));
      }
      return name === "deno"
        ? withDatagram(
          (await import("./deno/adapter.ts")).denoAdapter,
          async () => (await import("./deno/datagram.ts")).openDenoDatagram,
        )
        : withDatagram(
          (await import("./bun/adapter.ts")).bunAdapter,
          async () => (await import("./bun/datagram.ts")).openBunDatagram,
        );
    case "node":
      return withDatagram(
        (await import("./node/adapter.ts")).nodeAdapter,
        async () => (await import("./node/datagram.ts")).openNodeDatagram,
      );
    case "memory":
      return (await import("./memory.ts")).createMemoryNetwork();
    default:
      throw new ConfigError(
        "runtime",
        name,
        'one of "deno", "bun", "node", "memory" or an adapter object',
      );
  }
}

/**
 * Gives a native adapter its datagram sockets, loaded on first use so a
 * program that never negotiates UDP never loads them (nor `node:dgram`).
 * The adapter object keeps its identity.
 */
function withDatagram(
  adapter: RuntimeAdapter,
  load: () => Promise<DatagramOpener>,
): RuntimeAdapter {
  if (adapter.datagram === undefined) {
    let opener: Promise<DatagramOpener> | undefined;
    adapter.datagram = async (options) => {
      // The copy, not `options`: a getter asked again may answer what
      // was never checked.
      const checked = readDatagram(options);
      return (await (opener ??= load()))(checked);
    };
  }
  return adapter;
}
