/**
 * One connection to one node: the hello handshake, sequence-numbered
 * messages, and many requests in flight matched by sequence number.
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import { DEFAULT_TIMEOUT_MS } from "../config/defaults.ts";
import { DEFAULT_MAX_FRAME_SIZE } from "../protocol/frame.ts";
import { type DeadlineEntry, DeadlineTracker } from "./deadlines.ts";
import {
  AbortedError,
  ConnectionClosedError,
  ConnectionError,
  ConnectionLostError,
  ConnectTimeoutError,
  type Endpoint,
  formatAddress,
  NodewireError,
  ProtocolError,
  RemoteError,
  RequestTimeoutError,
} from "../errors.ts";
import { PendingTable } from "./pending_table.ts";
import { MessageCodec } from "../protocol/codec.ts";
import { FrameWriter } from "./frame_writer.ts";
import { FrameFlags, type Message, MessageType } from "../protocol/frame.ts";
import { rejection, type Resolve } from "./resolve_only.ts";
import {
  decodeError,
  decodeHelloOk,
  encodeJson,
  type HelloOkPayload,
} from "../protocol/messages.ts";
import type {
  ByteChannel,
  RuntimeAdapter,
  TlsOptions,
} from "../runtime/types.ts";

/** Options for {@linkcode Connection.connect}. */
export interface ConnectionOptions {
  /** The runtime adapter that opens the socket. */
  adapter: RuntimeAdapter;
  /** Node host name or IP literal (IPv6 without brackets). */
  hostname: string;
  /** Node port. */
  port: number;
  /** Limit for TCP connect plus handshake, in ms. Default 5000. */
  timeoutMs?: number;
  /** Default per-request timeout, in ms. Default `timeoutMs`. */
  requestTimeoutMs?: number;
  /** Largest payload accepted, in bytes. Default 16 MiB. */
  maxFrameSize?: number;
  /** Clock for every timeout. Default the system clock. */
  clock?: Clock;
  /** Name sent in HELLO. */
  clientName?: string;
  /** Connection id; a process-wide increasing counter by default. */
  id?: number;
  /** Cancels connecting. */
  signal?: AbortSignal;
  /**
   * Runs after HELLO_OK and before the connection is handed out: the place
   * for protocol negotiation and authentication.
   */
  handshake?: (
    connection: Connection,
    hello: HelloOkPayload,
    signal: AbortSignal,
  ) => Promise<void>;
  /**
   * Speak TLS from the first byte (a node listening with TLS only). The
   * usual way is a plaintext start upgraded by the handshake instead.
   */
  tls?: Omit<TlsOptions, "signal">;
}

/** Options for a single request. */
export interface RequestOptions {
  /** Overrides the connection's request timeout, in ms. */
  timeoutMs?: number;
  /** Cancels the request; a late reply is dropped. */
  signal?: AbortSignal;
  /** Marks the request safe to execute twice, so safe to retry after send. */
  idempotent?: boolean;
}

/** Counters of one connection. */
export interface ConnectionStats {
  /** Requests and pings written. */
  sent: number;
  /** Replies matched to a pending request. */
  received: number;
  /** Replies for no pending request (late after a timeout, or unknown). */
  dropped: number;
  /** Requests that timed out. */
  timedOut: number;
}

/**
 * Another way for a connection's requests and pings to travel, taken once
 * the handshake chose it (UDP: `src/udp.ts`). The stream stays the
 * connection's control channel: handshake, GOODBYE, errors about the
 * whole connection.
 *
 * @example A route that loses everything (requests then time out)
 * ```ts
 * import type { RequestRoute } from "@nodewire/client";
 * const blackHole: RequestRoute = {
 *   maxPayload: 1024,
 *   tooLarge: (length) => new RangeError(`${length} bytes do not fit`),
 *   send: () => {},
 *   close: () => {},
 * };
 * ```
 */
