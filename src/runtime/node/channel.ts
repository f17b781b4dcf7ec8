/**
 * The channel of the Node adapter: a {@linkcode ByteChannel} over a
 * `node:net` socket, or over a `node:tls` one, with its TLS upgrades (the
 * client's, checking the certificate where it can still be read, and the
 * server's). Apart from the adapter, which connects and listens, because
 * others use it too: the Bun adapter keeps it when it cannot take a socket
 * over, and `tls_stream.ts` hands it out over any channel.
 *
 * `node:tls` is loaded with a dynamic import on first use.
 *
 * @module
 */

import type * as Net from "node:net";
import type * as Tls from "node:tls";
import type { Endpoint } from "../../errors.ts";
import { readTls } from "../arguments.ts";
import { ChannelBase } from "../channel_base.ts";
import { socketClosed, toConnectionError } from "../errors.ts";
import { handshakeUnder, isIpLiteral } from "../tls.ts";
import type { ByteChannel, TlsOptions, TlsServerOptions } from "../types.ts";
import { HIGH_WATER_MARK } from "../write_queue.ts";
import { detectRuntime } from "../runtime_name.ts";

/** See `NodeChannel.releasesWrites`. */
const ON_NODE = detectRuntime() === "node";
/** See `NodeChannel.smallParts`. */
const ON_DENO = detectRuntime() === "deno";

let tlsLoading: Promise<typeof Tls> | undefined;

function loadTls(): Promise<typeof Tls> {
  tlsLoading ??= import("node:tls");
  return tlsLoading;
}

/**
 * A {@linkcode ByteChannel} over a `node:net` socket, or over a
 * `node:tls` one (a TLSSocket is a net.Socket). Used by the Node adapter,
 * and by the TLS bridge of the other adapters (`tls_stream.ts`).
 */
export class NodeChannel extends ChannelBase {
  /**
   * On Node, `writableLength` reads 0 only once no write holds its bytes
   * (a write the OS did not take at once is async, and counted). Deno's
   * node:net reads 0 right after a write whose async operation still holds
   * its bytes; Bun's read 0 after a 1 MB write too, and is not relied on.
   */
  readonly releasesWrites = ON_NODE;
  /**
   * Deno's node:net sockets (its plain TCP) take parts from 16 frames on:
   * measured 2026-12-07, `request` with 64 callers and native node out of
   * process, paired, they read 1.05-1.16x against halves. Node's own read
   * 0.86-0.87x, so they keep halves (see ByteChannel); Bun has its own channel.
   */
  readonly smallParts = ON_DENO;
  #released = 0;
  #socket: Net.Socket;
  #error: Error | undefined;
  #drainWaiters: (() => void)[] = [];
  #onData: ((chunk: Uint8Array) => void) | undefined;
  readonly #gatherRecords: boolean;
  #gathered: Uint8Array[] | undefined;

