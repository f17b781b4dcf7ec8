/**
 * Picks the adapter for the runtime the code runs on. Adapters are imported
 * lazily, so a Deno or Bun program never loads `node:net`.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import type { RuntimeAdapter, RuntimeName } from "./types.ts";

/** A runtime with a native adapter. */
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
 * import { detectRuntime } from "./detect.ts";
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
 * Returns the adapter to use: the native one of the current runtime by
 * default, the named one, or `adapter` itself when an adapter object is
 * passed (a test's memory network, a wrapper that injects faults).
 *
 * `"memory"` creates a fresh, isolated in-memory network on every call.
 *
 * @throws {ConfigError} for an unknown name.
 * @example
 * ```ts
 * import { getAdapter } from "./detect.ts";
 * const native = await getAdapter();
 * const memory = await getAdapter("memory");
 * console.log(native.name, memory.name);
 * ```
 */
export async function getAdapter(
  adapter?: RuntimeName | RuntimeAdapter,
): Promise<RuntimeAdapter> {
  if (typeof adapter === "object" && adapter !== null) return adapter;
  const name = adapter ?? detectRuntime();
  switch (name) {
    case "deno":
      return (await import("./deno.ts")).denoAdapter;
    case "bun":
      return (await import("./bun.ts")).bunAdapter;
    case "node":
      return (await import("./node.ts")).nodeAdapter;
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