export interface RequestRoute {
  /** The largest REQUEST or PING payload the route carries, in bytes. */
  readonly maxPayload: number;
  /** The error for a payload over `maxPayload`; such a request is not sent. */
  tooLarge(length: number): Error;
  /** Sends one REQUEST or PING. Loss shows up as the request's timeout. */
  send(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void;
  /** Releases the route; called once, when the connection closes. */
  close(): void;
}

/**
 * Receives the outcome of one request sent with
 * {@linkcode Connection.submitRequest}: exactly one of the two methods is
 * called, exactly once. Layers that already own a promise for the request
 * (the Client does) use this instead of a second promise per request.
 *
 * @example
 * ```ts
 * import type { ReplySink } from "@nodewire/client";
 * const sink: ReplySink = {
 *   onReply: (payload) => console.log(payload.byteLength),
 *   onError: (error) => console.error(error.message),
 * };
 * ```
 */
export interface ReplySink {
  /** The node's response payload (a view into the received bytes). */
  onReply(payload: Uint8Array): void;
  /** Why the request failed: the same errors `sendRequest` rejects with. */
  onError(error: Error): void;
}

/**
 * One request in flight: a record of eight fields, since a connection may
 * hold a hundred thousand of them. What only some requests need (an abort
 * signal, a frame held back by congestion) lives in records of its own.
 */
interface Pending extends DeadlineEntry {
  readonly sequence: number;
  /** The frame type sent (REQUEST or PING); the reply type follows from it. */
  readonly type: number;
  readonly sink: ReplySink;
  abort: AbortHook | undefined;
}

/** A request's abort listener and the signal it listens to. */
interface AbortHook {
  readonly signal: AbortSignal;
  readonly listener: () => void;
}

/** A request whose frame waits for a congested socket to drain. */
interface HeldFrame {
  readonly pending: Pending;
  readonly flags: number;
  readonly payload: Uint8Array;
}

/** Settles a promise from a connection, keeping only its resolve function. */
class PromiseSink implements ReplySink {
  constructor(readonly resolve: Resolve<Uint8Array>) {}

  onReply(payload: Uint8Array): void {
    this.resolve(payload);
  }

  onError(error: Error): void {
    this.resolve(rejection(error));
  }
}

let nextConnectionId = 1;

/**
 * A connection to one node. Many requests may be in flight at once; each
 * reply is matched to its request by sequence number, and a reply that
 * arrives after its request gave up is dropped, never handed to another.
 *
 * @example
 * ```ts
 * import { Connection } from "@nodewire/client";
 * import { getAdapter } from "@nodewire/client";
 * const connection = await Connection.connect({
 *   adapter: await getAdapter(),
 *   hostname: "127.0.0.1",
 *   port: 7000,
 * });
 * const reply = await connection.sendRequest(new Uint8Array([1, 104, 105]));
 * await connection.close();
 * ```
 */
export class Connection {
  /** Increasing id, unique in the process. */
  readonly id: number;
  /** The node's host. */
  readonly hostname: string;
  /** The node's port. */
  readonly port: number;
  /** `host:port` of the node. */
  readonly address: string;
  /** When the connection was opened, on its clock. */
  readonly createdAt: number;
  /** Settles when the connection is gone: with the error if it broke. */
  readonly closed: Promise<Error | undefined>;
  /** Counters. */
  readonly stats: ConnectionStats = {
    sent: 0,
    received: 0,
    dropped: 0,
    timedOut: 0,
  };

  #nodeId = "";
  #hello: HelloOkPayload | undefined;
  // Replaced once, by startTls().
  #channel: ByteChannel;
  #encrypted = false;
  // Messages decoded after a pauseReading receive, while a TLS switch may
  // follow: none are expected (see startTls).
  #held: Message[] | undefined;
  readonly #codec: MessageCodec;
  readonly #clock: Clock;
  readonly #requestTimeoutMs: number;
  readonly #pending = new PendingTable<Pending>();
  readonly #deadlines: DeadlineTracker<Pending>;
  #nextSequence = 1;
  #sendLimit: number;
  #state: "open" | "closing" | "closed" = "open";
  #resolveClosed!: (error: Error | undefined) => void;
  #closeError: Error | undefined;
  #drainWaiters: Array<() => void> = [];

  // Unsolicited and control messages, for receiveMessage().
  #inbox: Message[] = [];
  #inboxWaiters: Array<(message: Message | Error) => void> = [];

  #writer: FrameWriter;
  // Requests held back while the socket is congested.
  #queued: HeldFrame[] = [];
  // Where requests and pings go instead of the stream, once routed.
  #route: RequestRoute | undefined;

