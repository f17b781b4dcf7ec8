/**
 * `Client.requestMany`: many requests, one call, one promise. The first
 * attempt of every item goes out by chunk: a run of consecutive items to
 * one node (one balancer pick, its in-flight count raised by the chunk's
 * size) on one connection, their frames encoded in one go, their replies
 * landing in the batch's one record through the chunk's sink, indexed by
 * sequence number. No promise, closure or per-request record is made for
 * an item that succeeds at once; an item whose first attempt fails
 * carries on as a single request on the request path (retried there by the
 * usual rules, on another node when it can) and lands in the same record.
 *
 * Chunks: at most {@linkcode CHUNK_ITEMS} items and about
 * {@linkcode CHUNK_BYTES} of payload each, so a large batch is spread by
 * the balancer over nodes (and by each pool over its connections) chunk
 * by chunk, and no single connection takes a whole large batch.
 *
 * @module
 */

import type { ResolvedConfig } from "../config/shapes.ts";
import type { Connection } from "../connection/connection.ts";
import type { BatchReplySink } from "../connection/types.ts";
import type { Resolve } from "../connection/resolve_only.ts";
import type { ConnectionManager } from "../cluster/manager.ts";
import type { ManagedNode } from "../cluster/node.ts";
import {
  AbortedError,
  InvalidArgumentError,
  type NodewireError,
} from "../errors.ts";
import { abortedBeforeSent } from "../connection/refusals.ts";
import { channels, requestObserved } from "../diagnostics/channels.ts";
import type { ClientRequestOptions, RequestPath } from "./request_path.ts";
import { BatchItemCall } from "./request_call.ts";
import { mayHedge } from "./hedging.ts";
import { acquireWithin } from "./waits.ts";
import {
  blameClock,
  isClockFailure,
  readClock,
} from "../config/clock_failure.ts";
import { asError } from "../errors/base.ts";

/**
 * One request's outcome in `Client.requestMany`: its reply, or the error
 * `Client.request` would have thrown for it.
 *
 * @example
 * ```ts
 * import type { BatchResult } from "@nodewire/client/core";
 * const value = (r: BatchResult) => r.ok ? r.value : undefined;
 * ```
 */
export type BatchResult =
  | { readonly ok: true; readonly value: Uint8Array }
  | { readonly ok: false; readonly error: NodewireError };

/**
 * Made with `new`, not literals: Deno's V8 pretenures a literal whose
 * objects live on (results do, until the batch settles), 0.23 µs an item.
 */
class ReplyResult {
  readonly ok = true as const;
  constructor(readonly value: Uint8Array) {}
}

/** A failed item's result (see {@linkcode ReplyResult}). */
class ErrorResult {
  readonly ok = false as const;
  constructor(readonly error: NodewireError) {}
}

/**
 * Most items in one chunk. Enough that a chunk's bookkeeping (a balancer
 * pick, a connection, one sink) is shared by many requests; few enough
 * that a batch of thousands spreads over nodes and connections.
 */
export const CHUNK_ITEMS = 256;

/**
 * A chunk ends once its payloads reach this many bytes (the frame
 * writer's largest slab), so a batch of large payloads is spread too.
 */
export const CHUNK_BYTES = 64 * 1024;

/** What a batch works with: the client's request path, nodes and config. */
export interface BatchHost {
  /** The client's request path (counters, retries). */
  readonly path: RequestPath;
  /** The nodes and their pools. */
  readonly manager: ConnectionManager;
  /** The client's configuration. */
  readonly config: ResolvedConfig;
}

/**
 * Sends every payload and resolves with one result per payload, in
 * order, once all have settled. Never rejects: each item's failure is its
 * result. `payloads` is the caller's array already checked and copied.
 */
export function runBatch(
  host: BatchHost,
  payloads: Uint8Array[],
  options: ClientRequestOptions,
): Promise<BatchResult[]> {
  if (payloads.length === 0) return Promise.resolve([]);
  return new Promise((resolve) =>
    new Batch(host, payloads, options, resolve).start()
  );
}

