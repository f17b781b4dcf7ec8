/**
 * The contract between the runtime-neutral core and the code that touches
 * sockets. Push-based and small on purpose: Web Streams would cost a promise
 * per chunk on the hot path.
 *
 * @module
 */

import type { DatagramChannel, DatagramOptions } from "./datagram.ts";

/**
 * Which adapter is in use.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import type { RuntimeName } from "@nodewire/client/runtime";
 * const runtime: RuntimeName = "node"; // Node's sockets, even under Bun or Deno
 * const client = await Client.connect({ hosts: ["127.0.0.1:7000"], runtime });
 * await client.disconnect();
 * ```
 */
export type RuntimeName = "deno" | "bun" | "node" | "memory";

/**
 * Options for {@linkcode RuntimeAdapter.connect}.
 *
 * @example
 * ```ts
 * import { getAdapter } from "@nodewire/client/runtime";
 * const adapter = await getAdapter();
 * const channel = await adapter.connect({
 *   hostname: "127.0.0.1",
 *   port: 7000,
 *   signal: AbortSignal.timeout(2000), // give up a connect that hangs
 * });
 * channel.close();
 * ```
 */
export interface ConnectOptions {
  /** Host name or IP literal (IPv6 without brackets). */
  hostname: string;
  /** TCP port. */
  port: number;
  /**
   * Gives up when this fires: the adapter rejects with the signal's reason
   * and releases the half-open socket.
   */
  signal?: AbortSignal;
  /**
   * Speak TLS from the first byte (the channel resolves once the handshake
   * verified the node). Only on adapters with `supportsTls`.
   */
  tls?: TlsOptions;
  /**
   * A hint: `startTls` will follow, verifying the node. Deno's adapter then
   * opens a `Deno.Conn`, for `Deno.startTls`.
   */
  startsTls?: boolean;
}

/**
 * Options for {@linkcode RuntimeAdapter.listen}.
 *
 * @example
 * ```ts
 * import { getAdapter } from "@nodewire/client/runtime";
 * const adapter = await getAdapter();
 * const listener = await adapter.listen({ hostname: "127.0.0.1", port: 0 }, (channel) => channel.close());
 * console.log(listener.port); // the free port picked
 * await listener.close();
 * ```
 */
export interface ListenOptions {
  /** Address to bind; loopback by default. */
  hostname?: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /**
   * Serve TLS from the first byte: `onConnection` gets channels whose
   * handshake completed. Only on adapters with `supportsTls`.
   */
  tls?: TlsServerOptions;
}

/**
 * A connected, bidirectional byte stream: a TCP socket, or an in-memory
 * pipe in tests.
 *
 * Contract:
 * - `onData` chunks belong to the receiver: the adapter never writes into a
 *   chunk after handing it over, so the codec may return views into it.
 * - `onClose` fires exactly once, after the last `onData`, with the error
 *   that ended the stream (already one of the SDK's error classes) or
 *   without one for an orderly close by either side.
 * - Callbacks registered late still see data and close that happen after
 *   registration; register both before any await.
 *
 * @example
 * ```ts
 * import type { ByteChannel } from "@nodewire/client/runtime";
 * declare const channel: ByteChannel; // from adapter.connect or a listener
 * channel.onData((chunk) => console.log(`${chunk.byteLength} bytes`));
 * channel.onClose((error) => console.log(error ? `lost: ${error.message}` : "closed"));
 * if (!channel.write(new Uint8Array([1, 2, 3]))) await channel.drained(); // backpressure
 * channel.close();
 * ```
 */
