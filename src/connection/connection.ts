/**
 * One connection to one node: sequence-numbered messages, and many
 * requests in flight matched by sequence number. Here: the API, the
 * request path and the connection's state. Apart: the reading side and the
 * state the two share (core.ts), opening and the HELLO exchange (open.ts),
 * the control channel's checks (control.ts), the TLS switch (start_tls.ts),
 * how it ends (lifecycle.ts, closing.ts), the errors a request is refused
 * with before it is sent (refusals.ts), the checks at the doors of a batch
 * run (batch_door.ts), the control inbox (inbox.ts) and the in-flight
 * records (in_flight.ts).
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import { DEFAULT_TIMEOUT_MS } from "../config/defaults.ts";
import { isDuration } from "../config/validate.ts";
import { clockFailed, readClock } from "../config/clock_failure.ts";
import { type Endpoint, formatAddress } from "../errors.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  FrameFlags,
  type Message,
  MessageType,
} from "../protocol/frame.ts";
import type { HelloOkPayload } from "../protocol/messages.ts";
import type {
  ByteChannel,
  RuntimeAdapter,
  TlsOptions,
} from "../runtime/types.ts";
import { reportedAddress, reportedQueuedBytes } from "../runtime/contract.ts";
import { ConnectionCore } from "./core.ts";
import { type Pending, PromiseSink, SAFE_TO_REPEAT } from "./in_flight.ts";
import { ConnectionLifecycle, type ConnectionState } from "./lifecycle.ts";
import { openConnection } from "./open.ts";
import { receiveControl } from "./inbox.ts";
import {
  checkMessage,
  checkResume,
  readConnectOptions,
  readFrameFields,
  readReceiveOptions,
} from "./control.ts";
import { startTlsFor } from "./start_tls.ts";
import { invalidPayload, isPayload } from "./payload.ts";
import { lengthOf } from "../protocol/payload_length.ts";
import {
  abortedBeforeSent,
  badArgument,
  badOption,
  badTimeout,
  payloadTooLarge,
} from "./refusals.ts";
import type { PendingTable } from "./pending_table.ts";
import { cancelRun, runProblem, submitRun } from "./batch.ts";
import { notASink, sinkProblem } from "./sink_check.ts";
import {
  checkCancel,
  firstOf,
  readRunOptions,
  setFirst,
} from "./batch_door.ts";
import type {
  BatchReplySink,
  ConnectionStats,
  ReplySink,
  RequestOptions,
  RequestRoute,
} from "./types.ts";

/**
 * Options for {@linkcode Connection.connect}.
 *
 * @example
 * ```ts
 * import { Connection, type ConnectionOptions } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const options: ConnectionOptions = {
 *   adapter: await getAdapter(),
 *   hostname: "127.0.0.1",
 *   port: 7000,
 *   timeoutMs: 2000, // connect plus handshake
 *   requestTimeoutMs: 500,
 *   maxFrameSize: 1024 * 1024,
 *   clientName: "billing",
 * };
 * const connection = await Connection.connect(options);
 * await connection.close();
 * ```
 */
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
  /**
   * Set when `handshake` upgrades to verified TLS (the client does): a
   * hint for the adapter, see `ConnectOptions.startsTls`.
   */
  startsTls?: boolean;
}

let nextConnectionId = 1;

