/**
 * The Node adapter, on `node:net`. Deno's adapter is this one under
 * another name; it also runs on Bun, which makes it the common reference
 * in tests, though Bun uses its native adapter by default. Its channel is
 * `channel.ts`.
 *
 * `node:net` is loaded with a dynamic import on first use, so Bun users
 * who never pick this adapter never pay for loading it.
 *
 * @module
 */

import type * as Net from "node:net";
import type { Endpoint } from "../../errors.ts";
import { handOver } from "../accept.ts";
import { readConnect, readListen } from "../arguments.ts";
import { toConnectionError, toListenError } from "../errors.ts";
import { acceptTlsOn, checkServerTls, connectTls } from "../tls.ts";
import type {
  ByteChannel,
  ConnectOptions,
  Listener,
  ListenOptions,
  RuntimeAdapter,
} from "../types.ts";
import { HIGH_WATER_MARK } from "../write_queue.ts";
import { NodeChannel } from "./channel.ts";

// Re-exported: the tests take the channel from the adapter's file.
export { NodeChannel };

let netLoading: Promise<typeof Net> | undefined;
let netModule: typeof Net | undefined;

function loadNet(): Promise<typeof Net> {
  netLoading ??= import("node:net").then((net) => netModule = net);
  return netLoading;
}

/**
 * Connects a `node:net` socket to `options`' host and port (plain TCP), and
 * hands it to `wrap` the moment it is connected, in the same turn, so no
 * event can come before its listeners. An abort destroys the socket, which
 * cancels a connect still pending (on Bun too, unlike `Bun.connect`), and
 * rejects with the signal's reason.
 */
export async function connectNet(
  options: ConnectOptions,
  wrap: (
    socket: Net.Socket,
    endpoint: Endpoint,
  ) => ByteChannel | Promise<ByteChannel>,
): Promise<ByteChannel> {
  const { hostname, port, signal } = options;
  signal?.throwIfAborted();
  // Once loaded, the socket is created without an await in between, so
  // no microtask is spent and an abort right after the call meets a
  // connecting socket.
  const net = netModule ?? await loadNet();
  signal?.throwIfAborted();
  const endpoint = { hostname, port };
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: hostname,
      port,
      noDelay: true,
      writableHighWaterMark: HIGH_WATER_MARK,
    } as Net.NetConnectOpts);
    let settled = false;
    const settle = () => {
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      socket.off("connect", onConnect);
    };
    const onAbort = () => {
      if (settled) return;
      settle();
      socket.destroy();
      reject(signal?.reason);
    };
    const onConnect = () => {
      if (settled) return;
      settle();
      resolve(wrap(socket, endpoint));
    };
    // Stays registered: a late error after an abort must not go uncaught.
    socket.on("error", (error: Error) => {
      if (settled) return;
      settle();
      socket.destroy();
      reject(toConnectionError(error, endpoint, {
        phase: "connect",
        elapsedMs: performance.now() - started,
      }));
    });
    socket.once("connect", onConnect);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The adapter for Node, on `node:net` with Nagle off. Works on Deno and Bun
 * too, through their Node compatibility.
 *
 * `write` returns false when the socket's buffer passes 1 MiB; `drained`
 * waits for Node's `'drain'`. An abort during connect destroys the socket
 * and rejects with the signal's reason.
 */
export const nodeAdapter: RuntimeAdapter = {
  name: "node",
  supportsTls: true,

  // async so that a bad argument rejects rather than throws.
  // deno-lint-ignore require-await
  async connect(options: ConnectOptions): Promise<ByteChannel> {
    options = readConnect(options);
    if (options.tls) return connectTls(nodeAdapter, options);
    return connectNet(
      options,
      (socket, endpoint) => new NodeChannel(socket, endpoint),
    );
  },

  async listen(
    options: ListenOptions,
    onConnection: (channel: ByteChannel) => void,
  ): Promise<Listener> {
    options = readListen(options, onConnection);
    if (options.tls) {
      // Checked before binding: a pair that does not go together would
      // bind fine and then reset every client.
      await checkServerTls(options.tls);
      return nodeAdapter.listen(
        { ...options, tls: undefined },
        acceptTlsOn(options.tls, onConnection),
      );
    }
    const net = netModule ?? await loadNet();
    const hostname = options.hostname ?? "127.0.0.1";
    const server = net.createServer({
      noDelay: true,
      highWaterMark: HIGH_WATER_MARK,
    } as Net.ServerOpts, (socket) => {
      const remote = {
        hostname: socket.remoteAddress ?? "",
        port: socket.remotePort ?? 0,
      };
      handOver(onConnection, new NodeChannel(socket, remote));
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => {
        reject(toListenError(error, { hostname, port: options.port }));
      };
      server.once("error", onError);
      server.listen({ host: hostname, port: options.port }, () => {
        server.off("error", onError);
        resolve();
      });
    });
    // A server error after binding (EMFILE on accept) must not crash the
    // process; the accepted channels report their own errors.
    server.on("error", () => {});
    const address = server.address() as Net.AddressInfo;
    let closed = false;
    return {
      hostname: address.address,
      port: address.port,
      close(): Promise<void> {
        if (closed) return Promise.resolve();
        closed = true;
        // server.close()'s callback waits for every accepted socket to end;
        // the contract only asks that the port be unbound, which close()
        // does at once. Open channels stay open.
        server.close();
        return Promise.resolve();
      },
    };
  },
};
