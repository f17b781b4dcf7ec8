/**
 * The runtime adapters: the only code that touches sockets. One per
 * runtime (Deno, Bun, Node), chosen by {@linkcode getAdapter}, plus an
 * in-memory network for tests; and the small interfaces they implement,
 * for anyone writing an adapter of their own.
 *
 * @example The adapter for the runtime this runs on
 * ```ts
 * import { getAdapter } from "@nodewire/client/runtime";
 * const adapter = await getAdapter();
 * console.log(adapter.name); // "deno", "bun" or "node"
 * ```
 *
 * @module
 */

export {
  detectRuntime,
  getAdapter,
  type NativeRuntimeName,
} from "./src/runtime/detect.ts";
export {
  createMemoryNetwork,
  type MemoryNetwork,
} from "./src/runtime/memory.ts";
export type {
  ByteChannel,
  ConnectOptions,
  Listener,
  ListenOptions,
  RuntimeAdapter,
  RuntimeName,
  TlsOptions,
  TlsServerOptions,
} from "./src/runtime/types.ts";
export type {
  DatagramChannel,
  DatagramOpener,
  DatagramOptions,
  DatagramReceiver,
} from "./src/runtime/datagram.ts";
