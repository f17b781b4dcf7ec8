/**
 * What the request path publishes on the diagnostics channels, kept out of
 * it: it only asks whether anyone listens, and calls in here if so.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { readClock } from "../config/clock_failure.ts";
import { asError } from "../errors/base.ts";
import {
  channels,
  type RequestMessage,
  requestObserved,
} from "../diagnostics/channels.ts";
import { lengthOf } from "../protocol/payload_length.ts";

/** The parts of a request's record the messages are built from. */
export interface ObservedCall {
  /** The attempt under way (0 for the first). */
  readonly attempt: number;
  /** The main attempt's message, from its start until its outcome. */
  message: RequestMessage | undefined;
  /** The request payload. */
  readonly payload: Uint8Array;
  /** Whether the caller marked it idempotent. */
  readonly options: { readonly idempotent?: boolean };
}

/** What a checkout hands out, as far as its message goes. */
type Connected = { readonly id: number };

/** Publishes one client's request and checkout messages. */
export class RequestDiagnostics {
  readonly #clientId: number;
  readonly #clock: Clock;
  readonly #clockThrew: (thrown: unknown) => void;
  #lastRequestId = 0;
  /**
   * Each observed request's number, kept here rather than on every call
   * (a field each request in flight would carry, observed or not).
   */
  readonly #ids = new WeakMap<ObservedCall, number>();

  /**
   * Messages of client `clientId`, timed on `clock`; a custom clock that
   * throws as an outcome is timed goes to `clockThrew` (the outcome is
   * published without its duration).
   */
  constructor(
    clientId: number,
    clock: Clock,
    clockThrew: (thrown: unknown) => void,
  ) {
    this.#clientId = clientId;
    this.#clock = clock;
    this.#clockThrew = clockThrew;
  }

  /**
   * An attempt starts on the node at `address` (undefined: none picked).
   * The main attempt's message is kept on the call; a hedge's is returned.
   */
  started(
    call: ObservedCall,
    address: string | undefined,
    hedge = false,
  ): RequestMessage {
    // Named where it threw (see readClock): the attempt's catch fails it.
    const message = this.#start(call, address, hedge, readClock(this.#clock));
    if (!hedge) call.message = message;
    return message;
  }

