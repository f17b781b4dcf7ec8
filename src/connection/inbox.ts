/**
 * A connection's control inbox: the messages that answer no pending
 * request (HELLO_OK, NEGOTIATE_OK, AUTH_*, anything unsolicited) and the
 * callers of `receiveMessage` waiting for them. Only the handshake uses
 * it, so it holds nothing on the request path.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { onceTimer } from "../config/clock_failure.ts";
import { AbortedError, ProtocolError, RequestTimeoutError } from "../errors.ts";
import type { Message } from "../protocol/frame.ts";

/** Takes the next control message, or the error that ended the wait. */
type Waiter = (message: Message | Error) => void;

/**
 * Control messages kept for `receiveMessage` before the connection fails
 * with a ProtocolError: a handshake takes its replies as they come.
 */
const MAX_KEPT = 64;
const MAX_KEPT_BYTES = 1 << 20;

/**
 * Control messages in arrival order, each handed to the oldest waiter or
 * kept until someone asks.
 */
export class ControlInbox {
  // Made on first use: most connections see a handful of control messages
  // at the start and none after.
  #messages: Message[] | undefined;
  #waiters: Waiter[] | undefined;
  // Payload bytes kept: with their number, bounded (see deliver).
  #bytes = 0;

  /** Messages kept, not yet taken. */
  get size(): number {
    return this.#messages?.length ?? 0;
  }

  /** The oldest kept message, removed, if any. */
  take(): Message | undefined {
    const message = this.#messages?.shift();
    if (message !== undefined) this.#bytes -= message.payload.length;
    return message;
  }

  /** Hands `message` to the oldest waiter, or keeps it for the next one. */
  deliver(message: Message): void {
    const waiter = this.#waiters?.shift();
    if (waiter) return waiter(message);
    const kept = this.#messages ??= [];
    // A node that keeps sending messages nobody asked for (AUTH_OK after
    // the handshake, say) would otherwise grow this without end.
    const bytes = this.#bytes + message.payload.length;
    if (kept.length >= MAX_KEPT || bytes > MAX_KEPT_BYTES) {
      throw new ProtocolError(
        `the node sent ${kept.length + 1} control messages (type ` +
          `0x${message.type.toString(16)} last) that nobody received`,
      );
    }
    kept.push(message);
    this.#bytes = bytes;
  }

  /**
   * Hands `message` to the oldest waiter if one waits: an ERROR answering
   * a control message, so a handshake fails at once instead of at its
   * timeout. False when nobody waits.
   */
  answer(message: Message): boolean {
    const waiter = this.#waiters?.shift();
    if (waiter === undefined) return false;
    waiter(message);
    return true;
  }

  /**
   * Waits for the next message, for at most `timeoutMs` (`Infinity`: no
   * limit) on `clock`. `onTaken` runs as the message is handed over,
   * while the chunk holding it is still being delivered.
   *
   * @throws {RequestTimeoutError} after `timeoutMs` (naming `address`).
   * @throws {AbortedError} when `options.signal` aborts.
   */
  wait(
    options: { signal?: AbortSignal },
    timeoutMs: number,
    clock: Clock,
    address: string,
    onTaken: (() => void) | undefined,
  ): Promise<Message> {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        // A custom clock whose clearTimeout() throws: the wait still
        // ends as it would have (the message handed over, the error or
        // the abort told), and the timer it could not clear finds it
        // over. Let out, the throw left the promise unsettled for good,
        // went out of the socket's delivery, the abort's dispatch or the
        // timer, and stopped fail() from failing the waiters after it.
        limit?.cancel();
        options.signal?.removeEventListener("abort", onAbort);
        const i = this.#waiters?.indexOf(waiter) ?? -1;
        if (i >= 0) this.#waiters!.splice(i, 1);
      };
      const waiter = (message: Message | Error) => {
        cleanup();
        if (message instanceof Error) return reject(message);
        onTaken?.();
        resolve(message);
      };
      const onAbort = () => {
        cleanup();
        reject(new AbortedError("receive aborted", options.signal?.reason));
      };
      // One whose setTimeout() throws rejects the wait with the
      // ConfigError naming it, before it waits.
      const limit = timeoutMs === Infinity
        ? undefined
        : onceTimer(clock, timeoutMs, () => {
          cleanup();
          // Waiting for a control message: whatever the caller retries (a
          // connect, a handshake) starts over on a new connection, so safe.
          reject(
            new RequestTimeoutError(address, timeoutMs, { retryable: true }),
          );
        });
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      (this.#waiters ??= []).push(waiter);
    });
  }

  /** Fails every waiter, each with an error from `error()`. */
  fail(error: () => Error): void {
    for (const w of this.#waiters?.splice(0) ?? []) w(error());
  }
}

/** The parts of a connection's core that {@linkcode receiveControl} reads. */
export interface InboxHolder {
  /** The core's control inbox. */
  readonly inbox: ControlInbox;
  /** The connection, named in a timeout by its address. */
  readonly owner: { readonly address: string };
  /** Reads the stream no further (see ConnectionCore.pause). */
  pause(): void;
}

/**
 * The next control message of `core`, now or once it arrives (see
 * Connection.receiveMessage); with `pauseReading`, reading stops behind
 * it. A closed connection's `lost` error fails the wait.
 */
export function receiveControl(
  core: InboxHolder,
  options: { signal?: AbortSignal; pauseReading?: boolean },
  timeoutMs: number,
  clock: Clock,
  lost: (() => Error) | undefined,
): Promise<Message> {
  const next = core.inbox.take();
  if (next) {
    if (options.pauseReading) core.pause();
    return Promise.resolve(next);
  }
  if (lost !== undefined) return Promise.reject(lost());
  return core.inbox.wait(
    options,
    timeoutMs,
    clock,
    core.owner.address,
    // Runs while the chunk holding the message is being delivered, so
    // the adapter issues no further read.
    options.pauseReading ? () => core.pause() : undefined,
  );
}
