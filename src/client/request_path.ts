/**
 * The one path every attempt of `Client.request` takes: first tries,
 * retries and (later) hedges alike. One record per request carries it from
 * node choice through pool wait, send and reply to its retries, and the
 * outcome of each attempt is booked in one place: the node's in-flight
 * count, its passive health and the client's counters.
 *
 * @module
 */

import { sleep } from "../clock.ts";
import type { ResolvedConfig } from "../config/shapes.ts";
import type { Connection } from "../connection/connection.ts";
import type { ReplySink, RequestOptions } from "../connection/types.ts";
import { rejection, type Resolve } from "../connection/resolve_only.ts";
import type { ConnectionManager } from "../cluster/manager.ts";
import type { ManagedNode } from "../cluster/node.ts";
import {
  AbortedError,
  ClientClosedError,
  NoHealthyNodesError,
  RequestTimeoutError,
  RetriesExhaustedError,
} from "../errors.ts";
import { backoffDelay, isRetryable } from "./retry.ts";
import type { RetryEventDetail } from "./events.ts";
import {
  channels,
  type RequestMessage,
  requestObserved,
} from "../diagnostics/channels.ts";
import {
  type ObservedCall,
  RequestDiagnostics,
} from "./request_diagnostics.ts";

/** Options of {@linkcode Client.request}. */
export interface ClientRequestOptions {
  /**
   * Bounds each attempt end to end, in ms: the wait for a pool connection,
   * the send and the reply. Default `requestTimeoutMs`. Waits between
   * retries are not part of an attempt; `signal` bounds the whole call.
   */
  timeoutMs?: number;
  /**
   * Bounds the whole call, retries and the waits between them included:
   * when it aborts, the request fails at once with a non-retryable
   * `AbortedError` carrying the signal's reason.
   */
  signal?: AbortSignal;
  /**
   * The request is safe to execute twice, so it may be retried even after
   * it may have reached a node. Default false.
   */
  idempotent?: boolean;
  /** Set false to make exactly one attempt. Default true. */
  retry?: boolean;
}

/** What the request path needs from the client that owns it. */
export interface RequestPathOwner {
  /** Whether the client is shutting down: no retry starts then. */
  closing(): boolean;
  /** A retry was decided; the client tells its listeners. */
  retrying(detail: RetryEventDetail): void;
  /** The error a request finally fails with (the client may restate it). */
  final(error: unknown): unknown;
  /** The client's in-flight count reached zero. */
  idle(): void;
}

/**
 * One request, from its first attempt to its outcome: the connection's
 * reply sink and the request's promise in one small record.
 */
class RequestCall implements ReplySink, ObservedCall {
  /** The node of the current attempt; undefined before the first pick. */
  node: ManagedNode | undefined = undefined;
  /** 0 for the first attempt, then one more per retry. */
  attempt = 0;
  /** The attempt's diagnostics message, only when someone subscribed. */
  message: RequestMessage | undefined = undefined;
  /** The request's number in diagnostics messages, once it has one. */
  id = 0;

  constructor(
    readonly path: RequestPath,
    readonly payload: Uint8Array,
    readonly options: ClientRequestOptions,
    // Failures too settle through it (see resolve_only.ts).
    readonly resolve: Resolve<Uint8Array>,
  ) {}

  onReply(payload: Uint8Array): void {
    this.path.succeeded(this, payload);
  }

  onError(error: Error): void {
    this.path.failed(this, error);
  }
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
  /** Requests (and `withConnection` calls) not yet settled. */
  inFlight = 0;

  readonly #owner: RequestPathOwner;
  readonly #manager: ConnectionManager;
  readonly #config: ResolvedConfig;
  /** Requests waiting to be retried; woken at once by a shutdown. */
  readonly #sleeping = new Set<AbortController>();
  /** Publishes on the diagnostics channels, when anyone listens. */
  readonly diagnostics: RequestDiagnostics;

  constructor(
    owner: RequestPathOwner,
    manager: ConnectionManager,
    config: ResolvedConfig,
  ) {
    this.#owner = owner;
    this.#manager = manager;
    this.#config = config;
    this.diagnostics = new RequestDiagnostics(manager.id, config.clock);
  }

  /** Starts a request; the promise settles with its reply or final error. */
  request(
    payload: Uint8Array,
    options: ClientRequestOptions,
  ): Promise<Uint8Array> {
    return new Promise((resolve) => {
      this.inFlight++;
      this.#dispatch(new RequestCall(this, payload, options, resolve));
    });
  }

  /** Ends the waits between retries; called when the client shuts down. */
  stop(): void {
    for (const wake of this.#sleeping) wake.abort();
  }

  /**
   * One attempt: picks a node (another than the last attempt's when there
   * is one), counts the attempt against it at once, so that load-aware
   * balancing sees it while it waits for a connection, and sends.
   */
  #dispatch(call: RequestCall): void {
    let node: ManagedNode;
    try {
      node = this.#manager.pickNode(call.node);
    } catch (error) {
      // No healthy node: fail fast, without backing off.
      return this.#end(call, error);
    }
    call.node = node;
    node.inFlight++;
    if (requestObserved()) this.diagnostics.started(call, node.address);
    // The common case: a connection ready to share, and the request's one
    // promise settled straight from it through the record.
    const connection = node.pool.tryAcquireShared();
    if (connection !== undefined) {
      if (call.message !== undefined || channels.poolCheckout.hasSubscribers) {
        this.diagnostics.checkedOut(call, node.address, connection.id, 0);
      }
      connection.submitRequest(call.payload, call.options, call);
    } else {
      this.#waitThenSend(call, node);
    }
  }