  /**
   * Publishes the start of an attempt that started at `startedAt`, not
   * kept on the call.
   */
  #start(
    call: ObservedCall,
    address: string | undefined,
    hedge: boolean,
    startedAt: number,
  ): RequestMessage {
    let id = this.#ids.get(call);
    if (id === undefined) this.#ids.set(call, id = ++this.#lastRequestId);
    const message: RequestMessage = {
      clientId: this.#clientId,
      requestId: id,
      attempt: call.attempt,
      hedge,
      address,
      idempotent: call.options.idempotent === true,
      // Its real length, as framed: a getter of the payload's own may
      // throw or lie (the door reads only `length` of a small one).
      payloadBytes: lengthOf(call.payload),
      startedAt,
      connectionId: undefined,
      waitMs: undefined,
      durationMs: undefined,
      replyBytes: undefined,
      error: undefined,
      retrying: false,
      settles: false,
    };
    channels.requestStart.publish(message);
    return message;
  }

  /**
   * An attempt has its connection after waiting `waitMs`: recorded on its
   * message, if it has one, and published as a checkout.
   */
  checkedOut(
    message: RequestMessage | undefined,
    address: string,
    connectionId: number,
    waitMs: number,
  ): void {
    if (message !== undefined) {
      write(message, { connectionId, waitMs });
    }
    if (channels.poolCheckout.hasSubscribers) {
      this.checkout(address, "shared", connectionId, waitMs, undefined);
    }
  }

  /** Publishes a checkout that ended, with a connection or an error. */
  checkout(
    address: string,
    mode: "shared" | "exclusive",
    connectionId: number | undefined,
    waitMs: number,
    error: unknown,
  ): void {
    channels.poolCheckout.publish({
      clientId: this.#clientId,
      address,
      mode,
      connectionId,
      waitMs,
      error: error === undefined ? undefined : asError(error),
    });
  }

  /** `acquire()`, a checkout of `ping()` or `withConnection()`, published. */
  observeCheckout<
    R extends Connected | Promise<Connected>,
  >(
    address: string,
    mode: "shared" | "exclusive",
    acquire: () => R,
  ): R {
    if (!channels.poolCheckout.hasSubscribers) return acquire();
    const started = this.#clock.now();
    const done = (connection: Connected | undefined, error: unknown): void => {
      const waitMs = this.#clock.now() - started;
      this.checkout(address, mode, connection?.id, waitMs, error);
    };
    return (async () => {
      try {
        const connection = await acquire();
        done(connection, undefined);
        return connection;
      } catch (error) {
        done(undefined, error);
        throw error;
      }
    })() as unknown as R;
  }

  /**
   * An attempt got its reply; `settles` says whether it is the request's
   * (false for a hedge that lost the race).
   */
  replied(
    call: ObservedCall,
    message: RequestMessage,
    reply: Uint8Array,
    settles: boolean,
  ): void {
    if (call.message === message) call.message = undefined;
    write(message, {
      durationMs: this.#elapsed(message),
      replyBytes: reply.byteLength,
      settles,
    });
    channels.requestEnd.publish(message);
  }

  /**
   * An attempt failed without ending the request: it is retried, another
   * attempt is still out, or the request has its outcome already.
   */
  failed(
    call: ObservedCall,
    message: RequestMessage,
    error: unknown,
    retrying: boolean,
  ): void {
    if (call.message === message) call.message = undefined;
    write(message, { retrying });
    this.#publishError(message, error);
  }

  /**
   * The request failed for good with `error`: so ends `message`, the
   * attempt whose failure decided it; with none (no node could be picked,
   * or the request ended between attempts), an attempt that reached no
   * node is published for it.
   */
  ended(
    call: ObservedCall,
    error: unknown,
    message?: RequestMessage,
  ): void {
    // Published whatever the clock does: the request's one outcome with
    // `settles` (a custom clock that throws leaves its time NaN). Not the
    // call's message: its main attempt, if one is still out, was
    // published and ends on its own (it was taken for this one, and its
    // outcome lost).
    message ??= this.#start(call, undefined, false, this.#now());
    if (call.message === message) call.message = undefined;
    write(message, { settles: true });
    this.#publishError(message, error);
  }

  /**
   * Requests, one per payload, that failed for good with `error` before
   * their first attempt: a lazy client's call whose first connect failed,
   * or used up its time. Published as a request that reached no node is
   * (see `ended`), when anyone listens: a subscriber counting failed
   * requests heard nothing of them.
   */
  unsent(
    payloads: readonly Uint8Array[],
    options: { readonly idempotent?: boolean },
    error: unknown,
  ): void {
    if (!requestObserved()) return;
    for (const payload of payloads) {
      this.ended({ attempt: 0, message: undefined, payload, options }, error);
    }
  }

  #publishError(message: RequestMessage, error: unknown): void {
    write(message, {
      durationMs: this.#elapsed(message),
      error: asError(error),
    });
    channels.requestError.publish(message);
  }

  /**
   * How long `message`'s attempt took; undefined when a custom clock
   * throws. Its outcome is published all the same: its start was, and a
   * subscriber's span for it would otherwise stay open for good.
   */
  #elapsed(message: RequestMessage): number | undefined {
    const ms = this.#now() - message.startedAt;
    return Number.isNaN(ms) ? undefined : ms;
  }

  /** The clock's time; NaN when a custom clock throws (told once). */
  #now(): number {
    try {
      return this.#clock.now();
    } catch (thrown) {
      this.#clockThrew(thrown);
      return NaN;
    }
  }
}

/**
 * Records `fields` on a message already published: a subscriber may have
 * frozen it or put a throwing setter on it, and the request must not fail
 * for what an observer did to its copy of the news.
 */
function write(message: RequestMessage, fields: Partial<RequestMessage>): void {
  try {
    Object.assign(message, fields);
  } catch {
    // The message stays as the subscriber left it.
  }
}