/** `count` results that all failed with `error`, for a batch never started. */
export function failedBatch(count: number, error: unknown): BatchResult[] {
  const result: BatchResult = new ErrorResult(error as NodewireError);
  return new Array<BatchResult>(count).fill(result);
}

/** One call of `requestMany`: its results and what is left to settle. */
class Batch {
  readonly results: BatchResult[];
  /** Items not settled yet. */
  left: number;
  /** The chunks sent, for an abort to cancel (only kept with a signal). */
  readonly chunks: Chunk[] = [];
  #onAbort: (() => void) | undefined;

  constructor(
    readonly host: BatchHost,
    readonly payloads: Uint8Array[],
    readonly options: ClientRequestOptions,
    readonly resolve: (results: BatchResult[]) => void,
  ) {
    this.results = new Array<BatchResult>(payloads.length);
    this.left = payloads.length;
  }

  start(): void {
    const { path, manager, config } = this.host;
    const payloads = this.payloads;
    const n = payloads.length;
    const options = this.options;
    if (bySingles(options, config)) return this.#bySingles();
    path.batchStarted(n);
    const signal = options.signal;
    if (signal?.aborted) {
      return this.#refuse(0, abortedBeforeSent(signal));
    }
    if (signal !== undefined) {
      this.#onAbort = () => this.#abort(signal);
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    const timed = manager.timesRequests;
    const clock = config.clock;
    for (let from = 0; from < n;) {
      let node: ManagedNode;
      let to: number;
      try {
        node = manager.pickNode();
        to = chunkEnd(payloads, from);
      } catch (error) {
        // No healthy node: fail fast, like a single request. Or a payload
        // that cannot be read: the items not handed out fail with it.
        return this.#refuse(from, error);
      }
      const chunk = new Chunk(this, node, from, to);
      if (signal !== undefined) this.chunks.push(chunk);
      node.inFlight += to - from;
      from = to;
      // The try costs nothing until it catches: only a custom clock whose
      // now() throws (read here and by the pool's look) gets there. Let
      // out, it rejected the batch, which never rejects, with the clock's
      // raw Error, and left the node charged with the chunk's items.
      try {
        if (timed) chunk.sentAt = readClock(clock);
        const connection = node.pool.tryAcquireShared();
        if (connection !== undefined) {
          if (channels.poolCheckout.hasSubscribers) {
            path.diagnostics.checkedOut(
              undefined,
              node.address,
              connection.id,
              0,
            );
          }
          chunk.send(connection, options.timeoutMs);
        } else {
          void chunk.waitThenSend();
        }
      } catch (error) {
        chunk.failAll(asError(blameClock(clock, error)));
      }
    }
  }

  /**
   * Hedged, or someone follows every request on the diagnostics channels:
   * each item is a request of its own, whole.
   */
  #bySingles(): void {
    const { path } = this.host;
    this.payloads.forEach((payload, i) => {
      path.requestItem(payload, this.options).then(
        (value) => this.settle(i, new ReplyResult(value)),
        (error) => this.settle(i, new ErrorResult(error)),
      );
    });
  }

  /**
   * Item `index`'s first attempt failed: from here it is a single request,
   * retried or ended by the usual rules, whose outcome lands in the batch.
   */
  failed(chunk: Chunk, index: number, error: Error): void {
    const path = this.host.path;
    const call = new BatchItemCall(path, this.payloads[index], this.options);
    call.resolve = this.#resolver(index);
    call.node = chunk.node;
    call.outstanding = 1;
    call.sentAt = chunk.sentAt;
    path.failed(call, chunk.node, error, chunk.sentAt, undefined);
  }

  /** Item `index` has its result. */
  settle(index: number, result: BatchResult): void {
    this.results[index] = result;
    if (--this.left === 0) this.#finish();
  }