  /**
   * The attempt waits for a pool connection. Its `timeoutMs` bounds the
   * wait and the reply together: what the wait used is taken off the time
   * the reply may take.
   */
  async #waitThenSend(call: RequestCall, node: ManagedNode): Promise<void> {
    const options = call.options;
    const clock = this.#config.clock;
    const limit = options.timeoutMs ?? this.#config.requestTimeoutMs;
    const started = clock.now();
    let connection: Connection;
    try {
      connection = await node.pool.acquireShared({
        signal: options.signal,
        timeoutMs: Math.min(limit, this.#config.poolConfig.connectionTimeoutMs),
      });
    } catch (error) {
      if (channels.poolCheckout.hasSubscribers) {
        const waitMs = clock.now() - started;
        this.diagnostics.checkout(
          node.address,
          "shared",
          undefined,
          waitMs,
          error,
        );
      }
      return call.onError(error as Error);
    }
    if (call.message !== undefined || channels.poolCheckout.hasSubscribers) {
      const waitMs = clock.now() - started;
      this.diagnostics.checkedOut(call, node.address, connection.id, waitMs);
    }
    const left = limit - (clock.now() - started);
    if (!(left > 0)) {
      return call.onError(
        new RequestTimeoutError(node.address, limit, { sent: false }),
      );
    }
    const sendOptions: RequestOptions = {
      timeoutMs: left,
      signal: options.signal,
      idempotent: options.idempotent,
    };
    connection.submitRequest(call.payload, sendOptions, call);
  }

  /** An attempt got its reply: the request is done. */
  succeeded(call: RequestCall, reply: Uint8Array): void {
    const node = call.node!;
    node.inFlight--;
    this.#manager.recordRequestSuccess(node);
    this.succeededCount++;
    this.#settled();
    const message = call.message;
    if (message !== undefined) this.diagnostics.replied(call, message, reply);
    call.resolve(reply);
  }

  /**
   * An attempt failed: the failure is booked against its node (when it was
   * the node's doing), then the request is retried or ends.
   */
  failed(call: RequestCall, error: Error): void {
    const node = call.node!;
    node.inFlight--;
    this.#manager.recordRequestFailure(node, error);
    const options = call.options;
    const signal = options.signal;
    // The caller asked to stop; an attempt may have failed because of it
    // with some other error.
    if (signal?.aborted && !(error instanceof AbortedError)) {
      return this.#end(call, aborted(signal));
    }
    if (!this.#shouldRetry(error, options)) return this.#end(call, error);
    const retryConfig = this.#config.retryConfig;
    if (call.attempt >= retryConfig.maxRetries) {
      return this.#end(
        call,
        new RetriesExhaustedError(call.attempt + 1, error),
      );
    }
    const delayMs = backoffDelay(call.attempt, retryConfig);
    if (call.message !== undefined) this.diagnostics.retrying(call, error);
    call.attempt++;
    this.retryCount++;
    this.#owner.retrying({
      attempt: call.attempt,
      delayMs,
      error,
      address: node.address,
    });
    this.#backOff(call, delayMs);
  }

  /** Waits `delayMs`, then makes the next attempt, unless told to stop. */
  async #backOff(call: RequestCall, delayMs: number): Promise<void> {
    const signal = call.options.signal;
    // One controller ends the wait for either reason: the caller's abort
    // or the client's shutdown (which aborts every sleeping one).
    const wake = new AbortController();
    const onAbort = () => wake.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#sleeping.add(wake);
    try {
      await sleep(this.#config.clock, delayMs, wake.signal);
    } catch {
      // Woken early; the checks below say why.
    } finally {
      this.#sleeping.delete(wake);
      signal?.removeEventListener("abort", onAbort);
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
    this.#dispatch(call);
  }

  /** The request failed for good. */
  #end(call: RequestCall, error: unknown): void {
    this.failedCount++;
    this.#settled();
    const final = this.#owner.final(error);
    if (call.message !== undefined || requestObserved()) {
      this.diagnostics.ended(call, final);
    }
    call.resolve(rejection(final));
  }

  #settled(): void {
    if (--this.inFlight === 0) this.#owner.idle();
  }

  #shouldRetry(error: unknown, options: ClientRequestOptions): boolean {
    // With no healthy node the client fails fast instead of backing off.
    return options.retry !== false && !this.#owner.closing() &&
      !(error instanceof NoHealthyNodesError) && isRetryable(error, options);
  }
}

function aborted(signal: AbortSignal): AbortedError {
  return new AbortedError("the request was aborted", signal.reason);
}
