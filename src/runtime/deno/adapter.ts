/**
 * The Deno adapter, on `Deno.connect` and `Deno.listen`. Kept native rather
 * than going through `node:net`, which is 15-20% slower on ping-pong and
 * half as fast on bulk transfers in Deno.
 *
 * @module
 */

import type { Endpoint } from "../../errors.ts";
import { checkConnect, checkListen } from "../arguments.ts";
import { ChannelBase } from "../channel_base.ts";
import { toConnectionError, toListenError } from "../errors.ts";
import { acceptTlsOn, connectTls } from "../tls.ts";
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

/**
 * Read buffers start small and double, up to the largest, each time a read
 * fills one: an idle connection (a pool keeps many) holds 4 KiB, a busy
 * one reads up to 64 KiB at a time, which is what makes Deno's reads fast.
 */
const FIRST_READ_SIZE = 4 * 1024;
const READ_SIZE = 64 * 1024;
/**
 * A read at least this large keeps the buffer it landed in (handed over as
 * is, a new one is allocated); a smaller read is copied out so a 20-byte
 * response does not pin a whole buffer.
 */
const KEEP_BUFFER_AT = 16 * 1024;

class DenoChannel extends ChannelBase {
  #conn: Deno.TcpConn;
  #queue = new WriteQueue();
  #pumping = false;
  #closing = false;
  // Pausing lets the read in flight finish and issues no other: nothing
  // past the last plaintext message is read before TLS takes over.
  #paused = false;
  #looping = false;
  #started = false;

  constructor(conn: Deno.TcpConn, endpoint: Endpoint) {
    super(endpoint);
    this.#conn = conn;
    // Deno leaves Nagle on; frames are small and latency matters.
    conn.setNoDelay(true);
  }

  get bufferedAmount(): number {
    return this.#queue.size;
  }

  get remoteAddress(): { hostname: string; port: number } | undefined {
    const addr = this.#conn.remoteAddr;
    return { hostname: addr.hostname, port: addr.port };
  }

  write(bytes: Uint8Array): boolean {
    if (this.finished || this.#closing) return false;
    const below = this.#queue.push(bytes);
    if (!this.#pumping) {
      this.#pumping = true;
      // Waiting one microtask lets the rest of this tick's frames join the
      // queue, so they leave in one write call (Deno has no writev).
      queueMicrotask(() => this.#pump());
    }
    return below;
  }

  drained(): Promise<void> {
    return this.finished ? Promise.resolve() : this.#queue.drained();
  }

  close(): void {
    if (this.finished || this.#closing) return;
    this.#closing = true;
    if (!this.#pumping) this.#shutdown();
    else this.closeWithin();
  }

  destroy(error?: Error): void {
    if (this.finished) return;
    this.#queue.clear();
    this.#release();
    this.finish(error);
  }

  protected startReading(): void {
    this.#looping = true;
    void this.#readLoop();
  }

  /** Issues no read after the one in flight, until `resume()`. */
  pause(): void {
    this.#paused = true;
  }

  /** Reads again. */
  resume(): void {
    this.#paused = false;
    if (!this.#looping && !this.finished && this.#started) {
      this.#looping = true;
      void this.#readLoop();
    }
  }

  /**
   * Client side of a TLS upgrade, through node:tls over this socket
   * (tls_stream.ts), not `Deno.startTls`: Deno cannot abandon a
   * handshake, since closing a TlsConn whose handshake has not finished
   * leaves the TCP socket open until the peer closes it (Deno finishes
   * the handshake before it shuts down). A handshake timeout against a
   * stalled node would leak a socket per attempt; this way the socket is
   * ours to close. It also allows `dangerouslySkipVerify`, which
   * Deno.startTls has no option for.
   */
  startTls(options: TlsOptions): Promise<ByteChannel> {
    return startTlsOver(this, this.endpoint, options);
  }

  /** Server side of a TLS upgrade, through node:tls (Deno has no native one). */
  acceptTls(options: TlsServerOptions): Promise<ByteChannel> {
    return acceptTlsOver(this, this.endpoint, options);
  }

  async #readLoop(): Promise<void> {
    this.#started = true;
    let buffer = new Uint8Array(FIRST_READ_SIZE);
    try {
      while (!this.finished) {
        if (this.#paused) {
          this.#looping = false;
          return;
        }
        const n = await this.#conn.read(buffer);
        if (this.finished) return;
        if (n === null) {
          // The peer finished sending; like Node without allowHalfOpen, we
          // flush what we have and close too.
          this.close();
          return;
        }
        if (n === 0) continue;
        let chunk: Uint8Array;
        const size = n === buffer.byteLength
          ? Math.min(READ_SIZE, 2 * buffer.byteLength)
          : buffer.byteLength;
        if (n >= KEEP_BUFFER_AT) {
          chunk = buffer.subarray(0, n);
          buffer = new Uint8Array(size);
        } else {
          chunk = buffer.slice(0, n);
          if (size !== buffer.byteLength) buffer = new Uint8Array(size);
        }
        this.emitData(chunk);
      }
    } catch (error) {
      // After our own close the pending read fails with BadResource or
      // Interrupted; that is not news.
      if (!this.finished) this.#fail(error);
    }
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.size > 0 && !this.finished) {
        const bytes = this.#queue.peek();
        const written = await this.#conn.write(bytes);
        this.#queue.consume(written);
      }
    } catch (error) {
      if (!this.finished) this.#fail(error);
    } finally {
      this.#pumping = false;
    }
    if (this.#closing && !this.finished) this.#shutdown();
  }

  #shutdown(): void {
    this.#release();
    this.finish();
  }

  #fail(error: unknown): void {
    this.#queue.clear();
    this.#release();
    this.finish(toConnectionError(error, this.endpoint));
  }

