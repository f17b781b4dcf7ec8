/**
 * What the request path publishes on the diagnostics channels, kept out of
 * it: it only asks whether anyone listens, and calls in here if so.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { channels, type RequestMessage } from "../diagnostics/channels.ts";

/** The parts of a request's record the messages are built from. */
export interface ObservedCall {
  /** The request's number in messages; 0 until the first is published. */
  id: number;
  /** The attempt under way (0 for the first). */
  readonly attempt: number;
  /** The attempt's message, from its start until its outcome is published. */
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
  #lastRequestId = 0;

  constructor(clientId: number, clock: Clock) {
    this.#clientId = clientId;
    this.#clock = clock;
  }

  /** An attempt starts on the node at `address` (undefined: none picked). */
  started(call: ObservedCall, address: string | undefined): void {
    if (call.id === 0) call.id = ++this.#lastRequestId;
    const message: RequestMessage = {
      clientId: this.#clientId,
      requestId: call.id,
      attempt: call.attempt,
      address,
      idempotent: call.options.idempotent === true,
      payloadBytes: call.payload.byteLength,
      startedAt: this.#clock.now(),
      connectionId: undefined,
      waitMs: undefined,
      durationMs: undefined,
      replyBytes: undefined,
      error: undefined,
      retrying: false,
    };
    call.message = message;
    channels.requestStart.publish(message);
  }

  /**
   * The attempt has its connection after waiting `waitMs`: recorded on its
   * message and published as a checkout.
   */
  checkedOut(
    call: ObservedCall,
    address: string,
    connectionId: number,
    waitMs: number,
  ): void {
    const message = call.message;
    if (message !== undefined) {
      message.connectionId = connectionId;
      message.waitMs = waitMs;
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

  /** The attempt got its reply: the request is done. */
  replied(call: ObservedCall, message: RequestMessage, reply: Uint8Array) {
    call.message = undefined;
    message.durationMs = this.#clock.now() - message.startedAt;
    message.replyBytes = reply.byteLength;
    channels.requestEnd.publish(message);
  }

  /** The attempt failed and the request will be tried again. */
  retrying(call: ObservedCall, error: unknown): void {
    const message = call.message;
    if (message === undefined) return;
    call.message = undefined;
    message.retrying = true;
    this.#failed(message, error);
  }

  /**
   * The request failed for good: the attempt under way ends with `error`,
   * or, when none is under way, one that reached no node says so.
   */
  ended(call: ObservedCall, error: unknown): void {
    let message = call.message;
    if (message === undefined) {
      this.started(call, undefined);
      message = call.message!;
    }
    call.message = undefined;
    this.#failed(message, error);
  }

  #failed(message: RequestMessage, error: unknown): void {
    message.durationMs = this.#clock.now() - message.startedAt;
    message.error = asError(error);
    channels.requestError.publish(message);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
