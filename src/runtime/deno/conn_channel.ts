/**
 * A channel on a `Deno.Conn`, for the connections the client means to
 * upgrade to TLS (`ConnectOptions.startsTls`, or direct TLS): its
 * `startTls` is Deno's own (`Deno.startTls`, rustls), which costs about
 * half the CPU per request of `node:tls` under Deno. On deno 2.9.6
 * (bench/limit.bench.ts, native node out of process, 64 in flight) TLS
 * went from 71-81% of TCP's rate through `node:tls` to 82-91%.
 *
 * Plain connections stay on `node:net` (see adapter.ts): it reads 1 KiB
 * requests 1.5-1.8x as fast as this loop.
 *
 * The price: Deno cannot free the socket of a handshake it gives up on.
 * Closing a TlsConn whose handshake has not finished cancels the
 * handshake on our side at once (`handshake()` rejects, `Interrupted`,
 * and the process may exit), but its socket stays open until the peer
 * answers or closes (deno 2.9.6, against a listener that accepts and
 * never answers: the connection stayed established after the close, for
 * as long as the client process lived, until the listener wrote or
 * closed). Waiting frees it no sooner. So a handshake given up on (a
 * timeout, an abort) gets {@linkcode CLOSE_STALL_MS} more to finish, to
 * tell a slow node from a mute one, and is then closed; one that has not
 * finished by then marks its endpoint stalled, and every later TLS
 * connection to it goes through `node:tls`, whose sockets are ours to
 * close: at most one socket per node is left to its peer. While such a
 * handshake has its grace, its endpoint counts as stalled too, and the
 * handshake holds the process (at its exit, for the grace at most).
 *
 * @module
 */

import { ConnectionLostError, type Endpoint } from "../../errors.ts";
import { ChannelBase, CLOSE_STALL_MS } from "../channel_base.ts";
import { unrefTimer } from "../timers.ts";
import { socketClosed, toConnectionError } from "../errors.ts";
import { startTlsOver } from "../node/tls_stream.ts";
import { handshakeUnder } from "../tls.ts";
import { readTls } from "../arguments.ts";
import type { ByteChannel, ConnectOptions, TlsOptions } from "../types.ts";
import { DETACHED, WriteQueue } from "../write_queue.ts";

/**
 * Reads start at 4 KiB (an idle pooled connection holds no more) and
 * double each time one fills, up to 64 KiB. A read of 16 KiB or more is
 * handed over in its buffer; a smaller one is copied out, so a short
 * reply does not pin a whole buffer.
 */
const FIRST_READ = 4 * 1024;
const LAST_READ = 64 * 1024;
const KEEP_AT = 16 * 1024;

/** Endpoints ("host:port") that once left a native handshake hanging. */
const stalled = new Set<string>();
/** Per endpoint, the handshakes given up on that still have their grace. */
const graced = new Map<string, number>();

/**
 * Whether a native handshake with `endpoint` was given up on and left
 * hanging, or still may be: its TLS goes through `node:tls` (see the
 * module comment).
 */
export function isStalled(endpoint: Endpoint): boolean {
  const at = key(endpoint);
  return stalled.has(at) || graced.has(at);
}

/**
 * A handshake given up on: it may still finish within the grace, and is
 * then closed cleanly; past it, it is closed anyway (Deno keeps its socket
 * until the peer answers) and the endpoint is stalled for good.
 */
function giveUp(at: string, tls: Deno.TlsConn, shaking: Promise<unknown>) {
  graced.set(at, (graced.get(at) ?? 0) + 1);
  let left = true;
  const end = (hanging: boolean) => {
    if (!left) return;
    left = false;
    clearTimeout(timer);
    const count = graced.get(at)! - 1;
    if (count > 0) graced.set(at, count);
    else graced.delete(at);
    if (hanging) stalled.add(at);
    release(tls);
  };
  const timer = setTimeout(() => end(true), CLOSE_STALL_MS);
  unrefTimer(timer);
  shaking.then(() => end(false), () => end(false));
}

