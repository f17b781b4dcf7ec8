/**
 * The records a connection keeps for its requests in flight, and what
 * becomes of them when the socket is congested or the connection ends.
 *
 * @module
 */

import type { DeadlineEntry } from "./deadlines.ts";
import type { FrameWriter } from "./frame_writer.ts";
import type { PendingTable } from "./pending_table.ts";
import type { ReplySink } from "./types.ts";
import { rejection, type Resolve } from "./resolve_only.ts";
import { reportThrow } from "./uncaught.ts";
import {
  ConnectionClosedError,
  ConnectionLostError,
  type Endpoint,
  NodewireError,
} from "../errors.ts";

/**
 * Marks a {@linkcode Pending}'s `type` for a request that is safe to
 * repeat (idempotent, or a ping), above the frame type's byte: whether a
 * timeout or a lost connection leaves it retryable.
 */
export const SAFE_TO_REPEAT = 0x100;

/** The frame type's byte of a {@linkcode Pending}'s `type`. */
export const FRAME_TYPE = 0xff;

/**
 * One request in flight: a record of six fields, since a connection may
 * hold a hundred thousand of them. What only some requests need (an abort
 * signal, a frame held back by congestion) lives in records of its own.
 */
export interface Pending extends DeadlineEntry {
  /** The request's sequence number, which its reply carries back. */
  readonly sequence: number;
  /**
   * The frame type sent (REQUEST or PING; the reply type follows from it),
   * with {@linkcode SAFE_TO_REPEAT} set for a request safe to repeat.
   */
  readonly type: number;
  /** Where the outcome goes. */
  readonly sink: ReplySink;
  /** The signal listened to for it, until the request settles. */
  abort: AbortSignal | undefined;
}

/** A request whose frame waits for a congested socket to drain. */
export interface HeldFrame {
  /** The request the frame belongs to. */
  readonly pending: Pending;
  /** The frame's flags. */
  readonly flags: number;
  /** The frame's payload, written once the socket drains. */
  readonly payload: Uint8Array;
}

/**
 * Whether `pending`'s frame is among `held` (in sequence order): a binary
 * search, since each expiry asks, and a scan made n expiries n² steps.
 */
export function isHeld(held: readonly HeldFrame[], pending: Pending): boolean {
  const sequence = pending.sequence;
  let low = 0;
  let high = held.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (held[mid].pending.sequence < sequence) low = mid + 1;
    else high = mid;
  }
  return low < held.length && held[low].pending === pending;
}

/**
 * Hands `error` to `sink`. A sink that throws is its caller's bug, not the
 * node's: the throw is reported as uncaught (as a throwing event
 * listener's is), and the connection and its other requests carry on.
 */
export function tellError(
  sink: ReplySink,
  error: Error,
  sequence: number,
): void {
  try {
    sink.onError(error, sequence);
  } catch (thrown) {
    reportThrow(thrown);
  }
}

/**
 * Settles a promise from a connection, keeping only its resolve function
 * (see resolve_only.ts for why).
 */
export class PromiseSink implements ReplySink {
  /** Settles the promise behind `resolve`. */
  constructor(readonly resolve: Resolve<Uint8Array>) {}

  /** Fulfils the promise with `payload`. */
  onReply(payload: Uint8Array): void {
    this.resolve(payload);
  }

  /** Rejects the promise with `error`. */
  onError(error: Error): void {
    this.resolve(rejection(error));
  }
}

/**
 * Writes held frames, in order, whose requests are still in `table` (a
 * closed connection's table is empty), until `writer` is congested again.
 * A frame whose sink is `done` (its caller has its outcome already) is not
 * written but handed to `unwanted`. Returns the frames still held, those
 * after the one that congested it, or undefined when none are left.
 */
export function writeHeld(
  held: readonly HeldFrame[],
  writer: FrameWriter,
  table: PendingTable<Pending>,
  unwanted: (pending: Pending) => void,
): HeldFrame[] | undefined {
  for (let i = 0; i < held.length; i++) {
    const { pending: p, flags, payload } = held[i];
    if (table.get(p.sequence) !== p) continue;
    if (isDone(p.sink)) {
      unwanted(p);
      continue;
    }
    writer.push(p.type & FRAME_TYPE, flags, p.sequence, payload);
    if (writer.congested) return held.slice(i + 1);
  }
  return undefined;
}

/**
 * Whether `sink` says its caller has its outcome already; a getter that
 * throws is the sink's author's bug, reported as uncaught (the frame then
 * goes out, as from a sink that says nothing).
 */
function isDone(sink: ReplySink): boolean {
  try {
    return sink.done === true;
  } catch (thrown) {
    reportThrow(thrown);
    return false;
  }
}

/**
 * The error for work a lost connection fails. `sent` says whether the
 * request had been written, so whether it may have reached the node, and
 * `retryable` whether retrying it is still safe;
 * `cause` is what ended the connection, returned as is when it already
 * says the same; `closedHow` is the reason when the cause does not say one
 * (none, not a NodewireError, or a ConnectionClosedError, whose message
 * would name the address again).
 */
export function lostError(
  endpoint: Endpoint,
  sent: boolean,
  cause: Error | undefined,
  retryable = true,
  closedHow = "the connection was closed",
): ConnectionLostError {
  if (
    cause instanceof ConnectionLostError && cause.sent === sent &&
    cause.retryable === retryable
  ) {
    return cause;
  }
  if (cause instanceof ConnectionLostError) {
    // The same loss, told for a request of another kind.
    return new ConnectionLostError(endpoint, cause.reason, {
      cause: cause.cause,
      sent,
      retryable,
    });
  }
  const reason =
    cause instanceof NodewireError && !(cause instanceof ConnectionClosedError)
      ? cause.message
      : closedHow;
  return new ConnectionLostError(endpoint, reason, {
    cause,
    sent,
    retryable,
  });
}
