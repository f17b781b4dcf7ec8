/**
 * The one path every attempt of `Client.request` takes: first tries,
 * retries and hedges alike. One record per request carries it from
 * node choice through pool wait, send and reply to its retries, and the
 * outcome of each attempt is booked here: the node's in-flight count, its
 * passive health and the client's counters (a batch books its items'
 * first attempts the same way, in batch.ts). Apart: the records that
 * carry each attempt's outcome here (request_call.ts) and the errors the
 * path ends a request with (request_errors.ts).
 *
 * @module
 */

import type { ResolvedConfig } from "../config/shapes.ts";
import type { RequestOptions } from "../connection/types.ts";
import { rejection, type Resolve } from "../connection/resolve_only.ts";
import { notSent } from "../connection/refusals.ts";
import type { ConnectionManager } from "../cluster/manager.ts";
import type { ManagedNode } from "../cluster/node.ts";
import {
  AbortedError,
  ClientClosedError,
  type ConfigError,
  NoHealthyNodesError,
  RemoteError,
  RetriesExhaustedError,
} from "../errors.ts";
import { delayFor, retryableAfter } from "./retry.ts";
import type { RetryBudgetEventDetail, RetryEventDetail } from "./events.ts";
import { DEFAULT_HEDGING } from "../config/defaults.ts";
import { type Hedge, Hedging, mayHedge } from "./hedging.ts";
import { RetryBudget } from "./retry_budget.ts";
import {
  channels,
  type RequestMessage,
  requestObserved,
} from "../diagnostics/channels.ts";
import { RequestDiagnostics } from "./request_diagnostics.ts";
import { BatchItemCall, HedgeSink, RequestCall } from "./request_call.ts";
import { aborted, noNodeAfter } from "./request_errors.ts";
import { blameClock, clockFailed } from "../config/validate.ts";
import { acquireWithin, RetryWaits, waitToRetry } from "./waits.ts";

// Its own file, so that arguments.ts (which this file reaches through
// retry.ts) can name it without an import cycle.
export type { ClientRequestOptions } from "./request_options.ts";
import type { ClientRequestOptions } from "./request_options.ts";

/** What the request path needs from the client that owns it. */
export interface RequestPathOwner {
  /** Whether the client is shutting down: no retry starts then. */
  closing(): boolean;
  /** A retry was decided; the client tells its listeners. */
  retrying(detail: RetryEventDetail): void;
  /** A retry was refused by the budget; the client tells its listeners. */
  budgetSpent(detail: RetryBudgetEventDetail): void;
  /** The error a request finally fails with (the client may restate it). */
  final(error: unknown): unknown;
  /** The client's in-flight count reached zero. */
  idle(): void;
  /**
   * A custom clock threw as an outcome was booked (the request has it):
   * told once per client, with the ConfigError naming `clock`.
   */
  clockFailed(error: ConfigError): void;
}

/**
 * A client's request path and its counters. Not exported from any entry
 * point: the client's `request()` and `stats()` are its interface.
 */
export class RequestPath {
  /** Requests that got a reply. */
  succeededCount = 0;
  /** Requests that failed for good. */
  failedCount = 0;
  /** Attempts after the first. */
  retryCount = 0;
  /** Hedged attempts sent. */
  hedgeCount = 0;
  /** Requests (and `withConnection` calls) not yet settled. */
  inFlight = 0;

  readonly #owner: RequestPathOwner;
  readonly #manager: ConnectionManager;
  readonly #config: ResolvedConfig;
  /** Retries allowed by recent traffic; undefined when turned off. */
  readonly #budget: RetryBudget | undefined;
  /** Requests waiting to be retried; woken at once by a shutdown. */
  readonly #sleeping = new RetryWaits();
  /** Publishes on the diagnostics channels, when anyone listens. */
  readonly diagnostics: RequestDiagnostics;
  /** Hedging policy and per-node latencies; undefined when never used. */
  #hedging: Hedging | undefined;
  /**
   * Whether the balancer weighs reply times: only then is each attempt
   * timed, so the other balancers cost no clock reads per request.
   */
  readonly timed: boolean;