const key = (endpoint: Endpoint) => `${endpoint.hostname}:${endpoint.port}`;

/** See the module comment. */
export class DenoConnChannel extends ChannelBase {
  /** Writes are awaited before they leave the queue, so none holds on. */
  readonly releasesWrites = true;
  /**
   * As Deno's node:net sockets (see NodeChannel): measured 2026-12-07 over
   * verified TLS, which takes this channel, `request` with 64 callers and
   * native node out of process, paired: parts from 16 frames on rather
   * than halves read 1.05-1.11x (see ByteChannel).
   */
  readonly smallParts = true;
  #conn: Deno.Conn;
  #queue = new WriteQueue();
  #pumping = false;
  #closing = false;
  // A pause lets the read in flight finish and starts no other, so that
  // no read holds the socket when TLS takes it (see ByteChannel.pause).
  #paused = false;
  #looping = false;
  #started = false;
  #inRead = false;

  /** Takes over `conn`, connected to `endpoint`. */
  constructor(conn: Deno.Conn, endpoint: Endpoint) {
    super(endpoint);
    this.#conn = conn;
  }

  get bufferedAmount(): number {
    return this.#queue.size;
  }

  get remoteAddress(): Deno.NetAddr {
    return this.#conn.remoteAddr as Deno.NetAddr;
  }

  write(bytes: Uint8Array): boolean {
    if (this.finished || this.#closing) return false;
    const below = this.#queue.push(bytes);
    if (!this.#pumping) {
      this.#pumping = true;
      // At once: the connection hands over a tick's frames together, or
      // in parts meant to leave apart (see frame_writer.ts), which a
      // microtask's wait merged again. What comes while a write is under
      // way is queued, and leaves merged in the next (a Deno.Conn has no
      // writev). A failed write rejects, so the pump fails later, not in
      // this call.
      void this.#pump();
    }
    return below;
  }

  drained(): Promise<void> {
    return this.finished ? Promise.resolve() : this.#queue.drained();
  }

  close(): void {
    if (this.finished || this.#closing) return;
    this.#closing = true;
    if (!this.#pumping) this.#end();
    else this.closeWithin();
  }

  destroy(error?: Error): void {
    if (this.finished) return;
    this.#queue.clear();
    this.#release();
    this.finish(error);
  }

  protected startReading(): void {
    this.#started = this.#looping = true;
    void this.#read();
  }

  /** Starts no read after the one in flight, until `resume()`. */
  pause(): void {
    this.#paused = true;
  }

  /** Reads again. */
  resume(): void {
    this.#paused = false;
    if (this.#started && !this.#looping && !this.finished) {
      this.startReading();
    }
  }

  /**
   * Client side of a TLS upgrade with `Deno.startTls`. Through `node:tls`
   * over this channel (tls_stream.ts) instead when rustls must not do it:
   * verification skipped (it has no option for that), the endpoint
   * stalled once (see the module comment), or the socket busy with a read
   * or queued bytes, which must go before the ClientHello.
   */
  // async: a bad argument or a spent channel rejects rather than throws.
  async startTls(options: TlsOptions): Promise<ByteChannel> {
    options = readTls("startTls()", options, false);
    const endpoint = this.endpoint;
    if (this.finished || this.#closing) {
      throw socketClosed(endpoint);
    }
    if (
      options.dangerouslySkipVerify === true || this.#inRead ||
      this.#queue.size > 0 || isStalled(endpoint)
    ) {
      return await startTlsOver(this, endpoint, options);
    }
    const conn = this.#conn as Deno.TcpConn;
    this.retire();
    const at = key(endpoint);
    let secure: Deno.TlsConn | undefined;
    let shaking: Promise<unknown> | undefined;
    let abandoned = false;
    return await handshakeUnder(
      options.signal,
      () => {
        abandoned = true;
        // Before Deno.startTls took the socket, closing it is enough;
        // after, a handshake it started is given up on when it returns.
        if (secure === undefined) release(conn);
        else if (shaking && options.signal?.aborted) {
          giveUp(at, secure, shaking);
        } else release(secure);
      },
      endpoint,
      options.serverName,
      async () => {
        const tls = await Deno.startTls(conn, {
          hostname: options.serverName,
          caCerts: options.ca ? [...options.ca] : undefined,
        });
        if (abandoned) {
          giveUp(at, tls, tls.handshake());
          throw options.signal?.reason;
        }
        secure = tls;
        await (shaking = tls.handshake());
        return new DenoConnChannel(tls, endpoint);
      },
    );
  }

  async #read(): Promise<void> {
    let buffer = new Uint8Array(FIRST_READ);
    try {
      while (!this.finished) {
        if (this.#paused) {
          this.#looping = false;
          return;
        }
        this.#inRead = true;
        const n = await this.#conn.read(buffer);
        this.#inRead = false;
        if (this.finished) return;
        // The peer finished sending: flush, and close too, as node:net
        // does without allowHalfOpen.
        if (n === null) return this.close();
        const size = n === buffer.length
          ? Math.min(LAST_READ, 2 * buffer.length)
          : buffer.length;
        if (n >= KEEP_AT) {
          this.emitData(buffer.subarray(0, n));
          buffer = new Uint8Array(size);
        } else {
          this.emitData(buffer.slice(0, n));
          if (size !== buffer.length) buffer = new Uint8Array(size);
        }
      }
    } catch (error) {
      // After our own close the read fails (BadResource, Interrupted):
      // that is no news.
      if (!this.finished) this.#fail(error);
    }
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.size > 0 && !this.finished) {
        const bytes = this.#queue.peek();
        // A queued payload's buffer was detached: its frame's header
        // left, its bytes cannot, and writing nothing would spin.
        if (bytes.length === 0) {
          return this.#fail(new ConnectionLostError(this.endpoint, DETACHED));
        }
        this.#queue.consume(await this.#conn.write(bytes));
      }
    } catch (error) {
      if (!this.finished) this.#fail(error);
    } finally {
      this.#pumping = false;
    }
    if (this.#closing && !this.finished) this.#end();
  }

  #end(): void {
    this.#release();
    this.finish();
  }