export interface ByteChannel {
  /** Sets the receiver of incoming chunks (one receiver). */
  onData(fn: (chunk: Uint8Array) => void): void;
  /** Sets the receiver of the close notification (one receiver). */
  onClose(fn: (error?: Error) => void): void;
  /**
   * Queues `bytes` for sending. The caller must not modify `bytes` later.
   * Returns false when the queue is above its high-water mark: stop writing
   * and wait for {@linkcode ByteChannel.drained}. After close, the bytes are
   * dropped and false is returned. Only a `Uint8Array` is checked for:
   * anything else does what the runtime makes of it.
   */
  write(bytes: Uint8Array): boolean;
  /** Resolves when the send queue is below its low-water mark, or closed. */
  drained(): Promise<void>;
  /**
   * Flushes what is queued, then closes the stream. Idempotent. Bounded:
   * a peer that takes none of the queued bytes for 500 ms (restarted by
   * any progress) gets them dropped and the socket destroyed; `onClose`
   * then has a `ConnectionLostError`.
   */
  close(): void;
  /** Closes at once, dropping what is queued. Idempotent. */
  destroy(error?: Error): void;
  /** Bytes accepted by `write` and not yet handed to the OS. */
  readonly bufferedAmount: number;
  /**
   * The peer's address, when the runtime reports it. UDP sends to, and
   * takes replies only from, this IP address; without it, only a node
   * configured by IP address can be reached over UDP.
   */
  readonly remoteAddress: { hostname: string; port: number } | undefined;
  /**
   * Payloads shorter than this many bytes are copied out of a chunk
   * rather than handed out as views into it, on a runtime where a small
   * fresh array costs less than a view (see `MessageCodec.copyBelow`).
   * Unset: always views.
   */
  readonly copyBelow?: number;
  /**
   * True when, once `bufferedAmount` reads 0, the channel holds none of the
   * bytes earlier `write` calls gave it (it copied them, or the OS took
   * them): the writer may then fill the same buffer again. Unset: never.
   */
  readonly releasesWrites?: boolean;
  /** How many `write` calls, in order, no longer hold their bytes. */
  readonly releasedWrites?: number;
  /**
   * True when small writes and reads cost the runtime little enough that,
   * with up to 64 requests in flight, a burst of frames should go out in
   * parts from the smallest (16 frames) on rather than in halves of the
   * window: the peer starts on the first part sooner (Bun's and Deno's
   * sockets; not Node's, where the extra writes cost more than the
   * overlap gains). A performance hint only. Unset: halves.
   */
  readonly smallParts?: boolean;
  /**
   * Stops reading once the chunk being delivered has been handed over,
   * until `resume()` or a TLS upgrade. Called from inside `onData` when
   * the last plaintext message before a TLS switch arrives, so that no
   * byte after it (the peer's first TLS record) reaches the plaintext
   * reader while the TLS layer is being set up, and no read is in flight
   * when the socket changes hands.
   */
  pause?(): void;
  /** Reads again after `pause()`. */
  resume?(): void;
  /**
   * Client side of a TLS upgrade on this open stream: resolves with the
   * encrypted channel once the node's certificate is verified. From then
   * on this channel is spent: use the one returned (its callbacks start
   * unset). Rejects with a `TlsError` (bad certificate, wrong name, a
   * broken handshake), a `ConnectionLostError`, or the signal's reason,
   * having destroyed the socket. Call only when the peer sends nothing
   * until it sees the ClientHello.
   */
  startTls?(options: TlsOptions): Promise<ByteChannel>;
  /** Server side of a TLS upgrade, for the reference node. */
  acceptTls?(options: TlsServerOptions): Promise<ByteChannel>;
}

/**
 * A bound server socket that pushes accepted connections.
 *
 * @example
 * ```ts
 * import { createMemoryNetwork } from "@nodewire/client/runtime";
 * const network = createMemoryNetwork();
 * const listener = await network.listen({ port: 0 }, (channel) => channel.destroy());
 * console.log(`${listener.hostname}:${listener.port}`);
 * await listener.close(); // stops accepting
 * ```
 */
export interface Listener {
  /** The bound address (with the real port when 0 was asked for). */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  /** Stops accepting; open channels stay open. Resolves once unbound. */
  close(): Promise<void>;
}

/**
 * Everything the SDK needs from a runtime. One implementation per runtime in
 * `src/runtime/`, plus an in-memory one for deterministic tests.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { getAdapter, type RuntimeAdapter } from "@nodewire/client/runtime";
 * // Wraps the native adapter to count connects; the client uses it as it is.
 * const native = await getAdapter();
 * let connects = 0;
 * const counting: RuntimeAdapter = {
 *   name: native.name,
 *   supportsTls: native.supportsTls,
 *   connect(options) {
 *     connects++;
 *     return native.connect(options);
 *   },
 *   listen: (options, onConnection) => native.listen(options, onConnection),
 * };
 * const client = await Client.connect({ hosts: ["127.0.0.1:7000"], runtime: counting });
 * console.log(connects);
 * ```
 */
