/**
 * The record of one request (`RequestCall`) and the sink of each of its
 * hedged attempts (`HedgeSink`): what a connection reports an attempt's
 * outcome to, passed on to the request path. Apart from request_path.ts
 * because they are data with a reply sink's three methods; the booking
 * they call into is the path's.
 *
 * @module
 */

import type { ReplySink } from "../connection/types.ts";
import type { Resolve } from "../connection/resolve_only.ts";
import type { ManagedNode } from "../cluster/node.ts";
import type { RequestMessage } from "../diagnostics/channels.ts";
import type { Hedge } from "./hedging.ts";
import type { ObservedCall } from "./request_diagnostics.ts";
import type { ClientRequestOptions } from "./request_options.ts";

/**
 * Where a request's record and its hedges' sinks report each attempt's
 * outcome: the request path (request_path.ts), which books it.
 */
export interface CallPath {
  /** An attempt of `call` on `node` got its reply. */
  succeeded(call: RequestCall, node: ManagedNode, reply: Uint8Array): void;
  /** A hedged attempt got its reply. */
  hedgeAnswered(sink: HedgeSink, reply: Uint8Array): void;
  /** An attempt of `call` on `node`, started at `started`, failed. */
  failed(
    call: RequestCall,
    node: ManagedNode,
    error: Error,
    started: number,
    message: RequestMessage | undefined,
  ): void;
}

/**
 * One request, from its first attempt to its outcome: the connection's
 * reply sink for its main attempt and the request's promise in one small
 * record. Hedged attempts report through sinks of their own.
 */
export class RequestCall implements ReplySink, ObservedCall {
  /** The node of the main attempt; undefined before the first pick. */
  node: ManagedNode | undefined = undefined;
  /** 0 for the first attempt, then one more per retry. */
  attempt = 0;
  /** Attempts in flight: more than one only while hedged. */
  outstanding = 0;
  /** Whether the request has its outcome; later ones are only booked. */
  done = false;
  /** Hedging state, for a request that may be hedged. */
  hedge: Hedge | undefined = undefined;
  /** When the main attempt was dispatched; read only when timed. */
  sentAt = 0;
  /** The main attempt's diagnostics message, only when someone listens. */
  message: RequestMessage | undefined = undefined;

  constructor(
    readonly path: CallPath,
    readonly payload: Uint8Array,
    /**
     * What its attempts go by; a lazy client's first request has its
     * full `timeoutMs` back here once its first attempt failed (see
     * RequestPath.firstAttempt).
     */
    public options: ClientRequestOptions,
  ) {}

  /**
   * Settles the request's promise; failures too settle through it (see
   * resolve_only.ts). Set by the promise's executor.
   */
  resolve: Resolve<Uint8Array> = noResolve;

  onReply(payload: Uint8Array): void {
    this.path.succeeded(this, this.node!, payload);
  }

  onError(error: Error): void {
    this.path.failed(this, this.node!, error, this.sentAt, this.message);
  }

  /** Named in a connection's refusal of the payload (see ReplySink.method). */
  get method(): string {
    // A getter on the prototype: nothing stored per request.
    return "Client.request";
  }
}

/**
 * An item of a `requestMany` that goes on as a request of its own (hedged
 * or observed from the start, or retried after its first attempt failed):
 * a refusal names the method the caller called.
 */
export class BatchItemCall extends RequestCall {
  /** Named in a connection's refusal of the payload (see ReplySink.method). */
  override get method(): string {
    return "Client.requestMany";
  }
}

/** The sink of one hedged attempt: which request, on which node. */
export class HedgeSink implements ReplySink {
  /** The hedge's diagnostics message, only when someone listens. */
  message: RequestMessage | undefined = undefined;

  constructor(
    readonly call: RequestCall,
    readonly node: ManagedNode,
    readonly started: number,
  ) {}

  /** Whether the request has its outcome (see ReplySink.done). */
  get done(): boolean {
    return this.call.done;
  }

  onReply(payload: Uint8Array): void {
    this.call.path.hedgeAnswered(this, payload);
  }

  onError(error: Error): void {
    const call = this.call;
    call.path.failed(call, this.node, error, this.started, this.message);
  }

  /** Named in a connection's refusal of the payload (see ReplySink.method). */
  get method(): string {
    // The request's: a hedge of a requestMany item names requestMany.
    return this.call.method;
  }
}

function noResolve(): void {}