  #fail(error: unknown): void {
    this.#queue.clear();
    this.#release();
    this.finish(toConnectionError(error, this.endpoint));
  }

  #release(): void {
    release(this.#conn);
  }
}

function release(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already (by a reset, or by us), or taken by Deno.startTls.
  }
}

/**
 * A plain connection on `Deno.connect`, with Nagle off, as a
 * {@linkcode DenoConnChannel}. An abort rejects with the signal's reason.
 */
export async function connectConn(
  options: ConnectOptions,
): Promise<ByteChannel> {
  const { hostname, port, signal } = options;
  signal?.throwIfAborted();
  const started = performance.now();
  // Not the caller's signal: Deno.connect aborted as it connected (its
  // result not yet delivered, the event loop busy) leaks that socket (deno
  // 2.9.6). An abort rejects at once; the connect gets CLOSE_STALL_MS to
  // end, closed if it connected, and is cancelled after.
  const cancel = new AbortController();
  const connecting = Deno.connect({ hostname, port, signal: cancel.signal });
  let conn: Deno.TcpConn;
  try {
    conn = await new Promise<Deno.TcpConn>((resolve, reject) => {
      const onAbort = () => {
        reject(signal!.reason);
        const timer = setTimeout(() => cancel.abort(), CLOSE_STALL_MS);
        unrefTimer(timer);
        connecting.then(release, () => {}).finally(() => clearTimeout(timer));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const settled = () => signal?.removeEventListener("abort", onAbort);
      connecting.then((conn) => {
        settled();
        resolve(conn);
      }, (error) => {
        settled();
        reject(error);
      });
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw toConnectionError(error, { hostname, port }, {
      phase: "connect",
      elapsedMs: performance.now() - started,
    });
  }
  // Aborted after it connected, before this ran.
  if (signal?.aborted) {
    release(conn);
    throw signal.reason;
  }
  conn.setNoDelay(true);
  return new DenoConnChannel(conn, { hostname, port });
}