/**
 * A connection to one node. Many requests may be in flight at once; each
 * reply is matched to its request by sequence number, and a reply that
 * arrives after its request gave up is dropped, never handed to another.
 *
 * @example
 * ```ts
 * import { Connection } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
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

  // The stream, the requests in flight and the reading side (core.ts).
  readonly #core: ConnectionCore;
  // The core's table, one hop shorter for inFlight, which pools read on
  // every acquire.
  readonly #pending: PendingTable<Pending>;
  // Here, not in the lifecycle: the request path and pools read it on
  // every request.
  #state: ConnectionState = "open";
  // Closing, destroying and the errors that follow (lifecycle.ts).
  readonly #end: ConnectionLifecycle;
  #hello: HelloOkPayload | undefined;
  readonly #clock: Clock;
  readonly #requestTimeoutMs: number;
  /** What `connect` was given: bounds a `startTls` too. */
  readonly #connectTimeoutMs: number;
  #nextSequence = 1;
  #sendLimit: number;

  /** @internal Use {@linkcode Connection.connect}. */
  constructor(
    channel: ByteChannel,
    endpoint: Endpoint,
    options: {
      id?: number;
      clock?: Clock;
      requestTimeoutMs?: number;
      connectTimeoutMs?: number;
      maxFrameSize?: number;
    } = {},
  ) {
    this.id = options.id ?? nextConnectionId++;
    this.hostname = endpoint.hostname;
    this.port = endpoint.port;
    this.address = formatAddress(endpoint);
    this.#clock = options.clock ?? systemClock;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const core = new ConnectionCore(
      this,
      this.#clock,
      options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      () => this.#end.onGoodbye(),
    );
    this.#core = core;
    this.#pending = core.table;
    this.#sendLimit = core.codec.maxFrameSize;
    this.createdAt = this.#clock.now();
    this.#end = new ConnectionLifecycle(this, core, {
      get: () => this.#state,
      set: (state) => (this.#state = state),
    });
    this.closed = this.#end.closed;
    try {
      core.attach(channel, this.#end.onChannelClose);
    } catch (error) {
      // Refused, the channel is the opener's to destroy; one that kept
      // the receivers anyway (a custom adapter's) finds the connection
      // ended, with nothing to answer or shut down: it had no writer.
      this.#state = "closed";
      core.closed = true;
      throw error;
    }
  }

  /**
   * Opens a connection and completes the HELLO exchange and the handshake within
   * `timeoutMs`. On the system clock that limit keeps the process alive
   * while it runs, as awaited I/O does, even when the adapter's connect
   * holds no socket.
   *
   * @example
   * ```ts
   * import { Connection } from "@nodewire/client/core";
   * import { getAdapter } from "@nodewire/client/runtime";
   * const connection = await Connection.connect({
   *   adapter: await getAdapter(),
   *   hostname: "127.0.0.1",
   *   port: 7000,
   *   timeoutMs: 2000, // connect, HELLO and handshake together
   * });
   * await connection.close();
   * ```
   * @throws {ConnectTimeoutError} when connect plus handshake take too long.
   * @throws {ConnectionError} when the node cannot be reached.
   * @throws {AbortedError} when `signal` aborts.
   * @throws {InvalidArgumentError} for a bad option (before anything starts),
   *   such as a `tls.serverName` that is no DNS name of at most 253
   *   characters nor IP address (a NUL, a control character, a port).
   */
  static connect(options: ConnectionOptions): Promise<Connection> {
    let o: ConnectionOptions;
    try {
      o = readConnectOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return openConnection(
      o,
      (channel, endpoint, clock, timeoutMs) => {
        const connection = new Connection(channel, endpoint, {
          id: o.id,
          clock,
          requestTimeoutMs: o.requestTimeoutMs ?? timeoutMs,
          connectTimeoutMs: timeoutMs,
          maxFrameSize: o.maxFrameSize,
        });
        connection.#core.encrypted = o.tls !== undefined;
        return connection;
      },
      (connection, hello) => connection.#greeted(hello),
    );
  }

  /**
   * The node's own id, from its HELLO_OK (empty before it); where the node
   * listens is {@linkcode Connection.address}.
   */
  get nodeId(): string {
    return this.#core.nodeId;
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

  /**
   * Bytes queued but not yet handed to the operating system. Reading it
   * never throws: a custom adapter's channel whose count throws, or is no
   * count of bytes, adds nothing.
   */
  get bufferedAmount(): number {
    const core = this.#core;
    return reportedQueuedBytes(core.channel) + core.writer.pendingBytes;
  }

  /**
   * The node's IP address and port as the socket reports them; undefined
   * when it reports none, or nothing that can be read as an address (a
   * custom adapter's channel whose `remoteAddress` throws or is no
   * `{ hostname, port }`): reading it never throws.
   *
   * @example
   * ```ts
   * import type { Connection } from "@nodewire/client/core";
   * declare const connection: Connection;
   * const peer = connection.remoteAddress;
   * console.log(peer ? `${peer.hostname}:${peer.port}` : connection.address);
   * ```
   */
  get remoteAddress(): { hostname: string; port: number } | undefined {
    return reportedAddress(this.#core.channel);
  }

  /**
   * From now on sends requests and pings over `route` instead of the
   * stream, which stays the control channel. The returned function takes
   * the replies the route receives (RESPONSE, PONG, ERROR); they are
   * matched like replies on the stream, and an ERROR with sequence 0 ends
   * the connection. It returns false for a message it refused, which the
   * route drops on its own: one of another type, or one that breaks the
   * protocol (a reply of the wrong kind for its sequence, an ERROR that
   * does not decode); the request it names waits on. (On the stream such
   * a frame closes the connection: the bytes after it cannot be trusted.)
   * The route is closed with the connection. A route whose `send` throws
   * ends the connection with a `ConnectionLostError` saying so, which
   * every request in flight fails with, once. Used by the UDP transport
   * during the handshake.
   *
   * @throws {ConnectionClosedError} when the connection is already closed
   *   (the route is closed too).
   * @throws {InvalidArgumentError} for what is no route: no object, no
   *   `send`, `close` or `tooLarge` method, a `maxPayload` that is no
   *   integer of 0 or more, a `withdraw` that is no function (the
   *   connection goes on as it was).
   */
  routeRequests(route: RequestRoute): (message: Message) => boolean {
    return this.#end.route(route);
  }

  /** Whether the single deadline timer is armed (for leak checks). */
  get timerArmed(): boolean {
    return this.#core.deadlines.armed;
  }

  /** Whether the stream is TLS (upgraded, or connected with TLS). */
  get encrypted(): boolean {
    return this.#core.encrypted;
  }

  /**
   * Switches the open stream to TLS, client side: the last step of
   * negotiating TLS, after NEGOTIATE_OK was taken with `pauseReading`.
   * Resolves once the node's certificate is verified; the connection then
   * carries everything over TLS; a request sent while it switches waits
   * for the secure channel, and goes out on it (a `close()` meanwhile lets
   * the switch finish, so that such requests are answered before the
   * connection closes). A switch that fails ends
   * the connection itself, destroyed with the error the call fails with
   * (whatever the runtime adapter did with the socket): the requests that
   * waited for it fail with it, and no plaintext is ever sent again. A bad
   * option, or a refusal before the switch starts (the checks below), leaves
   * the connection as it was, except plaintext the node sent after it
   * agreed to switch: a protocol violation, which ends the connection. An upgrade that has not
   * finished within the connection's connect timeout (`timeoutMs` of
   * {@linkcode Connection.connect}), or by the time `options.signal`
   * aborts, is given up even when the runtime adapter does not heed the
   * signal: the connection is destroyed then, and the call fails. So is
   * one under way when the connection ends (`destroy()`, `close()`, its
   * stream closing): the call fails at once with the connection's
   * `ConnectionLostError`. The adapter is handed a signal of its own,
   * aborted whichever gives up, so that its handshake ends too. On the
   * system clock that limit keeps the process alive while it runs, as
   * awaited I/O does, even when the channel holds no socket.
   *
   * @throws {TlsError} for a certificate, name or handshake failure, or
   *   `"handshake-timeout"` when the connect timeout passed first.
   * @throws {ProtocolError} when plaintext arrived after the switch point
   *   (the connection is destroyed with it), requests are in flight, a
   *   request route is installed, or another `startTls` is under way, each
   *   saying which (the connection goes on).
   * @throws {ConnectionError} when the connection is closing
   *   (`ConnectionClosedError`, as a request then) or gone
   *   (`ConnectionLostError`), or its adapter has no TLS.
   * @throws {InvalidArgumentError} for a bad option (read once, before
   *   anything starts; the connection stays as it was), such as a
   *   `serverName` that is no DNS name of at most 253 characters nor IP
   *   address (a NUL, a control character, a port, brackets): checked
   *   here, so a custom adapter never sees it.
   * @example
   * ```ts
   * import type { Connection } from "@nodewire/client/core";
   * declare const connection: Connection; // NEGOTIATE_OK taken with pauseReading
   * try {
   *   await connection.startTls({ serverName: "db.example.com" });
   * } catch (error) {
   *   // The switch failed: the connection has ended with this error.
   *   console.error(connection.isOpen, error); // false, a TlsError
   *   throw error;
   * }
   * ```
   */
  startTls(options: TlsOptions): Promise<void> {
    return startTlsFor(
      this,
      this.#core,
      this.#end,
      options,
      this.#clock,
      this.#connectTimeoutMs,
    );
  }

  /**
   * Reads from the socket again after a `receiveMessage` with
   * `pauseReading` when no TLS switch followed. The frames kept since the
   * pause are acted on first, in arrival order, and only then is the
   * channel resumed (not at all when one of them ended the connection, or
   * a receive with `pauseReading` took one and paused again). Not while
   * {@linkcode Connection.startTls} is under way: the plaintext stream
   * carries the handshake then, and once the switch has settled the
   * secure stream is read without it (a failed switch ends the
   * connection).
   *
   * @throws {ProtocolError} while a TLS switch is under way (nothing is
   *   resumed).
   * @throws {ConnectionLostError} once closed, saying how it ended, as
   *   {@linkcode Connection.sendMessage} does (nothing is resumed).
   * @example
   * ```ts
   * import type { Connection } from "@nodewire/client/core";
   * declare const connection: Connection;
   * await connection.receiveMessage({ pauseReading: true }); // NEGOTIATE_OK
   * // The node chose plain TCP: no switch follows, so read on.
   * connection.resumeReading();
   * ```
   */
  resumeReading(): void {
    // Closed, as sendMessage() is: resumed, the dead channel was read again
    // and what was kept behind the pause point acted on.
    if (this.#state === "closed") throw this.#end.refusal();
    checkResume(this.#core);
    this.#core.resume();
  }

  /**
   * Sends one message. Uses the next sequence number unless `sequence` is
   * given (replies reuse the sequence of what they answer).
   *
   * @returns the sequence number used.
   * @throws {ConnectionLostError} once closed, saying how it ended (closed
   *   by this client or the node, destroyed, the stream broke).
   * @throws {ProtocolError} for a payload over the connection's
   *   `maxFrameSize` or the node's lower frame limit, naming which, or
   *   while {@linkcode Connection.startTls} is under way (the stream then
   *   carries the handshake: send once it has settled).
   * @throws {InvalidArgumentError} for a payload that is not a Uint8Array,
   *   an unknown type or flag, a sequence not in 0 to 2^53 - 1.
   * @example
   * ```ts
   * import type { Connection } from "@nodewire/client/core";
   * import { MessageType } from "@nodewire/client/protocol";
   * declare const connection: Connection; // after startTls() settled
   * const clientFirst = new TextEncoder().encode('{"mechanism":"SCRAM"}');
   * connection.sendMessage(MessageType.AuthStart, clientFirst);
   * const challenge = await connection.receiveMessage({ timeoutMs: 2000 });
   * ```
   */
  sendMessage(
    type: number,
    payload: Uint8Array,
    options?: { flags?: number; sequence?: number },
  ): number {
    const core = this.#core;
    const { flags, sequence: given } = readFrameFields(type, options);
    checkMessage(
      payload,
      // Closed: the error says how it ended (a channel closed at once, a
      // protocol violation), as a request's would.
      this.#state === "closed" ? () => this.#end.refusal() : undefined,
      core,
      this.#sendLimit,
    );
    const sequence = given ?? this.#nextSequence++;
    core.writer.push(type, flags ?? 0, sequence, payload);
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
   * Up to 64 such messages (1 MiB) are kept for later calls; a node that
   * sends more that nobody receives breaks the connection (ProtocolError).
   *
   * @throws {ConnectionLostError} when the connection closes first.
   * @throws {RequestTimeoutError} after `timeoutMs`.
   * @throws {AbortedError} when `signal` aborts.
   * @throws {InvalidArgumentError} for a bad option (`timeoutMs` may be
   *   `Infinity`: no limit).
   * @throws {ConfigError} naming `clock` when a custom clock's
   *   `setTimeout()` throws as the time limit is armed (nothing waits).
   */
  receiveMessage(
    options?: {
      timeoutMs?: number;
      signal?: AbortSignal;
      pauseReading?: boolean;
    },
  ): Promise<Message> {
    let o: NonNullable<typeof options>;
    try {
      o = readReceiveOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return receiveControl(
      this.#core,
      o,
      o.timeoutMs ?? this.#requestTimeoutMs,
      this.#clock,
      this.#state === "closed" ? () => this.#end.lostError(false) : undefined,
    );
  }

  /**
   * Sends a request and resolves with the node's response payload (a view
   * into the received bytes). A large `payload` is written as it is, not
   * copied: it must not be changed until the promise settles, nor after a
   * timeout or an abort once it was sent (its bytes may still be on their
   * way to the node).
   *
   * @throws {RequestTimeoutError} when no reply arrives in time.
   * @throws {RemoteError} when the node answers with an error.
   * @throws {ConnectionLostError} when the connection breaks first.
   * @throws {ConnectionClosedError} when the connection no longer takes work.
   * @throws {AbortedError} when `signal` aborts.
   * @throws {InvalidArgumentError} for a payload that is not a Uint8Array
   *   (refused before anything is queued).
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
   *
   * @throws {InvalidArgumentError} for a `sink` without an `onReply` and
   *   an `onError` method (undefined, a number, a function, an object
   *   lacking either) or whose methods cannot be read (a getter that
   *   throws, a revoked proxy): nothing is sent. Every other refusal goes
   *   to `sink.onError`.
   * @example
   * ```ts
   * import type { Connection, ReplySink } from "@nodewire/client/core";
   * declare const connection: Connection;
   * const sink: ReplySink = {
   *   onReply: (payload) => console.log(payload.byteLength),
   *   onError: (error) => console.error(error.message),
   * };
   * connection.submitRequest(new Uint8Array([1, 104, 105]), undefined, sink);
   * ```
   */
  submitRequest(
    payload: Uint8Array,
    options: RequestOptions | undefined,
    sink: ReplySink,
  ): void {
    // Two typeofs, as the Client's request path calls this per request:
    // an outcome is handed to the sink long after the call, where what is
    // no sink threw a raw TypeError, as uncaught; onError's is one more
    // read and compare on an object already in cache, where a sink
    // without it was taken and its failure thrown so. The reads in a
    // try, which costs nothing until it catches: a getter that throws or
    // a revoked proxy escaped raw from here (notASink reads again,
    // guarded).
    let onReply: unknown;
    let onError: unknown;
    try {
      onReply = sink?.onReply;
      onError = sink?.onError;
    } catch {
      onReply = undefined;
    }
    if (typeof onReply !== "function" || typeof onError !== "function") {
      throw notASink(sink);
    }
    if (!isPayload(payload)) return sink.onError(invalidPayload(payload));
    this.#call(MessageType.Request, payload, options, sink);
  }

  /**
   * Sends `payloads[from..to)` as consecutive requests, checked and encoded
   * in one go (a Client batch's chunk); `sink` takes each outcome with its
   * sequence number, the first being `sink.first`. No signal: see
   * {@linkcode Connection.cancelBatch}.
   *
   * A payload that is not a `Uint8Array` fails alone, through `sink`.
   *
   * @returns the error that refused the whole run, when nothing was sent:
   * an `InvalidArgumentError` for `payloads` that are no array or cannot
   * be read (a revoked proxy), a range outside them, a bad
   * `timeoutMs` or an `idempotent` that is not a boolean, a `sink` that
   * is no object with `onReply` and `onError` methods or whose
   * `first` cannot be set (frozen, a getter without a setter) or whose
   * setter submits another run, or the closed connection's error (also
   * when the sink's setter closed it).
   */
  submitBatch(
    payloads: readonly Uint8Array[],
    from: number,
    to: number,
    options: { timeoutMs?: number; idempotent?: boolean },
    sink: BatchReplySink,
  ): Error | undefined {
    const read = readRunOptions(options);
    if (read instanceof Error) return read;
    // Once per run: every outcome of the run goes to these two methods.
    const noSink = sinkProblem(
      sink,
      "submitBatch()",
      "a batch sink (a first to set, onReply and onError methods)",
    );
    if (noSink !== undefined) return noSink;
    const { timeoutMs, idempotent } = read;
    const problem = runProblem(payloads, from, to, timeoutMs);
    if (problem !== undefined) return problem;
    if (this.#state !== "open") return this.#end.refusal();
    const first = this.#nextSequence;
    const unset = setFirst(sink, first);
    if (unset !== undefined) return unset;
    // The sink's setter (or getter) is the caller's code: a run it
    // submitted took these same sequence numbers, a close it made left
    // nothing to send on.
    if (this.#state !== "open") return this.#end.refusal();
    if (this.#nextSequence !== first) {
      return badArgument(
        "sink",
        sink,
        "expected a sink whose first can be set without submitting another run",
      );
    }
    this.#nextSequence += to - from;
    const core = this.#core;
    const sent = submitRun(
      { core, route: core.route, sendLimit: this.#sendLimit },
      first,
      payloads,
      from,
      to,
      timeoutMs ?? this.#requestTimeoutMs,
      idempotent === true,
      sink,
    );
    // Added once the run is sent, not read before it: a write from inside
    // the run (a part) may hand a reply back at once, whose sink sends and
    // counts a request of its own meanwhile.
    this.stats.sent += sent;
    return undefined;
  }

  /**
   * Fails with `error` what is still in flight of a `submitBatch` run of
   * `count` requests to `sink`: a late reply to one of them is dropped,
   * and a frame not yet written is taken back. Called while that run is
   * still being sent (from a sink's callback, when a custom channel hands
   * a reply back from inside a write), it fails the requests the run adds
   * after it too, once the run is sent; those a write of the run carried
   * meanwhile may have reached the node, as a request in flight may have.
   *
   * @example
   * ```ts
   * import type { BatchReplySink, Connection } from "@nodewire/client/core";
   * declare const connection: Connection;
   * declare const payloads: Uint8Array[];
   * const sink: BatchReplySink = {
   *   first: 0,
   *   onReply: (payload, sequence) => console.log(sequence, payload),
   *   onError: (error, sequence) => console.log(sequence, error.message),
   * };
   * const refused = connection.submitBatch(payloads, 0, payloads.length, {}, sink);
   * if (refused !== undefined) throw refused;
   * // Giving up: every item not answered yet fails with this error.
   * connection.cancelBatch(sink, payloads.length, new Error("gave up"));
   * ```
   * @throws {InvalidArgumentError} for a `count` that is no integer of 0
   *   or more, an `error` that is no Error, or a `sink` that is no object
   *   or whose `first` cannot be read (nothing is cancelled).
   */
  cancelBatch(sink: BatchReplySink, count: number, error: Error): void {
    checkCancel(count, error);
    const first = firstOf(sink);
    // No further than the sequences handed out: a larger count would
    // only look up numbers never sent, for as long as it says.
    cancelRun(this.#core, sink, first, count, error, this.#nextSequence);
  }

  /**
   * Sends a ping and resolves with the round trip time in milliseconds.
   *
   * @throws the same errors as {@linkcode Connection.sendRequest}.
   * @throws {ConfigError} naming `clock`, what it threw as cause, when a
   *   custom clock's `now()` throws as the ping reads it (never its raw
   *   error: a health check tells the clock's failure from the node's by
   *   it).
   * @example
   * ```ts
   * import type { Connection } from "@nodewire/client/core";
   * declare const connection: Connection;
   * const ms = await connection.ping({ timeoutMs: 1000 });
   * console.log(`round trip: ${ms} ms`);
   * ```
   */
  async ping(options?: RequestOptions): Promise<number> {
    const clock = this.#clock;
    const start = readClock(clock);
    await new Promise((resolve, reject) => {
      try {
        this.#call(MessageType.Ping, EMPTY, options, new PromiseSink(resolve));
      } catch (thrown) {
        // All that #call reads of the caller's and lets throw is the clock
        // (the deadline; every other refusal goes to the sink): named
        // here, so a health check tells it from a custom connection's own
        // failure.
        reject(clockFailed(clock, thrown));
      }
    });
    return readClock(clock) - start;
  }

  /**
   * Closes gracefully: stops taking requests, lets those in flight finish
   * (each is bounded by its own timeout), says GOODBYE and closes the
   * socket. Resolves when the socket is closed. Idempotent. During a
   * `startTls` it closes without GOODBYE (the stream carries the
   * handshake), and the switch fails with `ConnectionLostError`. Called
   * from a sink while a large payload's header is being written (a custom
   * channel that hands a reply back from inside its write), it lets that
   * payload follow its header before the GOODBYE.
   *
   * @example
   * ```ts
   * import type { Connection } from "@nodewire/client/core";
   * declare const connection: Connection;
   * await connection.close();
   * console.log(connection.isOpen); // false
   * ```
   */
  close(): Promise<void> {
    return this.#end.close();
  }

  /**
   * Closes at once. Pending requests fail with a retryable
   * {@linkcode ConnectionLostError} carrying `error` as cause.
   */
  destroy(error?: Error): void {
    this.#end.destroy(error);
  }

  /** What the node told of itself in HELLO_OK (see open.ts). */
  #greeted(hello: HelloOkPayload): void {
    this.#hello = hello;
    this.#core.nodeId = hello.nodeId;
    this.#sendLimit = Math.min(this.#sendLimit, hello.maxFrameSize);
    this.#core.peerMaxFrameSize = this.#sendLimit;
  }

  #call(
    type: number,
    payload: Uint8Array,
    options: RequestOptions | undefined,
    sink: ReplySink,
  ): void {
    if (this.#state !== "open") return sink.onError(this.#end.refusal());
    const length = lengthOf(payload); // its real one: see codec.ts
    if (length > this.#sendLimit) {
      return sink.onError(
        payloadTooLarge(
          length,
          this.#sendLimit,
          this.#core.codec.maxFrameSize,
          sink,
        ),
      );
    }
    const core = this.#core;
    const route = core.route;
    if (route !== undefined && length > route.maxPayload) {
      return sink.onError(route.tooLarge(length));
    }
    // Each option is read once, and checked here, before anything is
    // recorded: a value that changed since an earlier check (a getter) or
    // one given straight to a Connection is refused, not half-applied.
    let signal: AbortSignal | undefined;
    let timeoutMs: number | undefined;
    let idempotent: boolean | undefined;
    if (options !== undefined) {
      if (typeof options !== "object" || options === null) {
        return sink.onError(
          badOption("", options, "expected an object of options"),
        );
      }
      try {
        ({ signal, timeoutMs, idempotent } = options);
      } catch (cause) {
        return sink.onError(
          badOption("", options, "could not be read", cause),
        );
      }
      if (idempotent !== undefined && typeof idempotent !== "boolean") {
        return sink.onError(
          badOption(".idempotent", idempotent, "expected true or false"),
        );
      }
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      return sink.onError(
        badOption(".signal", signal, "expected an AbortSignal"),
      );
    }
    if (signal?.aborted) return sink.onError(abortedBeforeSent(signal));
    // Only undefined means the default: null is refused.
    if (timeoutMs === undefined) timeoutMs = this.#requestTimeoutMs;
    if (!isDuration(timeoutMs)) return sink.onError(badTimeout(timeoutMs));
    // A ping is always safe to repeat; a request when marked idempotent.
    const flags = idempotent === true && type === MessageType.Request
      ? FrameFlags.Idempotent
      : 0;
    const sequence = this.#nextSequence++;
    const pending: Pending = {
      sequence,
      type: flags !== 0 || type === MessageType.Ping
        ? type | SAFE_TO_REPEAT
        : type,
      sink,
      abort: undefined,
      deadline: 0,
      timeoutMs: 0,
    };
    // The deadline first: it reads the clock, and a custom clock whose
    // now() throws must leave nothing behind (a request in the table that
    // never settles holds close() for good).
    core.deadlines.add(pending, timeoutMs);
    this.#pending.add(pending);
    if (signal) core.listenForAbort(pending, signal);
    if (route !== undefined) {
      try {
        route.send(type, flags, sequence, payload);
      } catch (thrown) {
        // The request fails with the connection, once (see routeThrew).
        return core.routeThrew(thrown);
      }
    } else {
      const writer = core.writer;
      if (writer.congested) {
        // Keep the frame out of the socket's queue until it drains, so a
        // slow reader cannot make the send buffer grow without bound.
        core.queued.push({ pending, flags, payload });
      } else {
        writer.push(type, flags, sequence, payload, length);
      }
    }
    this.stats.sent++;
  }
}

const EMPTY = new Uint8Array(0);
