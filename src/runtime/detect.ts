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
import { detectRuntime } from "./runtime_name.ts";

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
 *   or `"deno"` where Deno cannot connect (another runtime).
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
      // Its connects to be upgraded run on Deno.connect: elsewhere they
      // failed with a ReferenceError, late, as if the node were at fault.
      if (!denoCanConnect()) {
        throw new ConfigError(
          "runtime",
          name,
          'expected the runtime this program runs on ("deno" needs Deno): ' +
            'leave it out to detect it, or use "node"',
        );
      }
      return withDatagram(
        (await import("./deno/adapter.ts")).denoAdapter,
        async () => (await import("./deno/datagram.ts")).openDenoDatagram,
      );
    case "bun":
      return withDatagram(
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

function denoCanConnect(): boolean {
  const deno = (globalThis as { Deno?: { connect?: unknown } }).Deno;
  return typeof deno?.connect === "function";
}
