/**
 * The Bun adapter, on `Bun.connect` and `Bun.listen`. Bun's types are
 * declared here as small local interfaces, reached through `globalThis`, so
 * the package type-checks on Deno and Node without Bun's typings.
 *
 * @module
 */

import { ChannelBase } from "../channel_base.ts";
import { toConnectionError, toListenError } from "../errors.ts";
import { acceptTlsOn, connectTls, handshakeUnder } from "../tls.ts";
import { acceptTlsOver, startTlsOver } from "../node/tls_stream.ts";
import type {
  ByteChannel,
  ConnectOptions,
  Listener,
  ListenOptions,
  RuntimeAdapter,
  TlsOptions,
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
  /** Client-side TLS on this socket; returns `[raw, tls]` sockets. */
  upgradeTLS(options: {
    data?: BunChannel;
    tls: {
      ca?: string[];
      serverName?: string;
      rejectUnauthorized?: boolean;
    };
    socket: BunSocketHandlers;
  }): [BunSocket, BunSocket];
}

interface BunSocketHandlers {
  open?(socket: BunSocket): void;
  data?(socket: BunSocket, data: Uint8Array): void;
  drain?(socket: BunSocket): void;
  close?(socket: BunSocket, error?: Error): void;
  error?(socket: BunSocket, error: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
  end?(socket: BunSocket): void;
  handshake?(
    socket: BunSocket,
    success: boolean,
    authorizationError: Error | null,
  ): void;
}

interface BunListener {
  readonly hostname: string;
  readonly port: number;
  stop(closeActiveConnections?: boolean): void;
}

interface BunLike {
  connect(options: {
    hostname: string;
    port: number;
    data?: BunChannel;
    socket: BunSocketHandlers;
  }): Promise<BunSocket>;
  listen(options: {
    hostname: string;
    port: number;
    socket: BunSocketHandlers;
  }): BunListener;
}

function bun(): BunLike {
  return (globalThis as unknown as { Bun: BunLike }).Bun;
}

class BunChannel extends ChannelBase {
  #socket: BunSocket | undefined;
  #queue = new WriteQueue();
  #closing = false;
  #reading = false;
  // Chunks that came before `onData`: a TLS socket ignores pause().
  #early: Uint8Array[] = [];
  #handshake:
    | { skipVerify: boolean; resolve(): void; reject(e: unknown): void }
    | undefined;

  get bufferedAmount(): number {
    return this.#queue.size;
  }

  get remoteAddress(): { hostname: string; port: number } | undefined {
    const socket = this.#socket;
    if (socket?.remoteAddress === undefined) return undefined;
    return {
      hostname: socket.remoteAddress,
      port: socket.remotePort ?? this.endpoint.port,
    };
  }

