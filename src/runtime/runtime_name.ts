/**
 * Which runtime this code runs on: its own module, so that an adapter can
 * ask without importing detect.ts, which imports the adapters.
 *
 * @module
 */

import type { RuntimeName } from "./types.ts";

/**
 * A runtime with a native adapter.
 *
 * @example
 * ```ts
 * import { detectRuntime, getAdapter, type NativeRuntimeName } from "@nodewire/client/runtime";
 * const name: NativeRuntimeName = detectRuntime(); // "deno", "bun" or "node"
 * const adapter = await getAdapter(name);
 * console.log(adapter.name === name); // true
 * ```
 */
export type NativeRuntimeName = Exclude<RuntimeName, "memory">;

/**
 * Names the runtime this code runs on.
 *
 * The order matters: Deno 2 and Bun both define `process` for Node
 * compatibility, so Deno is recognised by `globalThis.Deno` and Bun by
 * `globalThis.Bun` before anything is taken to be Node.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "@nodewire/client/runtime";
 * console.log(detectRuntime()); // "deno" when run with deno
 * ```
 */
export function detectRuntime(): NativeRuntimeName {
  const global = globalThis as { Deno?: { version?: unknown }; Bun?: unknown };
  if (typeof global.Deno === "object" && global.Deno?.version !== undefined) {
    return "deno";
  }
  if (typeof global.Bun === "object" && global.Bun !== null) return "bun";
  return "node";
}

/**
 * Whether the native adapter `name` can work here: Deno's connects run on
 * `Deno.connect`, and Bun's listeners on `Bun.listen`, which no other
 * runtime has (elsewhere they failed late, with a TypeError or a
 * ReferenceError that blamed the node). Node's runs on all three.
 */
export function nativeAdapterRuns(name: NativeRuntimeName): boolean {
  const global = globalThis as {
    Deno?: { connect?: unknown };
    Bun?: { listen?: unknown };
  };
  if (name === "deno") return typeof global.Deno?.connect === "function";
  if (name === "bun") return typeof global.Bun?.listen === "function";
  return true;
}

/**
 * The `expected` part of the ConfigError about a `runtime` whose adapter
 * does not run here ({@linkcode nativeAdapterRuns}).
 */
export function foreignRuntimeExpected(name: "deno" | "bun"): string {
  return `expected the runtime this program runs on ("${name}" needs ${
    name === "deno" ? "Deno" : "Bun"
  }): leave runtime out to detect it, or use "node"`;
}
