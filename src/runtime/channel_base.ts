/**
 * The callback bookkeeping every {@linkcode ByteChannel} needs, written once
 * so each adapter only deals with its runtime's socket.
 *
 * @module
 */

import { ConnectionLostError, type Endpoint } from "../errors.ts";
import { asError } from "../errors/base.ts";
import { checkReceiver } from "./arguments.ts";
import { unrefTimer } from "./timers.ts";
import type { ByteChannel } from "./types.ts";

/**
 * How long, in ms, a closing channel waits for its peer to take any of the
 * bytes still queued before it drops them and destroys the socket: a peer
 * that reads nothing would hold the close, and the process, open for
 * good. Any progress restarts the wait: a slow reader gets everything.
 */
export const CLOSE_STALL_MS = 500;

/**
 * Base of the adapters' channels: one data receiver, one close receiver,
 * `onClose` exactly once and never before a data chunk already delivered.
 *
 * Reading starts when `onData` is registered, not before. Until then the
 * runtime leaves bytes in the kernel, which gives real TCP backpressure to
 * a peer we are not ready for, and no chunk can be lost for lack of a
 * receiver.
 */
export abstract class ChannelBase implements ByteChannel {
  /** The peer, as named when connecting; used in error messages. */
  readonly endpoint: Endpoint;
  #onData: ((chunk: Uint8Array) => void) | undefined;
  #onClose: ((error?: Error) => void) | undefined;
  #reading = false;
  #finished = false;
  #closeError: Error | undefined;
  #closeDelivered = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;

  /** Creates the bookkeeping for a channel to `endpoint`. */
  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
  }

  /** Bytes accepted by `write` and not yet handed to the OS. */
  abstract readonly bufferedAmount: number;
  /** The peer's address, when the runtime reports it. */
  abstract readonly remoteAddress:
    | { hostname: string; port: number }
    | undefined;
  /** Queues bytes; false means wait for `drained()`. */
  abstract write(bytes: Uint8Array): boolean;
  /** Resolves below the low-water mark or on close. */
  abstract drained(): Promise<void>;
  /** Flushes, then closes. */
  abstract close(): void;
  /** Closes now. */
  abstract destroy(error?: Error): void;
  /** Starts pulling or accepting pushed bytes; called once. */
  protected abstract startReading(): void;

  /** Whether the channel has finished (closed or failed). */
  get finished(): boolean {
    return this.#finished;
  }

  /** Sets the data receiver; the first call starts reading. */
  onData(fn: (chunk: Uint8Array) => void): void {
    checkReceiver("onData()", fn);
    this.#onData = fn;
    if (!this.#reading && !this.#finished) {
      this.#reading = true;
      this.startReading();
    }
  }

  /** Sets the close receiver; a close that already happened is delivered. */
  onClose(fn: (error?: Error) => void): void {
    checkReceiver("onClose()", fn);
    this.#onClose = fn;
    if (this.#finished) this.#scheduleClose();
  }

  /**
   * Hands a chunk to the receiver. A receiver that throws has broken its
   * own state, so the channel is destroyed with what it threw rather than
   * letting the error escape into the runtime's event loop. What is no
   * Error is told as text that never throws to make (an object without
   * a prototype, a proxy): String() of it threw out of the delivery.
   */
  protected emitData(chunk: Uint8Array): void {
    if (this.#finished || this.#onData === undefined) return;
    try {
      this.#onData(chunk);
    } catch (error) {
      this.destroy(asError(error));
    }
  }

  /**
   * Marks the channel finished; returns false when it already was. The
   * close callback runs in a microtask so it never re-enters the code that
   * called `close()` or `destroy()`.
   */
  protected finish(error?: Error): boolean {
    if (this.#finished) return false;
    this.#finished = true;
    clearTimeout(this.#closeTimer);
    this.#closeError = error;
    this.#scheduleClose();
    return true;
  }

  /**
   * Ends this channel without a close notification, because its socket
   * now belongs to another channel (a TLS upgrade took it over): the
   * receivers are dropped and nothing is delivered any more.
   */
  protected retire(): void {
    this.#finished = true;
    clearTimeout(this.#closeTimer);
    this.#closeDelivered = true;
    this.#onData = undefined;
    this.#onClose = undefined;
  }

  /**
   * Bounds a graceful close that has bytes to flush: called by `close()`,
   * it destroys the channel, with a `ConnectionLostError`, once
   * {@linkcode CLOSE_STALL_MS} pass without `bufferedAmount` going down.
   */
  protected closeWithin(): void {
    let left = this.bufferedAmount;
    const check = () => {
      const now = this.bufferedAmount;
      if (now < left) {
        left = now;
        return arm();
      }
      this.destroy(
        new ConnectionLostError(
          this.endpoint,
          `closing, the peer took none of ${now} queued bytes in ` +
            `${CLOSE_STALL_MS} ms; they were dropped`,
        ),
      );
    };
    // Unreferenced: the socket keeps the process alive while it is open.
    const arm = () =>
      unrefTimer(this.#closeTimer = setTimeout(check, CLOSE_STALL_MS));
    arm();
  }

  #scheduleClose(): void {
    if (this.#onClose === undefined || this.#closeDelivered) return;
    this.#closeDelivered = true;
    const fn = this.#onClose;
    const error = this.#closeError;
    queueMicrotask(() => fn(error));
  }
}
