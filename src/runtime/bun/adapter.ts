/**
 * The Bun adapter: `Bun.listen` for listening; for connecting, `node:net`,
 * whose native socket is then taken over and driven like one from
 * `Bun.connect`; the channel over that socket is `channel.ts`. Bun's
 * types are declared as small local interfaces (here and there), reached
 * through `globalThis`, so the package type-checks on Deno and Node
 * without Bun's typings.
 *
 * Why not `Bun.connect`: it takes no signal and hands out no socket until
 * the peer accepts, so a connect to a peer that never accepts (a host that
 * is down, a firewall that drops, a full backlog) cannot be abandoned. Bun
 * keeps such a connect, and with it the process, alive until the kernel
 * gives up on the handshake, about two minutes on Linux, long after the
 * caller's timeout or abort. Bun's `node:net` cancels a pending connect
 * when its socket is destroyed.
 *
 * Why the takeover: on Bun's `node:net` streams a request costs 11-20%
 * more CPU (client and three in-process nodes, 64 and 256 in flight);
 * taken over, the same as on a socket from `Bun.connect`. Once connected,
 * a `node:net` socket's `_handle` is Bun's native socket, the kind
 * `Bun.connect` resolves with; `reload()` gives it this adapter's
 * handlers, after which `node:net` hears nothing more of it. `_handle` is
 * not a documented API, so the takeover checks what it needs first and
 * otherwise keeps the `node:net` socket (the Node adapter's channel):
 * slower, never stuck. tests/runtime_bun.test.ts fails when that happens.
 *
 * @module
 */

import type * as Net from "node:net";
import type { Endpoint } from "../../errors.ts";
import { handOver } from "../accept.ts";
import { readConnect, readListen } from "../arguments.ts";
import { toListenError } from "../errors.ts";
import { acceptTlsOn, checkServerTls, connectTls } from "../tls.ts";
import { connectNet } from "../node/adapter.ts";
import { NodeChannel } from "../node/channel.ts";
import type {
  ByteChannel,
  ConnectOptions,
  Listener,
  ListenOptions,
  RuntimeAdapter,
} from "../types.ts";
import {
  BunChannel,
  type BunSocket,
  type BunSocketHandlers,
  handlers,
} from "./channel.ts";

interface BunListener {
  readonly hostname: string;
  readonly port: number;
  stop(closeActiveConnections?: boolean): void;
}

interface BunLike {
  listen(options: {
    hostname: string;
    port: number;
    socket: BunSocketHandlers;
  }): BunListener;
}

function bun(): BunLike {
  return (globalThis as unknown as { Bun: BunLike }).Bun;
}

/**
 * Bun's native socket under a connected `node:net` socket, when it has
 * everything the takeover needs (see the module doc).
 */
function nativeSocketOf(socket: Net.Socket): BunSocket | undefined {
  const handle = (socket as unknown as { _handle?: Partial<BunSocket> })
    ._handle;
  if (typeof handle !== "object" || handle === null) return undefined;
  for (
    const method of [
      "reload",
      "ref",
      "write",
      "end",
      "terminate",
      "pause",
      "resume",
      "upgradeTLS",
    ] as const
  ) {
    if (typeof handle[method] !== "function") return undefined;
  }
  return handle as BunSocket;
}

/**
 * Makes a channel of a socket `node:net` just connected: Bun's native
 * socket under it, taken over, or the `node:net` socket itself.
 */
function takeOver(
  socket: Net.Socket,
  endpoint: Endpoint,
): ByteChannel | Promise<ByteChannel> {
  const native = nativeSocketOf(socket);
  if (native === undefined) return new NodeChannel(socket, endpoint);
  native.pause();
  // node:net still does its own bookkeeping on `data` right after
  // 'connect', in this turn; take over once it is done. No socket event
  // can come in between.
  return new Promise((resolve) =>
    queueMicrotask(() => {
      const channel = new BunChannel(endpoint);
      native.reload({ socket: handlers });
      channel.attach(native);
      // node:net may have let go of the process while it was paused.
      native.ref();
      resolve(channel);
    })
  );
}

/**
 * The adapter for Bun: `Bun.listen`, and `node:net` connects taken over
 * (see the module doc), with Nagle off.
 *
 * A connect's abort or timeout destroys the `node:net` socket, which
 * cancels it. A short `write` queues the rest until Bun's `drain`.
 */
export const bunAdapter: RuntimeAdapter = {
  name: "bun",
  supportsTls: true,

  // async so that a bad argument rejects rather than throws.
  // deno-lint-ignore require-await
  async connect(options: ConnectOptions): Promise<ByteChannel> {
    options = readConnect(options);
    if (options.tls) return connectTls(bunAdapter, options);
    return connectNet(options, takeOver);
  },

  // async so that a bad argument rejects rather than throws.
  async listen(
    options: ListenOptions,
    onConnection: (channel: ByteChannel) => void,
  ): Promise<Listener> {
    options = readListen(options, onConnection);
    if (options.tls) {
      // Checked before binding: a pair that does not go together would
      // bind fine and then reset every client.
      await checkServerTls(options.tls);
      return bunAdapter.listen(
        { ...options, tls: undefined },
        acceptTlsOn(options.tls, onConnection),
      );
    }
    const hostname = options.hostname ?? "127.0.0.1";
    let server: BunListener;
    try {
      server = bun().listen({
        hostname,
        port: options.port,
        socket: {
          ...handlers,
          open(socket) {
            // A peer that is already gone may leave no address to read.
            const channel = new BunChannel({
              hostname: socket.remoteAddress ?? "unknown peer",
              port: socket.remotePort ?? 0,
            });
            channel.attach(socket);
            handOver(onConnection, channel);
          },
        },
      });
    } catch (error) {
      throw toListenError(error, { hostname, port: options.port });
    }
    let closed = false;
    return {
      hostname: server.hostname,
      port: server.port,
      close(): Promise<void> {
        if (!closed) {
          closed = true;
          // false: open channels stay open, as the Listener contract says.
          server.stop(false);
        }
        return Promise.resolve();
      },
    };
  },
};
