/**
 * The one path every attempt of `Client.request` takes: first tries,
 * retries and hedges alike. One record per request carries it from
 * node choice through pool wait, send and reply to its retries, and the
 * outcome of each attempt is booked here: the node's in-flight count, its
 * passive health and the client's counters (a batch books its items'
 * first attempts the same way, in batch.ts). Apart: the records that
 * carry each attempt's outcome here (request_call.ts), the errors the
 * path ends a request with (request_errors.ts), an attempt's wait for a
 * pool connection and its send then (waits.ts), and the two parts an
 * unhedged request answered at its first attempt never reaches: what a
 * failed attempt leads to (request_retry.ts), the hedges sent and their
 * replies (request_hedging.ts).
 *
 * @module
 */

import type { ResolvedConfig } from "../config/shapes.ts";
import { rejection, type Resolve } from "../connection/resolve_only.ts";
import type { ConnectionManager } from "../cluster/manager.ts";
import type { ManagedNode } from "../cluster/node.ts";
import type { ConfigError } from "../errors.ts";
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
import { BatchItemCall, type HedgeSink, RequestCall } from "./request_call.ts";
import { noNodeAfter } from "./request_errors.ts";
import { blameClock, clockFailed, readClock } from "../config/clock_failure.ts";
import { RetryWaits, waitThenSend } from "./waits.ts";
import { bookFailure, type RetryingPath } from "./request_retry.ts";
import {
  bookHedgeReply,
  hedgeNow,
  type HedgingPath,
} from "./request_hedging.ts";

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
export class RequestPath implements RetryingPath, HedgingPath {
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
      if (!call.done) this.end(call, blameClock(this.#config.clock, error));
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
    (this.firstOnly ??= new WeakMap()).set(first, options);
    return first;
  }

  /**
   * The options of requests whose first attempt had less time, to the
   * options their retries go on with (see firstAttempt); read only when
   * a retry or a hedge starts (request_retry.ts, request_hedging.ts).
   * Internal.
   */
  firstOnly:
    | WeakMap<ClientRequestOptions, ClientRequestOptions>
    | undefined;

  // Apart from request(): a closure there would capture `call`, and V8
  // would then allocate a context for every request, hedged or not.
  #startHedge(hedging: Hedging, call: RequestCall): Hedge {
    return hedging.start(() => hedgeNow(this, call));
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

  // Read by the retry decision and by hedging (request_retry.ts,
  // request_hedging.ts), never on a first attempt's way: the path's own
  // code keeps reading the private fields.

  /** The client that owns the path. Internal. */
  get owner(): RequestPathOwner {
    return this.#owner;
  }

  /** The cluster the path picks nodes from and books outcomes to. Internal. */
  get manager(): ConnectionManager {
    return this.#manager;
  }

  /** The client's resolved config. Internal. */
  get config(): ResolvedConfig {
    return this.#config;
  }

  /** Retries allowed by recent traffic; undefined when off. Internal. */
  get budget(): RetryBudget | undefined {
    return this.#budget;
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
      return this.end(call, noNodeAfter(error, retriedError));
    }
    call.node = node;
    node.inFlight++;
    call.outstanding++;
    // The try costs nothing until it catches: only a custom clock or
    // pool that throws gets there, before the attempt reached a
    // connection (whose failures go to the sink). Let out, the throw left
    // the node charged with the attempt for good, and from a retry's
    // backOff (request_retry.ts) it would reject a promise nobody awaits.
    try {
      // Read through readClock, which names a throw where it happened:
      // asked again in the catch (blameClock), a clock that threw once
      // read fine, and the request failed with its raw Error.
      if (this.timed) call.sentAt = readClock(this.#config.clock);
      const hedge = call.hedge;
      if (hedge !== undefined) {
        hedge.mainStarted = readClock(this.#config.clock);
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
        waitThenSend(this.#config, this.diagnostics, call, node, options, call);
      }
    } catch (error) {
      node.inFlight--;
      call.outstanding--;
      // The attempt is undone: its start, if published, ends with it.
      if (!call.done) {
        this.end(call, blameClock(this.#config.clock, error), call.message);
      }
    }
  }

  /** An attempt got its reply: the request is done, unless it already was. */
  succeeded(call: RequestCall, node: ManagedNode, reply: Uint8Array): void {
    node.inFlight--;
    node.health.recordRequestSuccess();
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

  /** A hedged attempt got its reply (booked in request_hedging.ts). */
  hedgeAnswered(sink: HedgeSink, reply: Uint8Array): void {
    bookHedgeReply(this, sink, reply);
  }

  /**
   * What the client learns from an outcome (a reply's latency, the hedge
   * policy's sample, the diagnostics' times, a `retry` or
   * `retryBudgetExhausted` event) was lost to `thrown`, the clock's,
   * while the outcome itself goes to its request: no request is left to
   * fail, so the owner is told, once per client (a broken
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
   * the node's doing), then the request is retried or ends
   * (request_retry.ts).
   */
  failed(
    call: RequestCall,
    node: ManagedNode,
    error: Error,
    started: number,
    message: RequestMessage | undefined,
  ): void {
    bookFailure(this, call, node, error, started, message);
  }

  /**
   * The next attempt of a retried request, once its backoff is over
   * (request_retry.ts): #dispatch, which stays private so that a first
   * attempt reaches it as it always did. Internal.
   */
  dispatchRetry(call: RequestCall, error: unknown): void {
    this.#dispatch(call, error);
  }

  /**
   * The request failed for good, decided by the failure of the attempt of
   * `message` (none: no attempt was under way). Internal: retries and
   * hedges end requests too (request_retry.ts, request_hedging.ts).
   */
  end(call: RequestCall, error: unknown, message?: RequestMessage): void {
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