  /**
   * Takes over `socket`, already connected (or being connected).
   * `gatherRecords`: `socket` is Node's own TLSSocket, which hands out
   * each TLS record of a read as a callback of its own (see
   * `#deliverGathered`).
   */
  constructor(socket: Net.Socket, endpoint: Endpoint, gatherRecords = false) {
    super(endpoint);
    this.#socket = socket;
    this.#gatherRecords = gatherRecords;
    // A TLSSocket over a stream that is not a socket has nothing to set.
    socket.setNoDelay?.(true);
    // Registered before anything else can happen, so an error on an idle
    // socket becomes a close with an SDK error instead of an uncaught
    // exception that kills the process.
    socket.on("error", this.#onError);
    socket.on("close", this.#onSocketClose);
    socket.on("drain", this.#onDrain);
  }

  #onError = (error: Error): void => {
    this.#error ??= toConnectionError(error, this.endpoint);
  };

  #onSocketClose = (): void => {
    // Chunks still gathered come before the close.
    this.#deliverGathered();
    this.#wakeDrainWaiters();
    this.finish(this.#error);
  };

  #onDrain = (): void => this.#wakeDrainWaiters();

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  /**
   * Elsewhere than on Node (see `releasesWrites`), the writes whose
   * callback ran, failed or not: Deno's run once it let go of the bytes.
   */
  get releasedWrites(): number | undefined {
    return ON_NODE ? undefined : this.#released;
  }

  #onWritten = () => this.#released++;

  get remoteAddress(): { hostname: string; port: number } | undefined {
    const { remoteAddress, remotePort } = this.#socket;
    if (remoteAddress === undefined || remotePort === undefined) {
      return undefined;
    }
    return { hostname: remoteAddress, port: remotePort };
  }

  write(bytes: Uint8Array): boolean {
    const socket = this.#socket;
    if (this.finished || socket.writableEnded || socket.destroyed) return false;
    // Also checks the size: an accepted socket may have the runtime's
    // default mark, and Bun's and Deno's node:net need not honour ours.
    // A callback costs Node 7% of its request rate, and Node needs none.
    return socket.write(bytes, ON_NODE ? undefined : this.#onWritten) &&
      socket.writableLength < HIGH_WATER_MARK;
  }

  drained(): Promise<void> {
    const socket = this.#socket;
    // 'drain' only comes after a write returned false; with nothing owed,
    // there is nothing to wait for.
    if (this.finished || !socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  close(): void {
    const socket = this.#socket;
    if (this.finished || socket.writableEnded) return;
    // end() flushes and sends FIN; then release the socket rather than wait
    // for a peer that may never close its side.
    socket.end(() => socket.destroy());
    if (socket.writableLength > 0) this.closeWithin();
  }

  destroy(error?: Error): void {
    if (this.finished) return;
    const socket = this.#socket;
    // Finish first so `error`, not the socket's own close, is reported.
    this.finish(error);
    this.#wakeDrainWaiters();
    // A reset tells the peer at once that queued bytes were dropped. Not
    // after end(): Node then can leave the process spinning at 100% CPU,
    // never exiting, once everything else has closed.
    if (
      typeof socket.resetAndDestroy === "function" && !socket.writableEnded
    ) {
      try {
        socket.resetAndDestroy();
        return;
      } catch {
        // Not connected yet, or a runtime without resets: plain destroy.
      }
    }
    socket.destroy();
  }

  protected startReading(): void {
    this.#onData = this.#gatherRecords
      ? (chunk: Uint8Array) => {
        const view = new Uint8Array(
          chunk.buffer,
          chunk.byteOffset,
          chunk.byteLength,
        );
        if (this.#gathered === undefined) {
          this.#gathered = [view];
          setImmediate(this.#deliverGathered);
        } else this.#gathered.push(view);
      }
      : (chunk: Uint8Array) => {
        // Node allocates a fresh Buffer per read. The plain view keeps
        // Uint8Array semantics (Buffer's slice() is a view, not a copy).
        this.emitData(
          new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length),
        );
      };
    this.#socket.on("data", this.#onData);
  }

  /**
   * Node's TLSSocket calls back once per TLS record, and runs the
   * microtasks after each: the replies of one record are answered in a
   * write of their own before the next record of the same read is even
   * decrypted. Once a node's replies came in two records, the client's
   * next requests leave in two writes and the node answers in two
   * records again: batches only ever split, and at 64 in flight settled
   * near 22 requests a write instead of 62 (TCP's reads merge what the
   * node wrote apart). Handing the records of one read over together,
   * in one callback after the read, keeps one write per read. The cost
   * is one `setImmediate` per read, no copy.
   */
  #deliverGathered = (): void => {
    const gathered = this.#gathered;
    if (gathered === undefined) return;
    this.#gathered = undefined;
    for (let i = 0; i < gathered.length; i++) this.emitData(gathered[i]);
  };

  /** Stops `'data'` events until `resume()`. */
  pause(): void {
    this.#socket.pause();
  }

  /** Lets `'data'` events flow again. */
  resume(): void {
    if (this.#onData !== undefined) this.#socket.resume();
  }

  /**
   * Client side of a TLS upgrade: `tls.connect({ socket })`. The TLS
   * socket takes the socket's handle, so this channel lets go of it.
   */
  async startTls(options: TlsOptions): Promise<ByteChannel> {
    options = readTls("startTls()", options, false);
    const tls = await loadTls();
    const socket = this.#release();
    const { serverName } = options;
    const skip = options.dangerouslySkipVerify === true;
    let secure: Tls.TLSSocket | undefined;
    return await handshakeUnder(
      options.signal,
      () => (secure ?? socket).destroy(),
      this.endpoint,
      serverName,
      () =>
        new Promise<ByteChannel>((resolve, reject) => {
          secure = tls.connect({
            socket,
            // `host` is what the certificate is checked against; SNI
            // carries DNS names only (RFC 6066).
            host: serverName,
            servername: isIpLiteral(serverName) ? undefined : serverName,
            ca: options.ca ? [...options.ca] : undefined,
            // Verified on `secureConnect`, where the certificate can still
            // be read (see verificationFailure).
            rejectUnauthorized: false,
            // Node asserts it is a function when the key is present.
            ...(skip ? { checkServerIdentity: () => undefined } : {}),
          });
          settleOnHandshake(
            secure,
            "secureConnect",
            this.endpoint,
            resolve,
            reject,
            skip ? undefined : verificationFailure,
            true,
          );
        }),
    );
  }

  /** Server side of a TLS upgrade: `new tls.TLSSocket(socket, { isServer })`. */
  async acceptTls(options: TlsServerOptions): Promise<ByteChannel> {
    options = readTls("acceptTls()", options, true);
    const tls = await loadTls();
    const socket = this.#release();
    let secure: Tls.TLSSocket | undefined;
    return await handshakeUnder(
      options.signal,
      () => (secure ?? socket).destroy(),
      this.endpoint,
      this.endpoint.hostname,
      () =>
        new Promise<ByteChannel>((resolve, reject) => {
          secure = new tls.TLSSocket(socket, {
            isServer: true,
            cert: options.cert,
            key: options.key,
          });
          settleOnHandshake(secure, "secure", this.endpoint, resolve, reject);
        }),
    );
  }

  /** Hands the socket over: our listeners go, an error sink stays. */
  #release(): Net.Socket {
    const socket = this.#socket;
    if (this.finished || socket.destroyed) {
      throw socketClosed(this.endpoint);
    }
    socket.off("error", this.#onError);
    socket.off("close", this.#onSocketClose);
    socket.off("drain", this.#onDrain);
    if (this.#onData) socket.off("data", this.#onData);
    // The TLS socket reports errors itself; one here must not go uncaught.
    socket.on("error", () => {});
    this.#wakeDrainWaiters();
    this.retire();
    return socket;
  }

  #wakeDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * Resolves with a channel over `secure` once its handshake is done
 * (`event`) and `verify` (if any) found nothing wrong; rejects with what
 * broke it before, or with what `verify` returned.
 */
export function settleOnHandshake(
  secure: Tls.TLSSocket,
  event: "secureConnect" | "secure",
  endpoint: Endpoint,
  resolve: (channel: ByteChannel) => void,
  reject: (error: unknown) => void,
  verify?: (secure: Tls.TLSSocket) => Error | undefined,
  gatherRecords = false,
): void {
  const onClose = () =>
    reject(
      Object.assign(
        new Error("the connection closed during the TLS handshake"),
        { code: "ECONNRESET" },
      ),
    );
  secure.on("error", reject);
  secure.once("close", onClose);
  secure.once(event, () => {
    const refused = verify?.(secure);
    // Refused: the caller destroys the socket; its close reports nothing.
    if (refused) return reject(refused);
    secure.off("error", reject);
    secure.off("close", onClose);
    resolve(new NodeChannel(secure, endpoint, gatherRecords));
  });
}

/**
 * Why `secure` is not to be trusted, or `undefined` when it verified. No
 * application data has been sent yet when this runs. An unverified
 * certificate outside its validity period is reported as expired (or not
 * yet valid), whatever code the runtime chose.
 */
export function verificationFailure(secure: Tls.TLSSocket): Error | undefined {
  if (secure.authorized) return undefined;
  let code = String(secure.authorizationError ?? "CERT_UNTRUSTED");
  if (code !== "ERR_TLS_CERT_ALTNAME_INVALID") {
    const cert = secure.getPeerCertificate();
    const now = Date.now();
    if (cert && Date.parse(cert.valid_to) < now) code = "CERT_HAS_EXPIRED";
    else if (cert && Date.parse(cert.valid_from) > now) {
      code = "CERT_NOT_YET_VALID";
    }
  }
  return Object.assign(
    new Error(`the certificate did not verify: ${code}`),
    { code },
  );
}
