/**
 * A run of requests sent at once on one connection (a Client batch's
 * chunk): one check of the connection for the whole run, consecutive
 * sequence numbers, frames encoded in one go, and one sink for all of them.
 * Kept apart from the single-request path of connection.ts, which it
 * mirrors record for record.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { isDuration } from "../config/validate.ts";
import { badTimeout, payloadTooLarge } from "./refusals.ts";
import { invalidPayload, isPayload } from "./payload.ts";
import { lengthOf } from "../protocol/payload_length.ts";
import { FrameFlags, MessageType } from "../protocol/frame.ts";
import { RUN_WRITE_FRAMES } from "./write_parts.ts";
import type { ConnectionCore } from "./core.ts";
import { type Pending, SAFE_TO_REPEAT, tellError } from "./in_flight.ts";
import type { BatchReplySink, RequestRoute } from "./types.ts";

/** How a run is sent: where, under which limits, with which options. */
export interface RunTarget {
  /** The connection's core (its table, deadlines and writer). */
  readonly core: ConnectionCore;
  /** The route requests take instead of the stream, if any. */
  readonly route: RequestRoute | undefined;
  /** The largest payload the node takes. */
  readonly sendLimit: number;
}

/**
 * Why a run given straight to `Connection.submitBatch` cannot be sent: a
 * range outside `payloads` or a bad timeout (the Client checked its own at
 * the door); undefined when it can.
 */
export function runProblem(
  payloads: readonly Uint8Array[],
  from: number,
  to: number,
  timeoutMs: number | undefined,
): InvalidArgumentError | undefined {
  // Read once, in a try: a revoked proxy throws even for Array.isArray,
  // and a proxy's length getter may throw (a /core caller's array).
  let count: number;
  try {
    if (!Array.isArray(payloads)) {
      return new InvalidArgumentError(
        "payloads",
        payloads,
        "expected an array",
      );
    }
    count = payloads.length;
  } catch (cause) {
    return new InvalidArgumentError(
      "payloads",
      undefined,
      "could not be read",
      {
        cause,
      },
    );
  }
  if (
    !Number.isInteger(from) || !Number.isInteger(to) || from < 0 ||
    to < from || to > count
  ) {
    return new InvalidArgumentError(
      "from, to",
      `${from}, ${to}`,
      `expected 0 <= from <= to <= ${count}`,
    );
  }
  if (timeoutMs !== undefined && !isDuration(timeoutMs)) {
    return badTimeout(timeoutMs);
  }
  return undefined;
}

/**
 * Sends `payloads[from]` to `payloads[to - 1]` with sequence numbers from
 * `first` on (which the caller has told `sink`: see `setFirst`). A payload over a limit is not sent, and is reported to `sink`
 * once the whole run is in flight; the others each get the usual in-flight
 * record (the same shape as a single request's) and deadline.
 *
 * Reporting a refusal runs the caller's code (a Client books it against
 * the node, which may eject the node and close this very connection), so
 * none runs while the run is half sent: the rest of the run would go into
 * a closed connection's table, and never settle.
 */
