/**
 * The shapes a connection's users see: per-request options, counters, the
 * receiver of one request's outcome, and the route requests may take
 * instead of the stream.
 *
 * @module
 */

/**
 * Options for a single request.
 *
 * @example
 * ```ts
 * import type { Connection } from "@nodewire/client/core";
 * declare const connection: Connection;
 * const reply = await connection.sendRequest(new Uint8Array([1, 104, 105]), {
 *   timeoutMs: 250, // this request only; the connection's default otherwise
 *   signal: AbortSignal.timeout(1000),
 *   idempotent: true,
 * });
 * console.log(reply.byteLength);
 * ```
 */
export interface RequestOptions {
  /** Overrides the connection's request timeout, in ms. */
  timeoutMs?: number;
  /** Cancels the request; a late reply is dropped. */
  signal?: AbortSignal;
  /** Marks the request safe to execute twice, so safe to retry after send. */
  idempotent?: boolean;
}

/**
 * Counters of one connection.
 *
 * @example
 * ```ts
 * import type { Connection } from "@nodewire/client/core";
 * declare const connection: Connection;
 * const { sent, received, dropped, timedOut } = connection.stats;
 * console.log(`${sent} sent, ${received} answered, ${timedOut} timed out, ${dropped} late replies dropped`);
 * ```
 */
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
 * the handshake chose it (UDP: `src/handshake/udp.ts`). The stream stays
 * the connection's control channel: handshake, GOODBYE, errors about the
 * whole connection.
 *
 * @example A route that loses everything (requests then time out)
 * ```ts
 * import type { RequestRoute } from "@nodewire/client/core";
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
  /**
   * Sends one REQUEST or PING. Loss shows up as the request's timeout. A
   * send that throws ends the connection with a `ConnectionLostError`
   * saying so, which the request, and every other in flight, fails with.
   */
  send(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void;
  /**
   * Takes back a REQUEST or PING it holds unsent (packed for a datagram
   * not yet out), whose request failed first (an abort, a timeout): true
   * when it will never be sent, which the request's error then says.
   * Optional: without it, every request handed over counts as sent.
   */
  withdraw?(sequence: number): boolean;
  /**
   * Releases the route; called once, when the connection closes. Returns
   * the sequence numbers of the requests it took but never sent (held for
   * a datagram not yet out), whose failures then say `sent: false`. A
   * close that throws is reported as uncaught, and the connection ends all
   * the same; then, or when it returns no `Set`, every request it took
   * counts as sent.
   */
  close(): ReadonlySet<number> | void;
}

/**
 * Receives the outcome of one request sent with
 * {@linkcode Connection.submitRequest}: exactly one of the two methods is
 * called, exactly once. Layers that already own a promise for the request
 * (the Client does) use this instead of a second promise per request.
 *
 * @example
 * ```ts
 * import type { ReplySink } from "@nodewire/client/core";
 * const sink: ReplySink = {
 *   onReply: (payload) => console.log(payload.byteLength),
 *   onError: (error) => console.error(error.message),
 * };
 * ```
 */
export interface ReplySink {
  /** The node's response payload (a view into the received bytes). */
  onReply(payload: Uint8Array, sequence?: number): void;
  /** Why the request failed: the same errors `sendRequest` rejects with. */
  onError(error: Error, sequence?: number): void;
  /**
   * True once the caller has its outcome from elsewhere (another attempt
   * of a hedged request answered). Read only for a frame held back by a
   * congested socket, when the socket drains: such a frame is then never
   * sent (its payload, which the caller may be reusing, is not read), and
   * the request fails with `AbortedError` ("not sent: the request had its
   * outcome"). Optional: without it, a held frame goes out once it can.
   */
  readonly done?: boolean;
  /**
   * The public method the request came through (`"Client.request"`),
   * named first in the message of an error refusing the request's
   * arguments, as that method's own checks name it. Read only when
   * refusing. Optional: without it (or when it is no string, or its
   * getter throws) the message names no method, and the refusal still
   * goes to `onError`; shown with control and format characters escaped,
   * and cut at 80 characters.
   */
  readonly method?: string;
}

/**
 * The one sink of a run sent with `Connection.submitBatch`: each outcome
 * comes with its request's sequence number.
 *
 * @example
 * ```ts
 * import type { BatchReplySink } from "@nodewire/client/core";
 * const replies: Uint8Array[] = [];
 * const sink: BatchReplySink = {
 *   first: 0,
 *   onReply: (payload, sequence) => replies[sequence! - sink.first] = payload,
 *   onError: (error) => console.error(error.message),
 * };
 * ```
 */
export interface BatchReplySink extends ReplySink {
  /** The run's first sequence number, set by the connection. */
  first: number;
}
