/**
 * Which runtime this code runs on: its own module, so that an adapter can
 * ask without importing detect.ts, which imports the adapters.
 *
 * @module
 */

import type { RuntimeName } from "./types.ts";

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