  /** Where the single request that item `index` became settles. */
  #resolver(index: number): Resolve<Uint8Array> {
    return (value) => {
      if (value instanceof Uint8Array) {
        this.settle(index, new ReplyResult(value));
      } else {
        // The path fails a request with a thenable that rejects at once
        // (resolve_only.ts).
        value.then(undefined, (error: unknown) => {
          this.settle(index, new ErrorResult(error as NodewireError));
        });
      }
    };
  }

  /**
   * Items `from` on made no attempt (no healthy node, an aborted signal):
   * they fail with `error`, as a request would.
   */
  #refuse(from: number, error: unknown): void {
    const path = this.host.path;
    const count = this.payloads.length - from;
    const result = new ErrorResult(path.final(error) as NodewireError);
    path.failedCount += count;
    if (count > 0) path.settle(count);
    for (let i = from; i < this.payloads.length; i++) this.settle(i, result);
  }

  /**
   * The signal aborted: every first attempt still in flight fails with an
   * AbortedError, and so each item (see `RequestPath.failed`); chunks
   * waiting for a connection and items being retried hear the signal
   * themselves.
   */
  #abort(signal: AbortSignal): void {
    const error = new AbortedError("request aborted", signal.reason);
    for (const chunk of this.chunks) {
      chunk.connection?.cancelBatch(chunk, chunk.to - chunk.from, error);
    }
  }

  #finish(): void {
    if (this.#onAbort !== undefined) {
      this.options.signal!.removeEventListener("abort", this.#onAbort);
    }
    this.resolve(this.results);
  }
}

/**
 * Items `from` to `to - 1` of a batch, sent to one node on one
 * connection: the sink of all their first attempts.
 */
class Chunk implements BatchReplySink {
  /** The first item's sequence number, set by the connection. */
  first = 0;
  /** When the chunk was sent; read only when attempts are timed. */
  sentAt = 0;
  /** The connection it went out on, once it has one. */
  connection: Connection | undefined = undefined;
  /** Items whose first attempt has reported (a reply or an error). */
  reported = 0;
  /** Replies not booked yet: they are booked together (see `#book`). */
  unbooked = 0;
  /** Books the replies of one read, in a microtask; made on first use. */
  #flush: (() => void) | undefined = undefined;
  /** While a throw is cleaned up: which items the connection cancelled. */
  #cancelled: Uint8Array | undefined = undefined;

  constructor(
    readonly batch: Batch,
    readonly node: ManagedNode,
    readonly from: number,
    readonly to: number,
  ) {}

  onReply(payload: Uint8Array, sequence: number): void {
    const batch = this.batch;
    if (batch.host.path.timed) this.#booked(1);
    else if (this.unbooked++ === 0) {
      // Booked once this read is delivered: a slow item must not hold
      // the items already answered in flight (least-in-flight, stats).
      queueMicrotask(this.#flush ??= () => this.#book());
    }
    if (++this.reported === this.to - this.from) this.#book();
    batch.settle(this.from + sequence - this.first, new ReplyResult(payload));
  }

  /** Named in a connection's refusal of an item (see ReplySink.method). */
  get method(): string {
    return "Client.requestMany";
  }

  onError(error: Error, sequence: number): void {
    this.reported++;
    if (this.#cancelled !== undefined) {
      this.#cancelled[sequence - this.first] = 1;
    }
    // The replies that came before it first: a reply between two node
    // failures ends their run, as it did when each was booked on arrival
    // (outlier ejection counts failures in a row).
    if (this.unbooked > 0) this.#book();
    this.batch.failed(this, this.from + sequence - this.first, error);
  }

  /**
   * The replies of one read (or every item has reported): booked in one go
   * (the node's in-flight count, its health, the client's counters)
   * instead of one by one, which a chunk's replies, arriving in a read or
   * two, barely notice. A failure is booked at once, as it carries on as a
   * request, after the replies that came before it.
   */
  #book(): void {
    const count = this.unbooked;
    this.unbooked = 0;
    if (count > 0) this.#booked(count);
  }