  /** @internal Use {@linkcode Connection.connect}. */
  constructor(
    channel: ByteChannel,
    endpoint: Endpoint,
    options: {
      id?: number;
      clock?: Clock;
      requestTimeoutMs?: number;
      maxFrameSize?: number;
    } = {},
  ) {
    this.id = options.id ?? nextConnectionId++;
    this.hostname = endpoint.hostname;
    this.port = endpoint.port;
    this.address = formatAddress(endpoint);
    this.#channel = channel;
    this.#clock = options.clock ?? systemClock;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#codec = new MessageCodec(
      options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    );
    this.#sendLimit = this.#codec.maxFrameSize;
    this.createdAt = this.#clock.now();
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#deadlines = new DeadlineTracker(this.#clock, this.#expire);
    this.#writer = new FrameWriter(channel, this.#onDrained);
    channel.onData(this.#onData);
    channel.onClose(this.#onChannelClose);
  }

  /**
   * Opens a connection and completes the hello handshake within
   * `timeoutMs`.
   *
   * @throws {ConnectTimeoutError} when connect plus handshake take too long.
   * @throws {ConnectionError} when the node cannot be reached.
   * @throws {AbortedError} when `signal` aborts.
   */
  static async connect(options: ConnectionOptions): Promise<Connection> {
    const clock = options.clock ?? systemClock;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const endpoint = { hostname: options.hostname, port: options.port };
    const controller = new AbortController();
    const timer = clock.setTimeout(
      () => controller.abort(new ConnectTimeoutError(endpoint, timeoutMs)),
      timeoutMs,
    );
    const onAbort = () =>
      controller.abort(
        new AbortedError(
          `connecting to ${formatAddress(endpoint)} was aborted`,
          options.signal?.reason,
        ),
      );
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    let connection: Connection | undefined;
    try {
      const channel = await options.adapter.connect({
        ...endpoint,
        signal: controller.signal,
        tls: options.tls,
      });
      connection = new Connection(channel, endpoint, {
        id: options.id,
        clock,
        requestTimeoutMs: options.requestTimeoutMs ?? timeoutMs,
        maxFrameSize: options.maxFrameSize,
      });
      connection.#encrypted = options.tls !== undefined;
      await connection.#helloHandshake(
        options.clientName ?? "nodewire",
        controller.signal,
      );
      if (options.handshake) {
        await options.handshake(
          connection,
          connection.#hello!,
          controller.signal,
        );
      }
      if (controller.signal.aborted) throw controller.signal.reason;
      return connection;
    } catch (error) {
      const reason = controller.signal.aborted
        ? controller.signal.reason
        : error;
      connection?.destroy(reason instanceof Error ? reason : undefined);
      throw reason;
    } finally {
      clock.clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The node's id, from its HELLO_OK. */
  get nodeId(): string {
    return this.#nodeId;
  }

  /** What the node said about itself in HELLO_OK. */
  get hello(): HelloOkPayload | undefined {
    return this.#hello;
  }

  /** Requests and pings waiting for their reply. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Whether new requests are accepted. */
  get isOpen(): boolean {
    return this.#state === "open";
  }

  /** Bytes queued but not yet handed to the operating system. */
  get bufferedAmount(): number {
    return this.#channel.bufferedAmount + this.#writer.pendingBytes;
  }

  /** The node's IP address and port as the socket reports them. */
  get remoteAddress(): { hostname: string; port: number } | undefined {
    return this.#channel.remoteAddress;
  }

  /**
   * From now on sends requests and pings over `route` instead of the
   * stream, which stays the control channel. The returned function takes
   * the replies the route receives (RESPONSE, PONG, ERROR); they are
   * matched like replies on the stream, and an ERROR with sequence 0 ends
   * the connection. The route is closed with the connection. Used by the
   * UDP transport during the handshake.
   *
   * @throws {ConnectionClosedError} when the connection is already closed
   *   (the route is closed too).
   */
  routeRequests(route: RequestRoute): (message: Message) => void {
    if (this.#state === "closed") {
      route.close();
      throw new ConnectionClosedError(this);
    }
    this.#route?.close();
    this.#route = route;
    return this.#onRoutedMessage;
  }

  /** Whether the single deadline timer is armed (for leak checks). */
  get timerArmed(): boolean {
    return this.#deadlines.armed;
  }

  /** Whether the stream is TLS (upgraded, or connected with TLS). */
  get encrypted(): boolean {
    return this.#encrypted;
  }

  /**
   * Switches the open stream to TLS, client side: the last step of
   * negotiating TLS, after NEGOTIATE_OK was taken with `pauseReading`.
   * Resolves once the node's certificate is verified; the connection then
   * carries everything over TLS. On failure the caller destroys the
   * connection: no plaintext is ever sent again.
   *
   * @throws {TlsError} for a certificate, name or handshake failure.
   * @throws {ProtocolError} when plaintext arrived after the switch point
   *   or requests are in flight.
   * @throws {ConnectionError} when the connection is gone or its adapter
   *   has no TLS.
   */
  async startTls(options: TlsOptions): Promise<void> {
    if (this.#state !== "open") throw this.#lostError(false);
    const channel = this.#channel;
    if (this.#encrypted) {
      throw new ProtocolError("the connection is already encrypted");
    }
    if (channel.startTls === undefined) {
      throw new ConnectionError(
        "TLS_UNSUPPORTED",
        `the runtime adapter of ${this.address} cannot speak TLS`,
        this,
        { retryable: false },
      );
    }
    if (
      this.#pending.size > 0 || this.#inbox.length > 0 ||
      (this.#held?.length ?? 0) > 0 || this.#codec.bufferedBytes > 0 ||
      this.#route !== undefined
    ) {
      // Bytes after NEGOTIATE_OK were plaintext the node had no business
      // sending: a man in the middle would inject them here.
      throw new ProtocolError(
        "plaintext data arrived after the node agreed to switch to TLS",
      );
    }
    this.#writer.flush();
    const secure = await channel.startTls(options);
    if (this.#state !== "open") {
      secure.destroy();
      throw this.#lostError(false);
    }
    this.#channel = secure;
    this.#writer = new FrameWriter(secure, this.#onDrained);
    this.#encrypted = true;
    this.#held = undefined;
    secure.onData(this.#onData);
    secure.onClose(this.#onChannelClose);
  }

  /**
   * Reads from the socket again after a `receiveMessage` with
   * `pauseReading` when no TLS switch followed.
   */
  resumeReading(): void {
    const held = this.#held;
    this.#held = undefined;
    this.#channel.resume?.();
    // What came behind the pause point in the same chunk, in order.
    for (const message of held ?? []) this.#onMessage(message);
  }

  #pauseReading(): void {
    this.#held ??= [];
    this.#channel.pause?.();
  }

  /**
   * Sends one message. Uses the next sequence number unless `sequence` is
   * given (replies reuse the sequence of what they answer).
   *
   * @returns the sequence number used.
   * @throws {ConnectionClosedError} after close.
   * @throws {ProtocolError} for a payload over the node's frame limit.
   */
  sendMessage(
    type: number,
    payload: Uint8Array,
    options: { flags?: number; sequence?: number } = {},
  ): number {
    if (this.#state === "closed") {
      throw new ConnectionClosedError(this);
    }
    this.#codec.checkLength(payload.byteLength);
    if (payload.byteLength > this.#sendLimit) {
      throw new ProtocolError(
        `payload of ${payload.byteLength} bytes exceeds the node's limit of ${this.#sendLimit}`,
      );
    }
    const sequence = options.sequence ?? this.#nextSequence++;
    this.#writer.push(type, options.flags ?? 0, sequence, payload);
    return sequence;
  }

  /**
   * Waits for the next message that answers no pending request: control
   * messages during the handshake, or a node's GOODBYE.
   *
   * With `pauseReading`, the socket is read no further once this message
   * is taken (until {@linkcode Connection.startTls} or
   * {@linkcode Connection.resumeReading}): the node's last plaintext
   * message before a TLS switch.
   *
   * @throws {ConnectionLostError} when the connection closes first.
   * @throws {RequestTimeoutError} after `timeoutMs`.
   * @throws {AbortedError} when `signal` aborts.
   */
  receiveMessage(
    options: {
      timeoutMs?: number;
      signal?: AbortSignal;
      pauseReading?: boolean;
    } = {},
  ): Promise<Message> {
    const next = this.#inbox.shift();
    if (next) {
      if (options.pauseReading) this.#pauseReading();
      return Promise.resolve(next);
    }
    if (this.#state === "closed") {
      return Promise.reject(this.#lostError(false));
    }
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
      const cleanup = () => {
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        const i = this.#inboxWaiters.indexOf(waiter);
        if (i >= 0) this.#inboxWaiters.splice(i, 1);
      };
      const waiter = (message: Message | Error) => {
        cleanup();
        if (message instanceof Error) return reject(message);
        // Called while the chunk holding `message` is being delivered, so
        // the adapter issues no further read.
        if (options.pauseReading) this.#pauseReading();
        resolve(message);
      };
      const onAbort = () => {
        cleanup();
        reject(new AbortedError("receive aborted", options.signal?.reason));
      };
      const timer = timeoutMs === Infinity
        ? undefined
        : this.#clock.setTimeout(() => {
          cleanup();
          reject(new RequestTimeoutError(this.address, timeoutMs));
        }, timeoutMs);
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#inboxWaiters.push(waiter);
    });
  }

  /**
   * Sends a request and resolves with the node's response payload (a view
   * into the received bytes).
   *
   * @throws {RequestTimeoutError} when no reply arrives in time.
   * @throws {RemoteError} when the node answers with an error.
   * @throws {ConnectionLostError} when the connection breaks first.
   * @throws {ConnectionClosedError} when the connection no longer takes work.
   * @throws {AbortedError} when `signal` aborts.
   */
  sendRequest(
    payload: Uint8Array,
    options?: RequestOptions,
  ): Promise<Uint8Array> {
    return new Promise((resolve) =>
      this.submitRequest(payload, options, new PromiseSink(resolve))
    );
  }

  /**
   * Sends a request like {@linkcode Connection.sendRequest}, but reports
   * the outcome to `sink` instead of a promise, so a caller that already
   * holds a promise per request does not pay for a second one. `sink` may
   * be called before this returns (a closed connection, an aborted signal).
   */
  submitRequest(
    payload: Uint8Array,
    options: RequestOptions | undefined,
    sink: ReplySink,
  ): void {
    this.#call(
      MessageType.Request,
      payload,
      options?.idempotent ? FrameFlags.Idempotent : 0,
      options,
      sink,
    );
  }

  /**
   * Sends a ping and resolves with the round trip time in milliseconds.
   *
   * @throws the same errors as {@linkcode Connection.sendRequest}.
   */
  async ping(options?: RequestOptions): Promise<number> {
    const start = this.#clock.now();
    await new Promise((resolve) =>
      this.#call(MessageType.Ping, EMPTY, 0, options, new PromiseSink(resolve))
    );
    return this.#clock.now() - start;
  }

  /**
   * Closes gracefully: stops taking requests, lets those in flight finish
   * (each is bounded by its own timeout), says GOODBYE and closes the
   * socket. Resolves when the socket is closed. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state === "open") {
      this.#state = "closing";
      if (this.#pending.size > 0) await this.#whenIdle();
      if (this.#state === "closing") {
        this.#writer.push(MessageType.Goodbye, 0, 0, EMPTY);
        this.#writer.flush();
        this.#finish(undefined);
        this.#channel.close();
      }
    }
    await this.closed;
  }

  /**
   * Closes at once. Pending requests fail with a retryable
   * {@linkcode ConnectionLostError} carrying `error` as cause.
   */
  destroy(error?: Error): void {
    if (this.#state === "closed") return;
    this.#finish(
      error ?? new ConnectionClosedError(this, { retryable: true }),
    );
    this.#channel.destroy(error);
  }

  async #helloHandshake(clientName: string, signal: AbortSignal) {
    this.sendMessage(
      MessageType.Hello,
      encodeJson({
        version: 1,
        client: clientName,
        maxFrameSize: this.#codec.maxFrameSize,
      }),
    );
    const reply = await this.receiveMessage({ signal, timeoutMs: Infinity });
    if (reply.type === MessageType.Error) {
      const e = decodeError(reply.payload);
      throw new RemoteError(e.code, e.message, e.retryable);
    }
    if (reply.type !== MessageType.HelloOk) {
      throw new ProtocolError(
        `expected HELLO_OK, got message type 0x${reply.type.toString(16)}`,
      );
    }
    this.#hello = decodeHelloOk(reply.payload);
    this.#nodeId = this.#hello.nodeId;
    this.#sendLimit = Math.min(this.#sendLimit, this.#hello.maxFrameSize);
  }

