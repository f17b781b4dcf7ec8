/**
 * A minimal client for the wire protocol, written straight on each
 * runtime's native socket API: the honest baseline that
 * `connection.bench.ts` measures the SDK's `Connection` against.
 *
 * This file and its per-runtime files (`raw_client_deno.ts`,
 * `raw_client_bun.ts`, `raw_client_node.ts`, around the shared
 * `raw_client_framing.ts`) are, with `batching_client.ts` and
 * `raw_socket.ts`, the one place outside `src/runtime/` allowed to touch
 * runtime sockets (`Deno.connect`, `Bun.connect`, `node:net`): a baseline
 * that went through the SDK's adapters or `Connection` would measure them
 * against themselves. It is deliberately bare: no validation, no timers on
 * the request path, no error classes, resolvers in a fixed ring indexed
 * by sequence number, and frames encoded into a slab that is written once
 * per tick. Deno and Bun are reached through `globalThis` with small local
 * interfaces so `deno check` passes without Bun's typings; `node:net` is
 * imported only when running on Node. Lengths are read with `length`,
 * not `byteLength`, as the client reads them: Node 20's V8 is slower with
 * `byteLength`, and a baseline must not pay what the client does not.
 *
 * @example
 * ```ts ignore
 * import { connectRaw } from "./raw_client.ts";
 * const raw = await connectRaw("127.0.0.1", 7000);
 * const reply = await raw.request(new Uint8Array([1, 104, 105])); // ECHO "hi"
 * await raw.close();
 * ```
 *
 * @module
 */

import { type BunNet, connectBun } from "./raw_client_bun.ts";
import { connectDeno, type DenoNet } from "./raw_client_deno.ts";
import type { RawClient, RawTls } from "./raw_client_framing.ts";
import { connectNode } from "./raw_client_node.ts";

export type { RawClient, RawTls } from "./raw_client_framing.ts";

/**
 * Connects to a node with the current runtime's native socket API and
 * completes the HELLO handshake; with `tls`, negotiates TLS and upgrades
 * with the runtime's own TLS (`Deno.startTls`, Bun's `upgradeTLS`,
 * `node:tls`), the least TLS can cost on that runtime.
 */
export function connectRaw(
  hostname: string,
  port: number,
  tls?: RawTls,
): Promise<RawClient> {
  const g = globalThis as unknown as { Deno?: DenoNet; Bun?: BunNet };
  if (g.Deno) return connectDeno(g.Deno, hostname, port, tls);
  if (g.Bun) return connectBun(g.Bun, hostname, port, tls);
  return connectNode(hostname, port, tls);
}
