/**
 * One connection to one node: the hello handshake, sequence-numbered
 * messages, and many requests in flight matched by sequence number.
 *
 * @module
 */

import { type Clock, systemClock } from "./clock.ts";
import { DEFAULT_MAX_FRAME_SIZE, DEFAULT_TIMEOUT_MS } from "./config.ts";
import { type DeadlineEntry, DeadlineTracker } from "./deadlines.ts";
import {
  AbortedError,
  ConnectionClosedError,
  ConnectionLostError,
  ConnectTimeoutError,
  type Endpoint,
  formatAddress,
  NodewireError,
  ProtocolError,
  RemoteError,
  RequestTimeoutError,
} from "./errors.ts";
import { MessageCodec } from "./protocol/codec.ts";
import { FrameWriter } from "./protocol/frame_writer.ts";
import { FrameFlags, type Message, MessageType } from "./protocol/frame.ts";
import {
  decodeError,
  decodeHelloOk,
  encodeJson,
  type HelloOkPayload,
} from "./protocol/messages.ts";
import type { ByteChannel, RuntimeAdapter } from "./runtime/types.ts";

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

interface Pending extends DeadlineEntry {
  sequence: number;
  expect: number;
  timeoutMs: number;
  resolve: (payload: Uint8Array) => void;
  reject: (error: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  // Frame not yet written because the socket was congested.
  queued: Uint8Array | undefined;
  flags: number;
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
  readonly #channel: ByteChannel;
  readonly #codec: MessageCodec;
  readonly #clock: Clock;
  readonly #requestTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
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

  readonly #writer: FrameWriter;
  // Requests held back while the socket is congested.
  #queued: Pending[] = [];

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
      });
      connection = new Connection(channel, endpoint, {
        id: options.id,
        clock,
        requestTimeoutMs: options.requestTimeoutMs ?? timeoutMs,
        maxFrameSize: options.maxFrameSize,
      });
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

  /** Whether the single deadline timer is armed (for leak checks). */
  get timerArmed(): boolean {
    return this.#deadlines.armed;
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
   * @throws {ConnectionLostError} when the connection closes first.
   * @throws {RequestTimeoutError} after `timeoutMs`.
   * @throws {AbortedError} when `signal` aborts.
   */
  receiveMessage(
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Message> {
    const next = this.#inbox.shift();
    if (next) return Promise.resolve(next);
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
        if (message instanceof Error) reject(message);
        else resolve(message);
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
    return this.#call(
      MessageType.Request,
      MessageType.Response,
      payload,
      options?.idempotent ? FrameFlags.Idempotent : 0,
      options,
    );
  }

  /**
   * Sends a ping and resolves with the round trip time in milliseconds.
   *
   * @throws the same errors as {@linkcode Connection.sendRequest}.
   */
  async ping(options?: RequestOptions): Promise<number> {
    const start = this.#clock.now();
    await this.#call(
      MessageType.Ping,
      MessageType.Pong,
      EMPTY,
      0,
      options,
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
    expect: number,
    payload: Uint8Array,
    flags: number,
    options: RequestOptions | undefined,
  ): Promise<Uint8Array> {
    if (this.#state !== "open") {
      return Promise.reject(
        this.#state === "closed"
          ? this.#lostError(false)
          : new ConnectionClosedError(this),
      );
    }
    if (payload.byteLength > this.#sendLimit) {
      return Promise.reject(
        new ProtocolError(
          `request payload of ${payload.byteLength} bytes exceeds the limit of ${this.#sendLimit}`,
        ),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      return Promise.reject(
        new AbortedError("request aborted before it was sent", signal.reason),
      );
    }
    const sequence = this.#nextSequence++;
    const timeoutMs = options?.timeoutMs ?? this.#requestTimeoutMs;
    return new Promise<Uint8Array>((resolve, reject) => {
      const pending: Pending = {
        sequence,
        expect,
        timeoutMs,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        queued: undefined,
        flags,
        deadline: 0,
        prev: undefined,
        next: undefined,
        list: undefined,
      };
      this.#pending.set(sequence, pending);
      this.#deadlines.add(pending, timeoutMs);
      if (signal) {
        pending.onAbort = () => {
          if (this.#settle(pending)) {
            reject(new AbortedError("request aborted", signal.reason));
          }
        };
        signal.addEventListener("abort", pending.onAbort, { once: true });
      }
      if (this.#writer.congested) {
        // Keep the frame out of the socket's queue until it drains, so a
        // slow reader cannot make the send buffer grow without bound.
        pending.queued = payload;
        this.#queued.push(pending);
      } else {
        this.#writer.push(type, flags, sequence, payload);
      }
      this.stats.sent++;
    });
  }

  /** Removes a pending entry; false when it had already settled. */
  #settle(pending: Pending): boolean {
    if (this.#pending.get(pending.sequence) !== pending) return false;
    this.#pending.delete(pending.sequence);
    this.#deadlines.remove(pending);
    if (pending.onAbort) {
      pending.signal!.removeEventListener("abort", pending.onAbort);
    }
    if (this.#pending.size === 0 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
    return true;
  }

  #expire = (pending: Pending): void => {
    // The tracker already unlinked it; drop it from the map.
    if (this.#pending.get(pending.sequence) !== pending) return;
    pending.list = undefined;
    this.#settle(pending);
    this.stats.timedOut++;
    pending.reject(new RequestTimeoutError(this.address, pending.timeoutMs));
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
    const type = message.type;
    if (
      type === MessageType.Response || type === MessageType.Pong ||
      (type === MessageType.Error && message.sequence !== 0)
    ) {
      const pending = this.#pending.get(message.sequence);
      if (pending === undefined) {
        // Late (after a timeout or abort), duplicate or unknown: drop it.
        this.stats.dropped++;
        return;
      }
      if (type === MessageType.Error) {
        const e = decodeError(message.payload);
        this.#settle(pending);
        this.stats.received++;
        pending.reject(
          new RemoteError(e.code, e.message, e.retryable, this.#nodeId),
        );
        return;
      }
      if (type !== pending.expect) {
        throw new ProtocolError(
          `sequence ${message.sequence} answered with type 0x${
            type.toString(16)
          }`,
        );
      }
      this.#settle(pending);
      this.stats.received++;
      pending.resolve(message.payload);
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
    const pending = [...this.#pending.values()];
    for (const p of pending) {
      this.#settle(p);
      p.reject(this.#lostError(p.queued === undefined, error));
    }
    this.#queued = [];
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
      const p = queued[i];
      if (this.#pending.get(p.sequence) !== p || this.#state === "closed") {
        continue;
      }
      const type = p.expect === MessageType.Pong
        ? MessageType.Ping
        : MessageType.Request;
      this.#writer.push(type, p.flags, p.sequence, p.queued!);
      p.queued = undefined;
      if (this.#writer.congested) {
        // Congested again: keep the rest, in order, for the next drain.
        this.#queued = queued.slice(i + 1).concat(this.#queued);
        return;
      }
    }
  };
}

const EMPTY = new Uint8Array(0);