  #call(
    type: number,
    payload: Uint8Array,
    flags: number,
    options: RequestOptions | undefined,
    sink: ReplySink,
  ): void {
    if (this.#state !== "open") {
      return sink.onError(
        this.#state === "closed"
          ? this.#lostError(false)
          : new ConnectionClosedError(this),
      );
    }
    if (payload.byteLength > this.#sendLimit) {
      return sink.onError(
        new ProtocolError(
          `request payload of ${payload.byteLength} bytes exceeds the limit of ${this.#sendLimit}`,
        ),
      );
    }
    const route = this.#route;
    if (route !== undefined && payload.byteLength > route.maxPayload) {
      return sink.onError(route.tooLarge(payload.byteLength));
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      return sink.onError(
        new AbortedError("request aborted before it was sent", signal.reason),
      );
    }
    const sequence = this.#nextSequence++;
    const timeoutMs = options?.timeoutMs ?? this.#requestTimeoutMs;
    const pending: Pending = {
      sequence,
      type,
      sink,
      abort: undefined,
      deadline: 0,
      prev: undefined,
      next: undefined,
      list: undefined,
    };
    this.#pending.add(pending);
    this.#deadlines.add(pending, timeoutMs);
    if (signal) {
      const listener = () => {
        if (this.#settle(pending)) {
          sink.onError(new AbortedError("request aborted", signal.reason));
        }
      };
      pending.abort = { signal, listener };
      signal.addEventListener("abort", listener, { once: true });
    }
    if (route !== undefined) {
      route.send(type, flags, sequence, payload);
    } else if (this.#writer.congested) {
      // Keep the frame out of the socket's queue until it drains, so a
      // slow reader cannot make the send buffer grow without bound.
      this.#queued.push({ pending, flags, payload });
    } else {
      this.#writer.push(type, flags, sequence, payload);
    }
    this.stats.sent++;
  }