export interface RuntimeAdapter {
  /** The runtime this adapter uses. */
  readonly name: RuntimeName;
  /**
   * Opens a TCP connection with Nagle disabled. Rejects with
   * `ConnectionRefusedError`, `HostNotFoundError` or another
   * `ConnectionError`, never with a runtime-specific error; with
   * `InvalidArgumentError`, before any socket, for bad options. The
   * client does not wait past its limit for an adapter deaf to the
   * signal (a channel that comes later is destroyed), and maps anything
   * else it rejects with as a runtime's socket error (a `ConnectionError`
   * `CONNECTION_FAILED` that quotes it).
   */
  connect(options: ConnectOptions): Promise<ByteChannel>;
  /**
   * Binds a TCP server and calls `onConnection` for each accepted socket.
   * Rejects with `InvalidArgumentError` for bad options or receiver, and,
   * before binding, for a `tls` certificate and key that do not go
   * together or cannot be read (bound, it would reset every client). An
   * `onConnection` that throws gets that channel destroyed with what it
   * threw (the peer sees a reset); the listener goes on accepting.
   */
  listen(
    options: ListenOptions,
    onConnection: (channel: ByteChannel) => void,
  ): Promise<Listener>;
  /**
   * Binds a UDP socket (src/runtime/datagram.ts). Optional: an adapter
   * without it cannot do UDP, and the client then never offers UDP.
   * Rejects with a `ConnectionError` (`LISTEN_FAILED`) when the address
   * cannot be bound, `InvalidArgumentError` for bad options.
   */
  datagram?(options: DatagramOptions): Promise<DatagramChannel>;
  /**
   * Whether this adapter speaks TLS: `connect({ tls })`, `listen({ tls })`
   * and its channels' `startTls`/`acceptTls`. Without it the client never
   * offers TLS.
   */
  readonly supportsTls?: boolean;
}

/**
 * The client side of a TLS session: for `ByteChannel.startTls` and for
 * `RuntimeAdapter.connect({ tls })`.
 *
 * @example
 * ```ts
 * import { getAdapter } from "@nodewire/client/runtime";
 * declare const caPem: string; // the CA that signed the node's certificate
 * const adapter = await getAdapter();
 * const channel = await adapter.connect({
 *   hostname: "127.0.0.1",
 *   port: 7443,
 *   tls: { serverName: "db.internal", ca: [caPem], signal: AbortSignal.timeout(3000) },
 * });
 * ```
 */
export interface TlsOptions {
  /**
   * The name the node's certificate must be valid for: a DNS name or an IP
   * literal. Also sent as SNI when it is a DNS name.
   */
  serverName: string;
  /**
   * PEM certificates of the CAs to trust, one certificate per string.
   * Node and Bun trust these instead of the system roots; Deno trusts them
   * besides its root store, which it cannot leave out. Default: the
   * system roots.
   */
  ca?: readonly string[];
  /**
   * Accepts any certificate, for any name: anyone on the path can read and
   * change the traffic. For tests against a throwaway certificate only.
   */
  dangerouslySkipVerify?: boolean;
  /**
   * Gives up the handshake: the adapter destroys the socket and rejects
   * with the signal's reason.
   */
  signal?: AbortSignal;
}

/**
 * The server side of a TLS session: for `ByteChannel.acceptTls` and for
 * `RuntimeAdapter.listen({ tls })`. Used by the reference node.
 *
 * @example
 * ```ts
 * import { getAdapter } from "@nodewire/client/runtime";
 * declare const certPem: string, keyPem: string;
 * const adapter = await getAdapter();
 * const listener = await adapter.listen(
 *   { port: 0, tls: { cert: certPem, key: keyPem } },
 *   (channel) => channel.close(),
 * );
 * ```
 */
export interface TlsServerOptions {
  /** The certificate chain, PEM, leaf first. */
  cert: string;
  /** The private key, PEM. Never logged. */
  key: string;
  /** Gives up the handshake, as in {@linkcode TlsOptions.signal}. */
  signal?: AbortSignal;
}