  constructor(
    owner: RequestPathOwner,
    manager: ConnectionManager,
    config: ResolvedConfig,
  ) {
    this.#owner = owner;
    this.#manager = manager;
    this.#config = config;
    this.timed = manager.timesRequests;
    this.diagnostics = new RequestDiagnostics(
      manager.id,
      config.clock,
      (thrown) => this.samplesLost(thrown),
    );
    this.#budget = config.retryBudget === undefined
      ? undefined
      : new RetryBudget(config.retryBudget, config.clock.now());
    if (config.hedging !== undefined) {
      this.#hedging = new Hedging(config.hedging, config.clock);
    }
  }

  /** Starts a request; the promise settles with its reply or final error. */
  request(
    payload: Uint8Array,
    options: ClientRequestOptions,
  ): Promise<Uint8Array> {
    return this.#start(new RequestCall(this, payload, options));
  }

  /**
   * Starts an item of a `requestMany` as a request of its own (hedged, or
   * observed): as `request`, its refusals naming `Client.requestMany`.
   */
  requestItem(
    payload: Uint8Array,
    options: ClientRequestOptions,
  ): Promise<Uint8Array> {
    return this.#start(new BatchItemCall(this, payload, options));
  }

  // request()'s body, shared with requestItem: the record's class is all
  // that differs (its `method`, read only when a payload is refused).
  #start(call: RequestCall): Promise<Uint8Array> {
    const options = call.options;
    if (this.#budget !== undefined) this.#budget.requests++;
    this.inFlight++;
    this.#opening = call;
    const promise = new Promise<Uint8Array>(this.#executor);
    this.#opening = undefined;
    try {
      if (mayHedge(options, this.#config.hedging !== undefined)) {
        this.#hedging ??= new Hedging(DEFAULT_HEDGING, this.#config.clock);
        call.hedge = this.#startHedge(this.#hedging, call);
      }
      this.#dispatch(call);
    } catch (error) {
      // A bug below must still settle the request, never throw to the
      // caller or leave it counted in flight; a custom clock that throws
      // is named as the culprit.
      if (!call.done) this.#end(call, blameClock(this.#config.clock, error));
    }
    return promise;
  }

  /**
   * `options` for a first attempt that has only `firstMs` of its
   * `timeoutMs`: a lazy client's request or batch, once its first connect
   * is done (the connect counts against the attempt as a wait for a pool
   * connection does). A copy, which a retry (and a hedge) trades back for
   * `options`, so the retries and hedges have their full `timeoutMs`.
   * Apart from `request`, so that a connected client's requests pay
   * nothing for it.
   */
  firstAttempt(
    options: ClientRequestOptions,
    firstMs: number,
  ): ClientRequestOptions {
    const first = { ...options, timeoutMs: firstMs };
    (this.#firstOnly ??= new WeakMap()).set(first, options);
    return first;
  }

  /**
   * The options of requests whose first attempt had less time, to the
   * options their retries go on with (see firstAttempt); read only when
   * a retry starts.
   */
  #firstOnly:
    | WeakMap<ClientRequestOptions, ClientRequestOptions>
    | undefined;

  // Apart from request(): a closure there would capture `call`, and V8
  // would then allocate a context for every request, hedged or not.
  #startHedge(hedging: Hedging, call: RequestCall): Hedge {
    return hedging.start(() => this.#hedgeNow(call));
  }

  // One executor for every request's promise, so a request allocates no
  // closure for it: it takes the record being opened.
  #opening: RequestCall | undefined = undefined;
  readonly #executor = (resolve: Resolve<Uint8Array>): void => {
    this.#opening!.resolve = resolve;
  };

  /**
   * The waits between retries, which {@linkcode stop} ends: a request's,
   * and a `withConnection` checkout's (`lendConnection`) while it waits.
   */
  get retryWaits(): RetryWaits {
    return this.#sleeping;
  }

  /** Ends the waits between retries; called when the client shuts down. */
  stop(): void {
    this.#sleeping.wakeAll();
    this.#hedging?.stop();
  }

  /**
   * One attempt: picks a node (another than the last attempt's when there
   * is one), counts the attempt against it at once, so that load-aware
   * balancing sees it while it waits for a connection, and sends.
   */
  #dispatch(call: RequestCall, retriedError?: unknown): void {
    let node: ManagedNode;
    try {
      node = this.#manager.pickNode(call.node);
    } catch (error) {
      // No healthy node: fail fast, without backing off.
      return this.#end(call, noNodeAfter(error, retriedError));
    }
    call.node = node;
    node.inFlight++;
    call.outstanding++;
    // The try costs nothing until it catches: only a custom clock or
    // pool that throws gets there, before the attempt reached a
    // connection (whose failures go to the sink). Let out, the throw left
    // the node charged with the attempt for good, and from #backOff (a
    // retry) it would reject a promise nobody awaits.
    try {
      if (this.timed) call.sentAt = this.#config.clock.now();
      const hedge = call.hedge;
      if (hedge !== undefined) {
        hedge.mainStarted = this.#config.clock.now();
        hedge.arm(node);
      }
      if (requestObserved()) this.diagnostics.started(call, node.address);
      // The common case: a connection ready to share, and the request's one
      // promise settled straight from it through the record.
      const options = call.options;
      const connection = node.pool.tryAcquireShared();
      if (connection !== undefined) {
        if (
          call.message !== undefined || channels.poolCheckout.hasSubscribers
        ) {
          this.diagnostics.checkedOut(
            call.message,
            node.address,
            connection.id,
            0,
          );
        }
        connection.submitRequest(call.payload, options, call);
      } else {
        this.#waitThenSend(call, node, options, call);
      }
    } catch (error) {
      node.inFlight--;
      call.outstanding--;
      // The attempt is undone: its start, if published, ends with it.
      if (!call.done) {
        this.#end(call, blameClock(this.#config.clock, error), call.message);
      }
    }
  }

  /**
   * The hedge delay passed with no reply: one more attempt, to another
   * node, if the retry budget allows it.
   */
  #hedgeNow(call: RequestCall): void {
    const hedge = call.hedge!;
    if (call.done || call.outstanding === 0 || this.#owner.closing()) return;
    let node: ManagedNode;
    try {
      node = this.#manager.pickNode(call.node);
    } catch {
      return; // No healthy node to hedge to.
    }
    // Another attempt to the same node would only add to its queue.
    if (node === call.node) return;
    const budget = this.#budget;
    // From a timer, so a throw (a custom clock whose now() throws, a pool
    // that throws) escaped as uncaught; and the clock was read after the
    // node was charged, which then stayed charged. Read once, before; a
    // throw ends the request, as in #dispatch.
    let charged = false;
    let sink: HedgeSink | undefined;
    try {
      const now = this.#config.clock.now();
      if (budget !== undefined && !budget.tryWithdraw(now)) return;
      this.hedgeCount++;
      hedge.sent++;
      node.inFlight++;
      call.outstanding++;
      charged = true;
      sink = new HedgeSink(call, node, now);
      if (requestObserved()) {
        sink.message = this.diagnostics.started(call, node.address, true);
      }
      // A new attempt, as a retry is: its whole `timeoutMs`, not what a
      // lazy client's connect left of the first attempt's (see firstAttempt).
      const options = this.#firstOnly?.get(call.options) ?? call.options;
      const connection = node.pool.tryAcquireShared();
      if (connection !== undefined) {
        if (
          sink.message !== undefined || channels.poolCheckout.hasSubscribers
        ) {
          this.diagnostics.checkedOut(
            sink.message,
            node.address,
            connection.id,
            0,
          );
        }
        connection.submitRequest(call.payload, options, sink);
        // Its outcome goes to the sink from here on. Not before: a custom
        // clock that throws as the connection times the request leaves
        // nothing there, and the hedge's node stayed charged for good,
        // its start never ended.
        charged = false;
      } else {
        this.#waitThenSend(call, node, options, sink);
        charged = false;
      }
      hedge.rearm();
    } catch (error) {
      // Undone, the hedge's start (if published) ends with it; handed to
      // a connection, its outcome is the sink's, and the request ends with
      // the main attempt's message (its later outcome is then not
      // published: one each), so an observer's span for it closes.
      const undone = charged ? sink?.message : undefined;
      if (charged) {
        this.hedgeCount--;
        hedge.sent--;
        node.inFlight--;
        call.outstanding--;
      }
      if (!call.done) {
        this.#end(
          call,
          blameClock(this.#config.clock, error),
          undone ?? call.message,
        );
      } else if (undone !== undefined) {
        this.diagnostics.failed(call, undone, notSent(), false);
      }
    }
  }

  /**
   * The attempt waits for a pool connection. Its `timeoutMs` bounds the
   * wait and the reply together: what the wait used is taken off the time
   * the reply may take.
   */
  async #waitThenSend(
    call: RequestCall,
    node: ManagedNode,
    options: ClientRequestOptions,
    sink: RequestCall | HedgeSink,
  ): Promise<void> {
    const waited = await acquireWithin(
      this.#config,
      this.diagnostics,
      node,
      options,
      sink.message,
    );
    if (waited instanceof Error) return sink.onError(waited);
    if (call.done) {
      // Another attempt answered, or the request ended, meanwhile: this
      // one is booked as never made, and the node not charged for it.
      node.inFlight--;
      call.outstanding--;
      if (sink.message === undefined) return;
      return this.diagnostics.failed(call, sink.message, notSent(), false);
    }
    const sendOptions: RequestOptions = {
      timeoutMs: waited.leftMs,
      signal: options.signal,
      idempotent: options.idempotent,
    };
    waited.connection.submitRequest(call.payload, sendOptions, sink);
  }