  /** Removes a pending entry; false when it had already settled. */
  #settle(pending: Pending): boolean {
    if (!this.#pending.delete(pending)) return false;
    this.#forget(pending);
    return true;
  }

  /** Forgets a pending entry known to be in the table (just looked up). */
  #release(pending: Pending): void {
    this.#pending.delete(pending);
    this.#forget(pending);
  }

  /** What follows an entry's removal from the table. */
  #forget(pending: Pending): void {
    this.#deadlines.remove(pending);
    const abort = pending.abort;
    if (abort !== undefined) {
      abort.signal.removeEventListener("abort", abort.listener);
    }
    if (this.#pending.size === 0 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  #expire = (pending: Pending, timeoutMs: number): void => {
    // The tracker already unlinked it; drop it from the map.
    if (this.#pending.get(pending.sequence) !== pending) return;
    pending.list = undefined;
    this.#settle(pending);
    this.stats.timedOut++;
    pending.sink.onError(
      new RequestTimeoutError(this.address, timeoutMs),
    );
  };

  #whenIdle(): Promise<void> {
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #onData = (chunk: Uint8Array): void => {
    try {
      this.#codec.decode(chunk, this.#onMessage);
    } catch (error) {
      const reason = error instanceof ProtocolError
        ? `protocol violation: ${error.message}`
        : `failed to handle a message: ${String(error)}`;
      this.destroy(new ConnectionLostError(this, reason, { cause: error }));
    }
  };

  #onMessage = (message: Message): void => {
    if (this.#held !== undefined) {
      // Behind the pause point: kept, not acted on (not even a PING's
      // PONG), until resumeReading() or a refused startTls().
      this.#held.push(message);
      return;
    }
    const type = message.type;
    if (
      type === MessageType.Response || type === MessageType.Pong ||
      (type === MessageType.Error && message.sequence !== 0)
    ) {
      const pending = this.#pending.get(message.sequence);
      if (pending === undefined) {
        // An ERROR answering a control message (HELLO, NEGOTIATE, AUTH_*)
        // goes to whoever waits in receiveMessage(), so a handshake fails
        // at once instead of at its timeout.
        const waiter = type === MessageType.Error
          ? this.#inboxWaiters.shift()
          : undefined;
        if (waiter) return waiter(message);
        // Late (after a timeout or abort), duplicate or unknown: drop it.
        this.stats.dropped++;
        return;
      }
      if (type === MessageType.Error) {
        const e = decodeError(message.payload);
        this.#release(pending);
        this.stats.received++;
        pending.sink.onError(
          new RemoteError(e.code, e.message, e.retryable, this.#nodeId),
        );
        return;
      }
      if (type !== replyTypeOf(pending.type)) {
        throw new ProtocolError(
          `sequence ${message.sequence} answered with type 0x${
            type.toString(16)
          }`,
        );
      }
      this.#release(pending);
      this.stats.received++;
      pending.sink.onReply(message.payload);
      return;
    }
    if (type === MessageType.Ping) {
      // A node may probe us; answer in kind.
      if (this.#state !== "closed") {
        this.#writer.push(
          MessageType.Pong,
          0,
          message.sequence,
          message.payload,
        );
      }
      return;
    }
    if (type === MessageType.Goodbye) {
      // The node is draining: take no new work; what is in flight finishes.
      if (this.#state === "open") this.#state = "closing";
      if (this.#pending.size === 0) this.#closeQuietly();
      else {
        this.#whenIdle().then(() => {
          if (this.#state !== "closed") this.#closeQuietly();
        });
      }
      return;
    }
    if (type === MessageType.Error && message.sequence === 0) {
      const e = decodeError(message.payload);
      this.destroy(
        new ConnectionLostError(this, `node error ${e.code}: ${e.message}`, {
          cause: new RemoteError(e.code, e.message, e.retryable, this.#nodeId),
        }),
      );
      return;
    }
    const waiter = this.#inboxWaiters.shift();
    if (waiter) waiter(message);
    else this.#inbox.push(message);
  };

  #onRoutedMessage = (message: Message): void => {
    if (this.#state === "closed") return;
    try {
      this.#onMessage(message);
    } catch (error) {
      this.destroy(
        new ConnectionLostError(this, `protocol violation: ${String(error)}`, {
          cause: error,
        }),
      );
    }
  };

  #closeQuietly(): void {
    this.#finish(undefined);
    this.#channel.close();
  }

  #onChannelClose = (error?: Error): void => {
    if (this.#state === "closed") return;
    const reason = error
      ? error.message
      : this.#state === "closing"
      ? "closed by the node while draining"
      : "closed by the node";
    this.#finish(
      new ConnectionLostError(this, reason, { cause: error }),
    );
  };

  /** Moves to closed and fails everything pending exactly once. */
  #finish(error: Error | undefined): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#closeError = error;
    this.#deadlines.stop();
    this.#route?.close();
    // Only a frame still held back is known never to have left.
    const held = new Set(this.#queued.map((h) => h.pending));
    this.#queued = [];
    for (const p of this.#pending.values()) {
      this.#settle(p);
      p.sink.onError(this.#lostError(!held.has(p), error));
    }
    for (const w of this.#inboxWaiters.splice(0)) {
      w(this.#lostError(false, error));
    }
    for (const w of this.#drainWaiters.splice(0)) w();
    this.#resolveClosed(error);
  }

  #lostError(sent: boolean, cause = this.#closeError): ConnectionLostError {
    if (cause instanceof ConnectionLostError && cause.sent === sent) {
      return cause;
    }
    const reason = cause instanceof NodewireError
      ? cause.message
      : "the connection was closed";
    return new ConnectionLostError(this, reason, {
      cause,
      sent,
    });
  }

  #onDrained = (): void => {
    const queued = this.#queued;
    this.#queued = [];
    for (let i = 0; i < queued.length; i++) {
      const { pending: p, flags, payload } = queued[i];
      if (this.#pending.get(p.sequence) !== p || this.#state === "closed") {
        continue;
      }
      this.#writer.push(p.type, flags, p.sequence, payload);
      if (this.#writer.congested) {
        // Congested again: keep the rest, in order, for the next drain.
        this.#queued = queued.slice(i + 1).concat(this.#queued);
        return;
      }
    }
  };
}

const EMPTY = new Uint8Array(0);

/** The reply type for a request type: RESPONSE for REQUEST, PONG for PING. */
function replyTypeOf(type: number): number {
  return type === MessageType.Ping ? MessageType.Pong : MessageType.Response;
}
