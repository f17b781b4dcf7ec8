/**
 * Opening a connection: the limit on connect plus handshake, and the HELLO
 * exchange. Runs once per connection, never on the request path.
 *
 * @module
 */

import { type Clock, holdTimer, systemClock } from "../clock.ts";
import { DEFAULT_TIMEOUT_MS } from "../config/defaults.ts";
import { onceTimer } from "../config/clock_failure.ts";
import {
  AbortedError,
  ConnectionError,
  ConnectTimeoutError,
  type Endpoint,
  formatAddress,
  ProtocolError,
  RemoteError,
} from "../errors.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  type Message,
  MessageType,
} from "../protocol/frame.ts";
import {
  decodeError,
  decodeHelloOk,
  encodeHello,
  type HelloOkPayload,
  PROTOCOL_FEATURES,
} from "../protocol/messages.ts";
import { foreignText, isInstance } from "../errors/base.ts";
import { toConnectionError } from "../runtime/errors.ts";
import type {
  ByteChannel,
  ConnectOptions,
  RuntimeAdapter,
  TlsOptions,
} from "../runtime/types.ts";
import { destroyQuietly } from "./closing.ts";

/**
 * What opening reads of the connection options (`ConnectionOptions`, whose
 * `handshake` takes a `Connection`: here the connection type is `C`).
 */
export interface OpenOptions<C> {
  /** Opens the socket. */
  adapter: RuntimeAdapter;
  /** Node host name or IP literal. */
  hostname: string;
  /** Node port. */
  port: number;
  /** Limit for connect plus handshake, in ms. */
  timeoutMs?: number;
  /** Clock for the limit. */
  clock?: Clock;
  /** Cancels opening. */
  signal?: AbortSignal;
  /** Runs after HELLO_OK: negotiation and authentication. */
  handshake?: (
    connection: C,
    hello: HelloOkPayload,
    signal: AbortSignal,
  ) => Promise<void>;
  /** TLS from the first byte. */
  tls?: Omit<TlsOptions, "signal">;
  /** The handshake will upgrade to TLS (a hint to the adapter). */
  startsTls?: boolean;
  /** Name sent in HELLO. Default `"nodewire"`. */
  clientName?: string;
  /** Largest payload the connection accepts, offered in HELLO. */
  maxFrameSize?: number;
}