  /**
   * `count` first attempts got their replies: booked as requests are (the
   * node's in-flight count and health, the client's counters), together
   * unless attempts are timed (then one by one, each with its latency).
   */
  #booked(count: number): void {
    const { path, manager, config } = this.batch.host;
    const node = this.node;
    node.inFlight -= count;
    node.health.recordRequestSuccess(count);
    if (path.timed) {
      // A custom clock that throws here kept the items their replies for
      // good, as it did a request's (see RequestPath.succeeded); the try
      // costs nothing until it catches.
      try {
        manager.recordLatency(node, this.sentAt, config.clock.now());
      } catch (thrown) {
        path.samplesLost(thrown);
      }
    }
    path.succeededCount += count;
    path.settle(count);
  }

  /**
   * Sends the chunk's items on `connection`, each attempt within
   * `timeoutMs`; none when the signal has aborted since the batch started
   * (while the chunk waited for its connection, or in a listener run while
   * the batch was handed out): `#abort` only cancels chunks already sent.
   */
  send(connection: Connection, timeoutMs: number | undefined): void {
    const batch = this.batch;
    const signal = batch.options.signal;
    if (signal?.aborted) return this.failAll(abortedBeforeSent(signal));
    this.connection = connection;
    let refused: Error | undefined;
    try {
      refused = connection.submitBatch(batch.payloads, this.from, this.to, {
        timeoutMs,
        idempotent: batch.options.idempotent,
      }, this);
    } catch (error) {
      return this.#thrown(connection, error);
    }
    if (refused !== undefined) this.failAll(refused);
  }

  /**
   * Sending threw part way. Sending reads no payload getter (see
   * `lengthOf`), and a route whose `send` throws ends its connection
   * instead (see Connection.routeRequests), so only a bug below gets
   * here. What went into the connection's table is cancelled, the rest
   * fails here: every item once, with the same error.
   */
  #thrown(connection: Connection, cause: unknown): void {
    // A custom clock whose now() throws (sending reads it for the items'
    // deadlines) is named, not the payloads.
    // That error comes named already when the clock threw where it is
    // read (the connection's deadline reading).
    const blamed = blameClock(this.batch.host.config.clock, cause);
    const error = isClockFailure(blamed) ? blamed : new InvalidArgumentError(
      "payloads",
      undefined,
      "the batch could not be sent: sending it threw (see cause)",
      { method: "Client.requestMany", cause },
    );
    const count = this.to - this.from;
    const cancelled = this.#cancelled = new Uint8Array(count);
    connection.cancelBatch(this, count, error);
    this.#cancelled = undefined;
    for (let k = 0; k < count; k++) {
      if (cancelled[k] === 0) this.batch.failed(this, this.from + k, error);
    }
  }

  /**
   * No connection ready: waits for one. `timeoutMs` bounds the wait and
   * the replies together, as for a single request.
   */
  async waitThenSend(): Promise<void> {
    const batch = this.batch;
    const { config, path } = batch.host;
    let waited;
    try {
      waited = await acquireWithin(
        config,
        path.diagnostics,
        this.node,
        batch.options,
        undefined,
      );
    } catch (error) {
      // The wait reads the clock: a custom one whose now() throws made
      // this an unhandled rejection, the items never settled and their
      // node stayed charged.
      return this.failAll(asError(blameClock(config.clock, error)));
    }
    if (waited instanceof Error) return this.failAll(waited);
    this.send(waited.connection, waited.leftMs);
  }

  /** Every item of the chunk failed its first attempt with `error`. */
  failAll(error: Error): void {
    for (let i = this.from; i < this.to; i++) this.batch.failed(this, i, error);
  }
}

/**
 * Whether a batch's items are sent as single requests: when they are
 * hedged (by the rule of `RequestPath.request`) or observed.
 */
function bySingles(
  options: ClientRequestOptions,
  config: ResolvedConfig,
): boolean {
  return mayHedge(options, config.hedging !== undefined) || requestObserved();
}

/**
 * Where the chunk starting at item `from` ends (exclusive).
 *
 * @throws {InvalidArgumentError} naming an item whose `length` throws: the
 *   door read it once, and a getter may answer differently later.
 */
function chunkEnd(payloads: readonly Uint8Array[], from: number): number {
  const last = Math.min(payloads.length, from + CHUNK_ITEMS);
  let bytes = 0;
  let i = from;
  try {
    while (i < last) {
      bytes += payloads[i].length;
      i++;
      if (bytes >= CHUNK_BYTES) break;
    }
  } catch (cause) {
    throw new InvalidArgumentError(
      `payloads[${i}]`,
      undefined,
      "its length could not be read as the batch was sent (a getter that throws)",
      { method: "Client.requestMany", cause },
    );
  }
  return i;
}