export function submitRun(
  target: RunTarget,
  first: number,
  payloads: readonly Uint8Array[],
  from: number,
  to: number,
  timeoutMs: number,
  idempotent: boolean,
  sink: BatchReplySink,
): number {
  const { core, route, sendLimit } = target;
  const table = core.table;
  const writer = core.writer;
  // One clock reading and timer check for the run; the timer fires only
  // once the entries are in the table.
  const deadline = core.deadlines.deadlineFor(timeoutMs);
  const flags = idempotent ? FrameFlags.Idempotent : 0;
  const type = MessageType.Request | (idempotent ? SAFE_TO_REPEAT : 0);
  let sent = 0;
  // Sequence numbers and errors of the payloads refused; made only for one.
  let refused: (number | Error)[] | undefined;
  // A run of many goes out whole as it is encoded (see RUN_WRITE_FRAMES).
  const whole = to - from >= RUN_WRITE_FRAMES;
  const partAt = whole ? writer.holdParts() : 0;
  // Counted while the loop runs: a cancel of this run from inside it (a
  // sink's callback, run by a part's write) is applied again once the
  // loop is done (see lateCancels). Once a run, not once a request.
  runsSending++;
  try {
    for (let i = from, sequence = first; i < to; i++, sequence++) {
      const payload = payloads[i];
      if (!isPayload(payload)) {
        (refused ??= []).push(sequence, invalidPayload(payload));
        continue;
      }
      const length = lengthOf(payload); // its real one: see codec.ts
      if (length > sendLimit) {
        (refused ??= []).push(
          sequence,
          payloadTooLarge(
            length,
            sendLimit,
            core.codec.maxFrameSize,
            sink,
          ),
        );
        continue;
      }
      if (route !== undefined && length > route.maxPayload) {
        (refused ??= []).push(sequence, route.tooLarge(length));
        continue;
      }
      const pending: Pending = {
        sequence,
        type,
        sink,
        abort: undefined,
        deadline,
        timeoutMs,
      };
      table.add(pending);
      if (route !== undefined) {
        try {
          route.send(MessageType.Request, flags, sequence, payload);
        } catch (thrown) {
          // The connection ends; this request and the run's others fail
          // with it (see routeThrew, and failLate below).
          core.routeThrew(thrown);
        }
      } else if (writer.congested) {
        core.queued.push({ pending, flags, payload });
      } else {
        writer.push(MessageType.Request, flags, sequence, payload, length);
      }
      sent++;
    }
  } finally {
    runsSending--;
    if (lateCancels !== undefined) reapplyCancels();
  }
  // Before the check below: this write may end the connection, as a
  // part's may.
  if (whole) writer.sendRun(partAt);
  // Once a run, not once a request: a send that ended the connection
  // midway (a part's write, see frame_writer.ts) left the rest of the run
  // in a closed connection's table; the writer, discarded, wrote none of
  // their frames.
  if (core.closed) core.failLate();
  if (refused !== undefined) {
    // A sink that throws is its caller's bug (reported as uncaught): the
    // other refusals are still reported, and the run counted as sent.
    for (let i = 0; i < refused.length; i += 2) {
      tellError(sink, refused[i + 1] as Error, refused[i] as number);
    }
  }
  return sent;
}

/** A cancel made while a run was being sent: `cancelRun`'s arguments. */
interface LateCancel {
  readonly core: ConnectionCore;
  readonly sink: BatchReplySink;
  readonly first: number;
  readonly count: number;
  readonly error: Error;
  readonly next: number;
}

// How many runs are being sent (a sink's callback, run from inside a
// part's write, may submit another), and the cancels made meanwhile. A
// cancel from inside a run finds only the requests the run has added so
// far; those it adds after are cancelled by applying it again once its
// loop is done (cancelRun settles each request once, so again is
// harmless). Kept until the outermost run is done: a cancel made inside a
// run nested in another may be of the outer one.
let runsSending = 0;
let lateCancels: LateCancel[] | undefined;

/** Applies the cancels made while runs were being sent (see lateCancels). */
function reapplyCancels(): void {
  const cancels = lateCancels!;
  if (runsSending === 0) lateCancels = undefined;
  // Not through cancelRun: these are noted already.
  for (const { core, sink, first, count, error, next } of cancels) {
    cancelNow(core, sink, first, count, error, next);
  }
}

/**
 * Fails with `error` the requests of the run of `count` sent to `sink`
 * from sequence number `first` on (its `first`) that are still in flight,
 * looking no further than `next` (the next sequence number to be handed
 * out); a late reply to one of them is then dropped, and a frame not yet
 * sent is taken back, never sent (as for a single request's abort). Made
 * while the run is being sent (from a sink's callback), it fails the
 * requests the run adds after it too, once the run is sent.
 */
export function cancelRun(
  core: ConnectionCore,
  sink: BatchReplySink,
  first: number,
  count: number,
  error: Error,
  next: number,
): void {
  // Read once, by the caller; a sink's `first` that is no sequence number
  // (a /core caller's) names no request, and the loop stays within what
  // was sent.
  if (!Number.isSafeInteger(first)) return;
  if (runsSending > 0) {
    (lateCancels ??= []).push({ core, sink, first, count, error, next });
  }
  cancelNow(core, sink, first, count, error, next);
}

/** What cancelRun does to the requests in flight now. */
function cancelNow(
  core: ConnectionCore,
  sink: BatchReplySink,
  first: number,
  count: number,
  error: Error,
  next: number,
): void {
  const end = Math.min(first + count, next);
  for (let sequence = Math.max(first, 1); sequence < end; sequence++) {
    const pending = core.table.get(sequence);
    if (
      pending !== undefined && pending.sink === sink && core.settle(pending)
    ) {
      core.takeBack(pending);
      // Every item is cancelled, whatever the sink throws for one.
      tellError(sink, error, sequence);
    }
  }
}
