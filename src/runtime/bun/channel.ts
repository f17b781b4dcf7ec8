/**
 * The channel of the Bun adapter: a {@linkcode ByteChannel} over Bun's
 * native socket (one `Bun.listen` accepted, or one taken over from
 * `node:net`), its TLS upgrade with `upgradeTLS`, and the one handler
 * object every such socket shares. Bun's types are declared here as small
 * local interfaces, so the package type-checks on Deno and Node without
 * Bun's typings. Apart from the adapter, which connects, takes sockets
 * over and listens.
 *
 * @module
 */

import { ConnectionLostError } from "../../errors.ts";
import { readTls } from "../arguments.ts";
import { ChannelBase, CLOSE_STALL_MS } from "../channel_base.ts";
import { socketClosed, toConnectionError } from "../errors.ts";
import { handshakeUnder } from "../tls.ts";
import { unrefTimer } from "../timers.ts";
import { acceptTlsOver, startTlsOver } from "../node/tls_stream.ts";
import type { ByteChannel, TlsOptions, TlsServerOptions } from "../types.ts";
import { DETACHED, WriteQueue } from "../write_queue.ts";

/** The part of Bun's `Socket` this adapter uses. */
export interface BunSocket {
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
  /** Replaces the socket's handlers. */
  reload(options: { socket: BunSocketHandlers }): void;
  /** Keeps the process alive while the socket is open (the default). */
  ref(): void;
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

/** Bun's socket handlers, as this adapter sets them. */
export interface BunSocketHandlers {
  open?(socket: BunSocket): void;
  data?(socket: BunSocket, data: Uint8Array): void;
  drain?(socket: BunSocket): void;
  close?(socket: BunSocket, error?: Error): void;
  error?(socket: BunSocket, error: Error): void;
  end?(socket: BunSocket): void;
  handshake?(
    socket: BunSocket,
    success: boolean,
    authorizationError: Error | null,
  ): void;
}

/**
 * A channel over one of Bun's native sockets, which it rides on as
 * `socket.data`; {@linkcode handlers} call it.
 */
export class BunChannel extends ChannelBase {
  /**
   * On JavaScriptCore a view into a chunk costs about 70 ns, a fresh array
   * of up to 32 bytes filled by a loop 25-40 ns (V8 is the other way
   * round: a view 40 ns, a fresh array 100-700 ns): small replies are
   * copied, which also frees the read's chunk sooner.
   */
  readonly copyBelow = 48;
  /** `socket.write` takes what it can at once; the queue holds the rest. */
  readonly releasesWrites = true;
  /**
   * Measured 2026-12-07, `request` with 48 and 64 callers and native node
   * out of process, paired: parts from 16 frames on rather than halves
   * read 1.1-1.3x over TCP and 1.3-1.5x over TLS (see ByteChannel).
   */
  readonly smallParts = true;
  #socket: BunSocket | undefined;
  // Under a TLS socket: the TCP one, which outlives the TLS one's end().
  #raw: BunSocket | undefined;
  #queue = new WriteQueue();
  #closing = false;
  // The socket's close came (after a graceful close: the bound on it is
  // off).
  #socketClosed = false;
  #closeBound: ReturnType<typeof setTimeout> | undefined;
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
    else this.closeWithin();
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
    try {
      options = readTls("startTls()", options, false);
    } catch (error) {
      return Promise.reject(error);
    }
    const socket = this.#socket;
    if (socket === undefined || this.finished || this.#closing) {
      return Promise.reject(
        socketClosed(this.endpoint),
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
      // Before upgradeTLS took it (a signal aborted already, or a throw),
      // the socket is still the plain one.
      () =>
        secure.#socket === undefined ? socket.terminate() : secure.destroy(),
      this.endpoint,
      options.serverName,
      () =>
        new Promise<ByteChannel>((resolve, reject) => {
          secure.#handshake = {
            skipVerify,
            resolve: () => resolve(secure),
            reject,
          };
          // A throw here rejects, and the cancel terminates the socket.
          let tls: BunSocket;
          [secure.#raw, tls] = socket.upgradeTLS({
            data: secure,
            tls: {
              ca: options.ca ? [...options.ca] : undefined,
              serverName: options.serverName,
              rejectUnauthorized: !skipVerify,
            },
            socket: handlers,
          });
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
    // Skipping verification forgives `error`, never a failed handshake
    // (a peer that answered with bytes that are not TLS).
    if (success && (pending.skipVerify || !error)) pending.resolve();
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
      // A caller's payload detached while queued: its frame's header went,
      // its bytes cannot. Writing nothing for ever would spin the loop.
      if (bytes.length === 0) return this.#lost(DETACHED);
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
    this.#socketClosed = true;
    clearTimeout(this.#closeBound);
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
    const socket = this.#socket;
    socket?.end();
    // Ended, a TLS socket stays open, and the process with it, until the
    // peer closes too (a plain one closes at once), which a peer that
    // keeps its side open never does. Its bytes, close_notify included,
    // are the TCP socket's under it by now (the queue is empty): ending
    // that one closes both at once, and the system delivers what it
    // holds. Should the runtime keep them open anyway, they are
    // terminated after CLOSE_STALL_MS, unless closed by then.
    this.#raw?.end();
    const last = this.#raw ?? socket;
    if (last === undefined || this.#socketClosed) return;
    this.#closeBound = setTimeout(() => last.terminate(), CLOSE_STALL_MS);
    unrefTimer(this.#closeBound);
  }

  #lost(why?: string): void {
    this.#queue.clear();
    this.finish(
      why === undefined
        ? socketClosed(this.endpoint)
        : new ConnectionLostError(this.endpoint, why),
    );
    this.#socket?.terminate();
  }
}

// One handler object for every socket: Bun recommends sharing, and the
// channel rides on `socket.data`.
/** The handlers of every socket a {@linkcode BunChannel} drives. */
export const handlers: BunSocketHandlers = {
  open(socket) {
    // A TLS socket from upgradeTLS opens here; attaching at once pauses it
    // before the event loop can deliver a single byte.
    socket.data?.attach(socket);
  },
  data(socket, data) {
    socket.data?.received(data);
  },
  drain(socket) {
    socket.data?.flush();
  },
  // The peer sent FIN. node:net connects half-open (Bun then waits for our
  // end() before closing), so a taken-over socket must end its side here.
  end(socket) {
    socket.data?.close();
  },
  close(socket, error) {
    socket.data?.closed(error);
  },
  error(socket, error) {
    socket.data?.failed(error);
  },
  handshake(socket, success, authorizationError) {
    socket.data?.handshaken(success, authorizationError);
  },
};