  /** An attempt got its reply: the request is done, unless it already was. */
  succeeded(call: RequestCall, node: ManagedNode, reply: Uint8Array): void {
    node.inFlight--;
    this.#manager.recordRequestSuccess(node);
    call.outstanding--;
    // The clock is read only to learn from the reply: a custom clock
    // that throws there kept the reply from its request for good, and
    // the throw went out of the connection's reply dispatch uncaught.
    // The trys cost nothing until they catch.
    try {
      if (this.timed) {
        this.#manager.recordLatency(
          node,
          call.sentAt,
          this.#config.clock.now(),
        );
      }
      const message = call.message;
      if (message !== undefined) {
        this.diagnostics.replied(call, message, reply, !call.done);
      }
    } catch (thrown) {
      this.samplesLost(thrown);
      // The latency's clock read threw first: the reply is published all
      // the same (published, it is no longer the call's message).
      const message = call.message;
      if (message !== undefined) {
        this.diagnostics.replied(call, message, reply, !call.done);
      }
    }
    const hedge = call.hedge;
    if (hedge !== undefined) {
      try {
        hedge.answered(node, this.#config.clock.now() - hedge.mainStarted);
      } catch (thrown) {
        this.samplesLost(thrown);
      }
      if (call.done) return;
      // Done first: cancelling the other attempts reports their failures
      // at once, and they must find the request settled.
      call.done = true;
      hedge.finish();
    }
    call.done = true;
    this.succeededCount++;
    this.settle();
    call.resolve(reply);
  }

