/**
 * The minimal raw client on Node (`raw_client.ts` picks it): `node:net`
 * with Nagle off, `node:tls` for TLS, each read handed over as a plain
 * view, around the shared framing of `raw_client_framing.ts`. `node:net`
 * and `node:tls` are imported only when running on Node.
 *
 * One of the baseline files, the one place outside `src/runtime/` allowed
 * to touch runtime sockets (`Deno.connect`, `Bun.connect`, `node:net`):
 * `raw_client.ts` and its per-runtime files `raw_client_deno.ts`,
 * `raw_client_bun.ts` and `raw_client_node.ts`, `batching_client.ts` and
 * `raw_socket.ts`. A baseline that went through the SDK's adapters or
 * `Connection` would measure them against themselves.
 *
 * @module
 */

import { isIpLiteral } from "../src/runtime/tls.ts";
import {
  CLOSE_TIMEOUT_MS,
  Framing,
  handshake,
  negotiateTls,
  type RawClient,
  type RawTls,
  request,
} from "./raw_client_framing.ts";

// --- Node: node:net with Nagle off; 'data' delivers a fresh Buffer per read.
// (`onread` with a reused buffer plus one copy per read measured within 1%
// of this on Node 20, so the simpler form stays.)

/** Connects the raw client with `node:net` (and `node:tls`, with `tls`). */
export async function connectNode(
  hostname: string,
  port: number,
  tls: RawTls | undefined,
): Promise<RawClient> {
  const net = await import("node:net");
  const tcp = net.connect({ host: hostname, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    tcp.once("connect", () => {
      tcp.off("error", reject);
      resolve();
    });
    tcp.once("error", reject);
  });
  tcp.setNoDelay(true);
  let socket: import("node:net").Socket = tcp;
  if (tls) {
    const chunks: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    const onData = (chunk: Uint8Array) => {
      chunks.push(chunk);
      wake?.();
    };
    tcp.on("data", onData);
    await negotiateTls(
      (bytes) => {
        tcp.write(bytes);
        return Promise.resolve();
      },
      async () => {
        while (chunks.length === 0) {
          await new Promise<void>((resolve) => wake = resolve);
        }
        return chunks.shift()!;
      },
    );
    tcp.off("data", onData);
    const { connect } = await import("node:tls");
    socket = await new Promise((resolve, reject) => {
      const secure = connect({
        socket: tcp,
        // SNI carries host names only: Node warns (DEP0123) for an address.
        servername: isIpLiteral(tls.serverName) ? undefined : tls.serverName,
        ca: [tls.ca],
      });
      secure.once("secureConnect", () => resolve(secure));
      secure.once("error", reject);
    });
  }
  const framing = new Framing((bytes) => {
    socket.write(bytes);
  });
  // A plain view per read: a Buffer's subarray() (one per reply) builds a
  // Buffer through its species constructor, much slower than a view's.
  const view = (chunk: Uint8Array) =>
    new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
  // node:tls calls back once per record and runs the microtasks in
  // between; handing the records of one read over together keeps one
  // write per read (as the Node adapter does).
  let gathered: Uint8Array[] | undefined;
  const deliver = () => {
    const chunks = gathered!;
    gathered = undefined;
    for (const chunk of chunks) framing.feed(chunk);
  };
  if (tls) {
    socket.on("data", (chunk: Uint8Array) => {
      if (gathered === undefined) {
        gathered = [view(chunk)];
        setImmediate(deliver);
      } else gathered.push(view(chunk));
    });
  } else socket.on("data", (chunk: Uint8Array) => framing.feed(view(chunk)));
  socket.on("error", () => {});
  socket.on("close", () => {
    if (gathered !== undefined) deliver();
    framing.close();
  });
  if (!tls) await handshake(framing);
  return {
    runtime: "node",
    request: request(framing),
    async close() {
      framing.flush();
      if (!framing.closed) {
        socket.end();
        await framing.whenClosed(CLOSE_TIMEOUT_MS);
      }
      framing.close();
      socket.destroy();
    },
  };
}