  /** Takes over an open socket; reading waits for `onData`. */
  attach(socket: BunSocket): void {
    if (this.#socket === socket) return;
    this.#socket = socket;
    socket.data = this;
    socket.pause();
    // Bun turns Nagle off already; saying so keeps that if it changes.
    socket.setNoDelay?.(true);
  }

  write(bytes: Uint8Array): boolean {
    const socket = this.#socket;
    if (socket === undefined || this.finished || this.#closing) return false;
    if (this.#queue.size === 0) {
      // Fast path: nothing waits, so the socket takes it without a copy.
      const written = socket.write(bytes);
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
    this.#socket?.terminate();
  }

  protected startReading(): void {
    this.#reading = true;
    for (const chunk of this.#early.splice(0)) this.emitData(chunk);
    this.#socket?.resume();
  }

  /** Stops `data` callbacks (on a plain socket; a TLS one ignores it). */
  pause(): void {
    this.#socket?.pause();
  }

  /** Lets `data` callbacks come again. */
  resume(): void {
    if (this.#reading) this.#socket?.resume();
  }

  /**
   * Client side of a TLS upgrade with `socket.upgradeTLS`. Bun keeps
   * calling the old handlers with the raw ciphertext, so the old socket
   * is cut loose from this channel first.
   */
  startTls(options: TlsOptions): Promise<ByteChannel> {
    const socket = this.#socket;
    if (socket === undefined || this.finished || this.#closing) {
      return Promise.reject(
        toConnectionError(
          Object.assign(new Error("socket closed"), { code: "EPIPE" }),
          this.endpoint,
        ),
      );
    }
    // Bytes still queued must go out before the ClientHello, in order;
    // the bridge writes through this channel and keeps that order.
    if (this.#queue.size > 0) {
      return startTlsOver(this, this.endpoint, options);
    }
    socket.data = undefined;
    this.retire();
    const secure = new BunChannel(this.endpoint);
    const skipVerify = options.dangerouslySkipVerify === true;
    return handshakeUnder(
      options.signal,
      () => secure.destroy(),
      this.endpoint,
      options.serverName,
      () =>
        new Promise<ByteChannel>((resolve, reject) => {
          secure.#handshake = {
            skipVerify,
            resolve: () => resolve(secure),
            reject,
          };
          let tls: BunSocket;
          try {
            [, tls] = socket.upgradeTLS({
              data: secure,
              tls: {
                ca: options.ca ? [...options.ca] : undefined,
                serverName: options.serverName,
                rejectUnauthorized: !skipVerify,
              },
              socket: handlers,
            });
          } catch (error) {
            socket.terminate();
            throw error;
          }
          secure.attach(tls);
        }),
    );
  }

  /** Server side of a TLS upgrade, through node:tls (see tls_stream.ts). */
  acceptTls(options: TlsServerOptions): Promise<ByteChannel> {
    return acceptTlsOver(this, this.endpoint, options);
  }

  /** `handshake` handler (TLS sockets). */
  handshaken(success: boolean, error: Error | null): void {
    const pending = this.#handshake;
    if (pending === undefined) return;
    this.#handshake = undefined;
    if (pending.skipVerify || (success && !error)) pending.resolve();
    else pending.reject(error ?? new Error("the TLS handshake failed"));
  }

  /** `data` handler. Bun hands each callback a fresh buffer. */
  received(data: Uint8Array): void {
    if (this.#reading) this.emitData(data);
    else this.#early.push(data);
  }

  /** `drain` handler: the socket has room again. */
  flush(): void {
    const socket = this.#socket;
    if (socket === undefined || this.finished) return;
    while (this.#queue.size > 0) {
      const bytes = this.#queue.peek();
      const written = socket.write(bytes);
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
    this.#handshake?.reject(
      error ?? Object.assign(
        new Error("the connection closed during the TLS handshake"),
        { code: "ECONNRESET" },
      ),
    );
    this.#handshake = undefined;
    this.#queue.clear();
    this.finish(
      error === undefined ? undefined : toConnectionError(error, this.endpoint),
    );
  }

  /** `error` handler. */
  failed(error: Error): void {
    this.#handshake?.reject(error);
    this.#handshake = undefined;
    if (this.finished) return;
    this.#queue.clear();
    this.finish(toConnectionError(error, this.endpoint));
    this.#socket?.terminate();
  }

  #shutdown(): void {
    this.finish();
    this.#socket?.end();
  }

  #lost(): void {
    this.#queue.clear();
    this.finish(toConnectionError(
      Object.assign(new Error("socket closed"), { code: "EPIPE" }),
      this.endpoint,
    ));
    this.#socket?.terminate();
  }
}

// One handler object for every socket: Bun recommends sharing, and the
// channel rides on `socket.data`.
const handlers: BunSocketHandlers = {
  open(socket) {
    // Attached here rather than when Bun.connect resolves, so the socket is
    // paused before the event loop can deliver a single byte.
    socket.data?.attach(socket);
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
  // Connect failures arrive as the rejection of Bun.connect's promise;
  // the handler only has to exist.
  connectError() {},
  handshake(socket, success, authorizationError) {
    socket.data?.handshaken(success, authorizationError);
  },
};

/**
 * The adapter for Bun, on `Bun.connect` / `Bun.listen` with Nagle off.
 *
 * Bun.connect takes no signal, so an abort rejects at once and the socket,
 * should it open later, is terminated. A short `write` queues the rest
 * until Bun's `drain`.
 */
export const bunAdapter: RuntimeAdapter = {
  name: "bun",
  supportsTls: true,

  connect(options: ConnectOptions): Promise<ByteChannel> {
    if (options.tls) return connectTls(bunAdapter, options);
    const { hostname, port, signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const endpoint = { hostname, port };
    const channel = new BunChannel(endpoint);
    const started = performance.now();
    return new Promise((resolve, reject) => {
      let settled = false;
      const onAbort = () => {
        if (settled) return;
        settled = true;
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      bun().connect({ hostname, port, data: channel, socket: handlers }).then(
        (socket) => {
          signal?.removeEventListener("abort", onAbort);
          if (settled) {
            // Aborted while connecting: nobody will ever own this socket.
            socket.data = undefined;
            socket.terminate();
            return;
          }
          settled = true;
          channel.attach(socket);
          resolve(channel);
        },
        (error: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          if (settled) return;
          settled = true;
          reject(toConnectionError(error, endpoint, {
            phase: "connect",
            elapsedMs: performance.now() - started,
          }));
        },
      );
    });
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
        socket: {
          ...handlers,
          open(socket) {
            const channel = new BunChannel({
              hostname: socket.remoteAddress,
              port: socket.remotePort ?? 0,
            });
            channel.attach(socket);
            onConnection(channel);
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