  /** A hedged attempt got its reply. */
  hedgeAnswered(sink: HedgeSink, reply: Uint8Array): void {
    const call = sink.call;
    const node = sink.node;
    node.inFlight--;
    this.#manager.recordRequestSuccess(node);
    call.outstanding--;
    const hedge = call.hedge!;
    // As in succeeded: a clock that throws costs the reply's samples,
    // never the request its reply, nor the hedge's start its outcome.
    try {
      if (this.timed) {
        this.#manager.recordLatency(
          node,
          sink.started,
          this.#config.clock.now(),
        );
      }
    } catch (thrown) {
      this.samplesLost(thrown);
    }
    if (sink.message !== undefined) {
      this.diagnostics.replied(call, sink.message, reply, !call.done);
    }
    try {
      hedge.answered(node, this.#config.clock.now() - sink.started);
    } catch (thrown) {
      this.samplesLost(thrown);
    }
    if (call.done) return;
    call.done = true;
    hedge.finish();
    this.succeededCount++;
    this.settle();
    call.resolve(reply);
  }

  /**
   * What the client learns from an outcome (a reply's latency, the hedge
   * policy's sample, the diagnostics' times, a `retry` event) was lost to
   * `thrown`,
   * the clock's, while the outcome itself goes to its request: no request
   * is left to fail, so the owner is told, once per client (a broken
   * clock throws at every outcome; the next request fails with the same
   * ConfigError anyway). Only the clock throws there: the bookings are
   * arithmetic, the diagnostics' write is guarded and a channel reports
   * its subscribers' throws itself, on all three runtimes. So the clock
   * is named without being read again, which a clock that throws now and
   * then would pass. Public for a batch's replies (batch.ts), booked
   * there.
   */
  samplesLost(thrown: unknown): void {
    if (this.#clockTold) return;
    this.#clockTold = true;
    this.#owner.clockFailed(clockFailed(this.#config.clock, thrown));
  }

  /** Whether the owner was told of a clock that threw as a reply came. */
  #clockTold = false;

  /**
   * An attempt failed: the failure is booked against its node (when it was
   * the node's doing), then the request is retried or ends.
   */
  failed(
    call: RequestCall,
    node: ManagedNode,
    error: Error,
    started: number,
    message: RequestMessage | undefined,
  ): void {
    node.inFlight--;
    let others = -1;
    // Called from a connection's sink: a throw (a custom clock whose now()
    // throws) was reported as uncaught there, the request never settled
    // and stayed counted. The try costs nothing until it catches, and
    // this runs only when an attempt failed.
    try {
      this.#manager.recordRequestFailure(node, error);
      if (this.timed) {
        const now = this.#config.clock.now();
        this.#manager.recordLatency(node, started, now, error);
      }
      others = --call.outstanding;
      this.#decide(call, node, error, message, others);
    } catch (thrown) {
      // Thrown before the attempt's outcome was published (see #decide):
      // it is published here, once, whatever the request does next.
      if (others < 0) others = --call.outstanding;
      if (!call.done && others === 0) {
        this.#end(call, blameClock(this.#config.clock, thrown), message);
      } else {
        if (message) this.diagnostics.failed(call, message, error, false);
        this.samplesLost(thrown);
      }
    }
  }

  /**
   * The failed attempt is booked; with `others` attempts still out, the
   * request is retried, ends, or waits for them.
   */
  #decide(
    call: RequestCall,
    node: ManagedNode,
    error: Error,
    message: RequestMessage | undefined,
    others: number,
  ): void {
    // Another attempt is still out (hedged), or the request already has
    // its outcome: this failure decides nothing. Unless it is a node's
    // answer that it will not do the request: the first answer is the
    // request's, an error as much as a reply, so the request does not
    // wait for a slower attempt to say so again.
    if (
      call.done ||
      (others > 0 && !(error instanceof RemoteError && !error.retryable))
    ) {
      if (message) this.diagnostics.failed(call, message, error, false);
      return;
    }
    const options = call.options;
    const signal = options.signal;
    // The caller asked to stop; an attempt may have failed because of it
    // with some other error.
    if (signal?.aborted && !(error instanceof AbortedError)) {
      return this.#end(call, aborted(signal), message);
    }
    if (!this.#shouldRetry(error, options)) {
      return this.#end(call, error, message);
    }
    const retryConfig = this.#config.retryConfig;
    if (call.attempt >= retryConfig.maxRetries) {
      return this.#end(
        call,
        new RetriesExhaustedError(call.attempt + 1, error),
        message,
      );
    }
    const budget = this.#budget;
    if (
      budget !== undefined && !budget.tryWithdraw(this.#config.clock.now())
    ) {
      // Retrying now would add load to a cluster that is failing more
      // than the budget allows: the request fails with its own error.
      this.#owner.budgetSpent({
        attempt: call.attempt + 1,
        error,
        address: node.address,
      });
      return this.#end(call, error, message);
    }
    const delayMs = delayFor(call.attempt, retryConfig);
    if (message) this.diagnostics.failed(call, message, error, true);
    call.attempt++;
    this.retryCount++;
    // The event reads the clock (its time): a custom one that throws there
    // ended the request after its attempt was published as retried, and
    // that attempt was published again. The retry goes on, as published;
    // only the event is lost.
    try {
      this.#owner.retrying({
        attempt: call.attempt,
        delayMs,
        error,
        address: node.address,
      });
    } catch (thrown) {
      this.samplesLost(thrown);
    }
    this.#backOff(call, delayMs, error);
  }

  /**
   * Waits `delayMs`, then makes the next attempt, unless told to stop;
   * `error` is the last attempt's (carried here, not on the call, which
   * every request in flight holds).
   */
  async #backOff(
    call: RequestCall,
    delayMs: number,
    error: unknown,
  ): Promise<void> {
    const signal = call.options.signal;
    // A `retry` listener may already have aborted the signal or
    // disconnected the client: neither would wake a wait that starts
    // after it, so there is none.
    if (!signal?.aborted && !this.#owner.closing()) {
      await waitToRetry(this.#config.clock, delayMs, signal, this.#sleeping);
    }
    if (signal?.aborted) return this.#end(call, aborted(signal));
    if (this.#owner.closing()) {
      return this.#end(
        call,
        new ClientClosedError(
          "the client disconnected while the request waited to be retried",
        ),
      );
    }
    const full = this.#firstOnly?.get(call.options);
    if (full !== undefined) call.options = full;
    this.#dispatch(call, error);
  }

  /**
   * The request failed for good, decided by the failure of the attempt of
   * `message` (none: no attempt was under way).
   */
  #end(call: RequestCall, error: unknown, message?: RequestMessage): void {
    call.done = true;
    call.hedge?.finish();
    this.failedCount++;
    this.settle();
    const final = this.#owner.final(error);
    if (message !== undefined || requestObserved()) {
      // Publishing reads the clock (the message's start, its duration): a
      // custom one that throws there kept the request from its outcome for
      // good, with a subscriber listening. The diagnostics publish without
      // the time now (and tell samplesLost); the try stays for anything
      // else, and costs nothing until it catches, on a failure's path.
      try {
        this.diagnostics.ended(call, final, message);
      } catch (thrown) {
        this.samplesLost(thrown);
      }
    }
    call.resolve(rejection(final));
  }

  /** `count` requests settled (a batch's items have no RequestCall). */
  settle(count = 1): void {
    if ((this.inFlight -= count) === 0) this.#owner.idle();
  }

  #shouldRetry(error: unknown, options: ClientRequestOptions): boolean {
    // With no healthy node the client fails fast instead of backing off.
    return options.retry !== false && !this.#owner.closing() &&
      !(error instanceof NoHealthyNodesError) &&
      retryableAfter(error, options.idempotent === true);
  }

  // Batches (batch.ts): an item's first attempt goes out with its chunk,
  // without a RequestCall, and is booked there; a failed item carries on
  // from here as a single request.

  /** A batch of `count` requests starts: counted as that many requests. */
  batchStarted(count: number): void {
    if (this.#budget !== undefined) this.#budget.requests += count;
    this.inFlight += count;
  }

  /** The error a request finally fails with, as the client states it. */
  final(error: unknown): unknown {
    return this.#owner.final(error);
  }
}