  #release(): void {
    try {
      this.#conn.close();
    } catch {
      // BadResource: already closed (by the peer's reset or by us).
    }
  }
}

/**
 * The adapter for Deno, on `Deno.connect` / `Deno.listen` with Nagle off.
 *
 * Reads pull up to 64 KiB at a time; writes are queued, coalesced into one
 * buffer per `conn.write` call and looped until done, since Deno's write
 * may be partial.
 */
export const denoAdapter: RuntimeAdapter = {
  name: "deno",
  supportsTls: true,

  async connect(options: ConnectOptions): Promise<ByteChannel> {
    checkConnect(options);
    if (options.tls) return connectTls(denoAdapter, options);
    const { hostname, port, signal } = options;
    signal?.throwIfAborted();
    const started = performance.now();
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname, port, transport: "tcp", signal });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw toConnectionError(error, { hostname, port }, {
        phase: "connect",
        elapsedMs: performance.now() - started,
      });
    }
    if (signal?.aborted) {
      conn.close();
      throw signal.reason;
    }
    return new DenoChannel(conn, { hostname, port });
  },

  // async so that a bad argument rejects rather than throws.
  // deno-lint-ignore require-await
  async listen(
    options: ListenOptions,
    onConnection: (channel: ByteChannel) => void,
  ): Promise<Listener> {
    checkListen(options, onConnection);
    if (options.tls) {
      // Not Deno.listenTls: its conns cannot turn Nagle off.
      return denoAdapter.listen(
        { ...options, tls: undefined },
        acceptTlsOn(options.tls, onConnection),
      );
    }
    const hostname = options.hostname ?? "127.0.0.1";
    let server: Deno.TcpListener;
    try {
      server = Deno.listen({ hostname, port: options.port, transport: "tcp" });
    } catch (error) {
      throw toListenError(error, { hostname, port: options.port });
    }
    const addr = server.addr;
    let closed = false;
    const accepting = (async () => {
      while (!closed) {
        let conn: Deno.TcpConn;
        try {
          conn = await server.accept();
        } catch {
          // Closing the listener ends the pending accept; other accept
          // errors (EMFILE) would spin, so stop either way.
          return;
        }
        const remote = conn.remoteAddr;
        onConnection(
          new DenoChannel(conn, {
            hostname: remote.hostname,
            port: remote.port,
          }),
        );
      }
    })();
    return {
      hostname: addr.hostname,
      port: addr.port,
      async close(): Promise<void> {
        if (!closed) {
          closed = true;
          try {
            server.close();
          } catch {
            // Already closed.
          }
        }
        // The socket is only released once the pending accept has failed;
        // until then the kernel still completes handshakes on the port.
        await accepting;
      },
    };
  },
};
