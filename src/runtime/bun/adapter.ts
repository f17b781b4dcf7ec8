/**
 * The Bun adapter: `Bun.listen` for listening, `node:net` for connecting.
 * Bun's types are declared here as small local interfaces, reached through
 * `globalThis`, so the package type-checks on Deno and Node without Bun's
 * typings.
 *
 * Why connects do not use `Bun.connect`: it takes no signal and hands out
 * no socket until the peer accepts, so a connect to a peer that never
 * accepts (a host that is down, a firewall that drops, a full backlog)
 * cannot be abandoned. Bun keeps such a connect, and with it the process,
 * alive until the kernel gives up on the handshake, about two minutes on
 * Linux, long after the caller's timeout or abort: a program that tried
 * such a node did not exit after its last line. Bun's `node:net` cancels a
 * pending connect when the socket is destroyed, so the client side goes
 * through it (the Node adapter's channel). That costs Bun 12-27% of its
 * client request rate against nodes in the same process (CPU-bound, 64 and
 * 256 in flight); accepted sockets, where nothing is ever abandoned, stay
 * on `Bun.listen`.
 *
 * @module
 */

import { ChannelBase } from "../channel_base.ts";
import { toConnectionError, toListenError } from "../errors.ts";
import { nodeAdapter } from "../node/adapter.ts";
import { acceptTlsOver } from "../node/tls_stream.ts";
import { acceptTlsOn } from "../tls.ts";
import type {
  ByteChannel,
  ConnectOptions,
  Listener,
  ListenOptions,
  RuntimeAdapter,
  TlsServerOptions,
} from "../types.ts";
import { WriteQueue } from "../write_queue.ts";

/** The part of Bun's `Socket` this adapter uses. */
interface BunSocket {
  /** Bytes accepted; fewer than offered means wait for `drain`, -1 closed. */
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay?(noDelay?: boolean): boolean;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  data: BunChannel | undefined;
}

interface BunSocketHandlers {
  open?(socket: BunSocket): void;
  data?(socket: BunSocket, data: Uint8Array): void;
  drain?(socket: BunSocket): void;
  close?(socket: BunSocket, error?: Error): void;
  error?(socket: BunSocket, error: Error): void;
}

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

/** A {@linkcode ByteChannel} over a socket `Bun.listen` accepted. */
class BunChannel extends ChannelBase {
  #socket: BunSocket;
  #queue = new WriteQueue();
  #closing = false;
  #reading = false;
  // Chunks that come before `onData` are kept rather than dropped:
  // pause() asks Bun not to read, it does not promise that no callback
  // is already on its way.
  #early: Uint8Array[] = [];

  /** Takes over an accepted socket; reading waits for `onData`. */
  constructor(socket: BunSocket) {
    super({ hostname: socket.remoteAddress, port: socket.remotePort ?? 0 });
    this.#socket = socket;
    socket.data = this;
    socket.pause();
    // Bun turns Nagle off already; saying so keeps that if it changes.
    socket.setNoDelay?.(true);
  }

  get bufferedAmount(): number {
    return this.#queue.size;
  }

  get remoteAddress(): { hostname: string; port: number } | undefined {
    const socket = this.#socket;
    if (socket.remoteAddress === undefined) return undefined;
    return {
      hostname: socket.remoteAddress,
      port: socket.remotePort ?? this.endpoint.port,
    };
  }

  write(bytes: Uint8Array): boolean {
    if (this.finished || this.#closing) return false;
    if (this.#queue.size === 0) {
      // Fast path: nothing waits, so the socket takes it without a copy.
      const written = this.#socket.write(bytes);
      if (written === bytes.length) return true;
      if (written < 0) {
        this.#lost();
        return false;
      }
      bytes = bytes.subarray(written);
    }
    return this.#queue.push(bytes);
  }

  drained(): Promise<void> {
    return this.finished ? Promise.resolve() : this.#queue.drained();
  }

  close(): void {
    if (this.finished || this.#closing) return;
    this.#closing = true;
    if (this.#queue.size === 0) this.#shutdown();
  }

  destroy(error?: Error): void {
    if (this.finished) return;
    this.#queue.clear();
    // Finish first: terminate() calls the close handler synchronously,
    // which would report a clean close instead of `error`.
    this.finish(error);
    this.#socket.terminate();
  }

  protected startReading(): void {
    this.#reading = true;
    for (const chunk of this.#early.splice(0)) this.emitData(chunk);
    this.#socket.resume();
  }

  /** Stops `data` callbacks. */
  pause(): void {
    this.#socket.pause();
  }

  /** Lets `data` callbacks come again. */
  resume(): void {
    if (this.#reading) this.#socket.resume();
  }

  /** Server side of a TLS upgrade, through node:tls (see tls_stream.ts). */
  acceptTls(options: TlsServerOptions): Promise<ByteChannel> {
    return acceptTlsOver(this, this.endpoint, options);
  }

  /** `data` handler. Bun hands each callback a fresh buffer. */
  received(data: Uint8Array): void {
    if (this.#reading) this.emitData(data);
    else this.#early.push(data);
  }

  /** `drain` handler: the socket has room again. */
  flush(): void {
    if (this.finished) return;
    while (this.#queue.size > 0) {
      const bytes = this.#queue.peek();
      const written = this.#socket.write(bytes);
      if (written < 0) {
        this.#lost();
        return;
      }
      this.#queue.consume(written);
      if (written < bytes.length) return;
    }
    if (this.#closing) this.#shutdown();
  }

  /** `close` handler: a reset arrives here with its error. */
  closed(error?: Error): void {
    this.#queue.clear();
    this.finish(
      error === undefined ? undefined : toConnectionError(error, this.endpoint),
    );
  }

  /** `error` handler. */
  failed(error: Error): void {
    if (this.finished) return;
    this.#queue.clear();
    this.finish(toConnectionError(error, this.endpoint));
    this.#socket.terminate();
  }

  #shutdown(): void {
    this.finish();
    this.#socket.end();
  }

  #lost(): void {
    this.#queue.clear();
    this.finish(toConnectionError(
      Object.assign(new Error("socket closed"), { code: "EPIPE" }),
      this.endpoint,
    ));
    this.#socket.terminate();
  }
}

/**
 * The adapter for Bun: listens with `Bun.listen` (Nagle off), connects
 * through `node:net` (the Node adapter), because only there can Bun
 * abandon a connect the peer never answers (see the module doc).
 *
 * A short `write` on an accepted socket queues the rest until Bun's
 * `drain`.
 */
export const bunAdapter: RuntimeAdapter = {
  name: "bun",
  supportsTls: true,

  connect(options: ConnectOptions): Promise<ByteChannel> {
    return nodeAdapter.connect(options);
  },

  listen(
    options: ListenOptions,
    onConnection: (channel: ByteChannel) => void,
  ): Promise<Listener> {
    if (options.tls) {
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
        // One handler object for every socket, as Bun recommends; the
        // channel rides on `socket.data`.
        socket: {
          open(socket) {
            onConnection(new BunChannel(socket));
          },
          data(socket, data) {
            socket.data?.received(data);
          },
          drain(socket) {
            socket.data?.flush();
          },
          close(socket, error) {
            socket.data?.closed(error);
          },
          error(socket, error) {
            socket.data?.failed(error);
          },
        },
      });
    } catch (error) {
      return Promise.reject(
        toListenError(error, { hostname, port: options.port }),
      );
    }
    let closed = false;
    return Promise.resolve({
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
    });
  },
};