/** What opening uses of the connection it builds (a `Connection`). */
export interface OpenedConnection {
  /** Sends HELLO. */
  sendMessage(type: number, payload: Uint8Array): number;
  /** Takes the node's answer. */
  receiveMessage(
    options: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<Message>;
  /** Ends it when opening fails. */
  destroy(error?: Error): void;
}

/**
 * Opens a connection: connects the socket, lets `create` build the
 * connection over it, exchanges HELLO on it (`greeted` takes the node's
 * HELLO_OK), and runs the handshake, all within `timeoutMs` and until
 * `signal` aborts. A failure destroys what was built and throws the
 * timeout or abort once either happened, whatever it broke.
 *
 * @throws {ConnectTimeoutError} when connect plus handshake take too long.
 * @throws {ConnectionError} when the node cannot be reached.
 * @throws {AbortedError} when `signal` aborts.
 * @throws {InvalidArgumentError} for a bad option, before any socket.
 */
export async function openConnection<C extends OpenedConnection>(
  options: OpenOptions<C>,
  create: (
    channel: ByteChannel,
    endpoint: Endpoint,
    clock: Clock,
    timeoutMs: number,
  ) => C,
  greeted: (connection: C, hello: HelloOkPayload) => void,
): Promise<C> {
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const endpoint = { hostname: options.hostname, port: options.port };
  const controller = new AbortController();
  // A custom clock whose setTimeout() throws fails the open, before any
  // socket, with the ConfigError naming it, not with its raw Error; one
  // whose clearTimeout() throws leaves a timer that, firing, finds the
  // open over (the adapter may still heed the signal it was given).
  const limit = onceTimer(
    clock,
    timeoutMs,
    () => controller.abort(new ConnectTimeoutError(endpoint, timeoutMs)),
  );
  // Held: an open is awaited, and an adapter whose connect holds no socket
  // (a custom one that never settles) left Node nothing else, so it ended
  // the program inside the await. A socket being opened holds the process
  // anyway, so this adds nothing there; it ends with the open.
  holdTimer(clock, limit.handle, true);
  const onAbort = () =>
    controller.abort(
      new AbortedError(
        `connecting to ${formatAddress(endpoint)} was aborted`,
        options.signal?.reason,
      ),
    );
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });
  let channel: ByteChannel | undefined;
  let connection: C | undefined;
  try {
    channel = await connectChannel(options.adapter, {
      ...endpoint,
      signal: controller.signal,
      tls: options.tls,
      startsTls: options.startsTls,
    });
    connection = create(channel, endpoint, clock, timeoutMs);
    const hello = await exchangeHello(connection, options, controller.signal);
    greeted(connection, hello);
    if (options.handshake) {
      await beforeAbort(
        options.handshake(connection, hello, controller.signal),
        controller.signal,
      );
    }
    if (controller.signal.aborted) throw controller.signal.reason;
    return connection;
  } catch (error) {
    const reason = controller.signal.aborted ? controller.signal.reason : error;
    // A channel the connection refused (a custom adapter's bad copyBelow)
    // is not the connection's to destroy: it never took it.
    const taken = connection ?? channel;
    if (taken !== undefined) destroyQuietly(taken, reason);
    throw reason;
  } finally {
    // A custom clock whose clearTimeout() throws: the open ends as it
    // would have. Let out, the throw replaced what it ended with: a
    // connection opened was never handed over nor destroyed (its socket
    // left open for good), a typed failure became the clock's raw Error,
    // and the caller's signal kept its listener.
    limit.cancel();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * The channel `adapter.connect` gives, unless `options.signal` aborts
 * first (or had): then its reason, and a channel that comes later is
 * destroyed. A custom adapter deaf to the signal cannot hold the opening
 * past its limit; one that fails with something other than an SDK error
 * (a raw socket error, a string, nothing) fails it with the SDK's error
 * for that (see toConnectionError), naming what it was.
 */
function connectChannel(
  adapter: RuntimeAdapter,
  options: ConnectOptions & { signal: AbortSignal },
): Promise<ByteChannel> {
  let attempt: Promise<ByteChannel>;
  try {
    attempt = Promise.resolve(adapter.connect(options));
  } catch (error) {
    attempt = Promise.reject(error);
  }
  return beforeAbort(
    attempt.catch((error: unknown) => {
      throw adapterError(error, options);
    }),
    options.signal,
    (late) => destroyQuietly(late, options.signal.reason),
  );
}

/**
 * A custom adapter's failure to connect as an SDK error: its own SDK
 * errors as they are, anything else mapped as a runtime's socket error
 * is (a refused port stays a ConnectionRefusedError).
 */
function adapterError(error: unknown, endpoint: Endpoint): Error {
  if (isInstance(error, Error)) {
    try {
      return toConnectionError(error as Error, endpoint, { phase: "connect" });
    } catch {
      // An Error whose fields cannot be read: quoted below.
    }
  }
  return new ConnectionError(
    "CONNECTION_FAILED",
    `connecting to ${formatAddress(endpoint)} failed: the runtime ` +
      `adapter's connect failed with ${foreignText(error)}, not an Error`,
    endpoint,
    { cause: error },
  );
}

/**
 * What `work` settles with, unless `signal` aborts first (or had): then
 * its reason. A handshake deaf to its signal (SCRAM's key derivation off
 * the event loop, a custom hook) cannot hold the opening past its limit,
 * nor its socket, which the caller destroys; what `work` does later is
 * ignored, except that a value it gives once the race is lost goes to
 * `discard` (a socket nobody would close otherwise).
 */
function beforeAbort<T>(
  work: T | Promise<T>,
  signal: AbortSignal,
  discard?: (late: T) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let lost = false;
    const onAbort = () => {
      lost = true;
      reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    // Kept or discarded in the turn the value comes, never later: an abort
    // in a turn between a check and the resolve would leave it unowned.
    Promise.resolve(work).then((value) => {
      if (lost) discard?.(value);
      else resolve(value);
    }, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * The HELLO exchange: sends HELLO on `connection` and reads the node's
 * answer. The wait has no timeout of its own: `signal`, the opening's,
 * bounds it.
 */
async function exchangeHello(
  connection: OpenedConnection,
  options: Pick<
    OpenOptions<never>,
    "hostname" | "port" | "clientName" | "maxFrameSize"
  >,
  signal: AbortSignal,
): Promise<HelloOkPayload> {
  const sent = connection.sendMessage(
    MessageType.Hello,
    helloPayload(
      options.clientName ?? "nodewire",
      // The connection's own default (its constructor's): what it accepts.
      options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    ),
  );
  const reply = await connection.receiveMessage({
    signal,
    timeoutMs: Infinity,
  });
  return readHelloOk(reply, sent, formatAddress(options));
}

/**
 * The HELLO payload: protocol version, client name, the largest payload
 * this client accepts, and every optional feature it implements (a node
 * agrees to those it has; "udp-batch" matters only if UDP is chosen).
 */
export function helloPayload(
  clientName: string,
  maxFrameSize: number,
): Uint8Array {
  return encodeHello({
    version: 1,
    client: clientName,
    maxFrameSize,
    features: PROTOCOL_FEATURES,
  });
}

/**
 * Reads the node's answer to HELLO (sent with sequence `sent`) from the
 * node at `address`.
 *
 * @throws {RemoteError} when the node answered with ERROR.
 * @throws {ProtocolError} for any other message, or a malformed HELLO_OK.
 */
export function readHelloOk(
  reply: Message,
  sent: number,
  address: string,
): HelloOkPayload {
  expectReply(reply, sent, MessageType.HelloOk, "HELLO_OK", undefined, address);
  return decodeHelloOk(reply.payload);
}

/**
 * Checks a node's answer to the control message sent with sequence
 * `sent`: it must be `type` (named `name`) with that sequence. An ERROR
 * with it is the node's own refusal, a {@linkcode RemoteError} that keeps
 * its code and text and names the node (`AuthFailed` becomes an
 * authentication failure);
 * anything else, or another sequence, breaks the protocol.
 *
 * @throws {RemoteError} for the node's ERROR.
 * @throws {ProtocolError} for another message type or sequence.
 */
export function expectReply(
  reply: Message,
  sent: number,
  type: number,
  name: string,
  nodeId?: string,
  address?: string,
): void {
  const { sequence } = reply;
  if (sequence === sent && reply.type === MessageType.Error) {
    const e = decodeError(reply.payload);
    throw new RemoteError(e.code, e.message, e.retryable, nodeId, address);
  }
  if (sequence !== sent || reply.type !== type) {
    throw new ProtocolError(
      `expected ${name} with sequence ${sent}, got message type 0x${
        reply.type.toString(16)
      } with sequence ${sequence}`,
    );
  }
}
