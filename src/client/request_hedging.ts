/**
 * The request path's side of a hedged request: the hedge sent once its
 * delay passed with no reply (to another node, on the retry budget), and
 * a hedge's reply booked. Apart from request_path.ts because only a
 * request that may be hedged gets here, never one that may not; the
 * policy (when a hedge is due, what each node's replies took) is
 * hedging.ts's.
 *
 * @module
 */

import type { ManagedNode } from "../cluster/node.ts";
import { notSent } from "../connection/refusals.ts";
import { channels, requestObserved } from "../diagnostics/channels.ts";
import { blameClock, readClock } from "../config/clock_failure.ts";
import { HedgeSink, type RequestCall } from "./request_call.ts";
import type { RetryingPath } from "./request_retry.ts";
import { waitThenSend } from "./waits.ts";

/**
 * What hedging reads and calls on the request path, which implements it
 * (RequestPath): the retry decision's view of it (request_retry.ts), and
 * the counters and settling of a request a hedge answered.
 */
export interface HedgingPath extends
  Pick<
    RetryingPath,
    | "owner"
    | "manager"
    | "config"
    | "budget"
    | "diagnostics"
    | "timed"
    | "firstOnly"
    | "end"
    | "samplesLost"
  > {
  /** Hedged attempts sent. */
  hedgeCount: number;
  /** Requests that got a reply. */
  succeededCount: number;
  /** One request settled. */
  settle(): void;
}

/**
 * The hedge delay passed with no reply: one more attempt, to another
 * node, if the retry budget allows it.
 */
export function hedgeNow(path: HedgingPath, call: RequestCall): void {
  const hedge = call.hedge!;
  if (call.done || call.outstanding === 0 || path.owner.closing()) return;
  let node: ManagedNode;
  try {
    node = path.manager.pickNode(call.node);
  } catch {
    return; // No healthy node to hedge to.
  }
  // Another attempt to the same node would only add to its queue.
  if (node === call.node) return;
  const budget = path.budget;
  // From a timer, so a throw (a custom clock whose now() throws, a pool
  // that throws) escaped as uncaught; and the clock was read after the
  // node was charged, which then stayed charged. Read once, before; a
  // throw ends the request, as in RequestPath's #dispatch.
  let charged = false;
  let sink: HedgeSink | undefined;
  try {
    const now = readClock(path.config.clock);
    if (budget !== undefined && !budget.tryWithdraw(now)) return;
    path.hedgeCount++;
    hedge.sent++;
    node.inFlight++;
    call.outstanding++;
    charged = true;
    sink = new HedgeSink(call, node, now);
    if (requestObserved()) {
      sink.message = path.diagnostics.started(call, node.address, true);
    }
    // A new attempt, as a retry is: its whole `timeoutMs`, not what a
    // lazy client's connect left of the first attempt's (see firstAttempt).
    const options = path.firstOnly?.get(call.options) ?? call.options;
    const connection = node.pool.tryAcquireShared();
    if (connection !== undefined) {
      if (
        sink.message !== undefined || channels.poolCheckout.hasSubscribers
      ) {
        path.diagnostics.checkedOut(
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
      waitThenSend(path.config, path.diagnostics, call, node, options, sink);
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
      path.hedgeCount--;
      hedge.sent--;
      node.inFlight--;
      call.outstanding--;
    }
    if (!call.done) {
      path.end(
        call,
        blameClock(path.config.clock, error),
        undone ?? call.message,
      );
    } else if (undone !== undefined) {
      path.diagnostics.failed(call, undone, notSent(), false);
    }
  }
}

/** A hedged attempt got its reply. */
export function bookHedgeReply(
  path: HedgingPath,
  sink: HedgeSink,
  reply: Uint8Array,
): void {
  const call = sink.call;
  const node = sink.node;
  node.inFlight--;
  node.health.recordRequestSuccess();
  call.outstanding--;
  const hedge = call.hedge!;
  // As in RequestPath's succeeded: a clock that throws costs the reply's
  // samples, never the request its reply, nor the hedge's start its
  // outcome.
  try {
    if (path.timed) {
      path.manager.recordLatency(
        node,
        sink.started,
        path.config.clock.now(),
      );
    }
  } catch (thrown) {
    path.samplesLost(thrown);
  }
  if (sink.message !== undefined) {
    path.diagnostics.replied(call, sink.message, reply, !call.done);
  }
  try {
    hedge.answered(node, path.config.clock.now() - sink.started);
  } catch (thrown) {
    path.samplesLost(thrown);
  }
  if (call.done) return;
  call.done = true;
  hedge.finish();
  path.succeededCount++;
  path.settle();
  call.resolve(reply);
}
