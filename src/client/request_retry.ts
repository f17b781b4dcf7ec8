/**
 * The request path's side of a failed attempt: the failure booked against
 * its node, then the decision (retry, end, or wait for a hedge still out),
 * the retry budget's say, the `retry` event and the backoff before the
 * next attempt. Apart from request_path.ts because it runs only when an
 * attempt failed, never for a request answered the first time; the rule
 * of what is safe to retry is retry.ts's, shared with `executeWithRetry`.
 *
 * @module
 */

import type { ResolvedConfig } from "../config/shapes.ts";
import type { ConnectionManager } from "../cluster/manager.ts";
import type { ManagedNode } from "../cluster/node.ts";
import {
  AbortedError,
  ClientClosedError,
  type ConfigError,
  NoHealthyNodesError,
  RemoteError,
  RetriesExhaustedError,
} from "../errors.ts";
import type { RequestMessage } from "../diagnostics/channels.ts";
import { blameClock, readClock } from "../config/clock_failure.ts";
import { delayFor, retryableAfter } from "./retry.ts";
import type { RetryBudgetEventDetail, RetryEventDetail } from "./events.ts";
import type { RetryBudget } from "./retry_budget.ts";
import type { RequestDiagnostics } from "./request_diagnostics.ts";
import type { RequestCall } from "./request_call.ts";
import { aborted } from "./request_errors.ts";
import { type RetryWaits, waitToRetry } from "./waits.ts";
import type { ClientRequestOptions } from "./request_options.ts";

/** What the retry decision needs from the client that owns the path. */
export interface RetryOwner {
  /** Whether the client is shutting down: no retry starts then. */
  closing(): boolean;
  /** A retry was decided; the client tells its listeners. */
  retrying(detail: RetryEventDetail): void;
  /** A retry was refused by the budget; the client tells its listeners. */
  budgetSpent(detail: RetryBudgetEventDetail): void;
}

/**
 * What the retry decision reads and calls on the request path, which
 * implements it (RequestPath). Named here rather than taken from
 * request_path.ts, which imports this file: no import cycle.
 */
export interface RetryingPath {
  /** The client that owns the path. */
  readonly owner: RetryOwner;
  /** The cluster: failures booked against nodes, latencies learned. */
  readonly manager: ConnectionManager;
  /** The client's resolved config: its clock and retry settings. */
  readonly config: ResolvedConfig;
  /** Retries allowed by recent traffic; undefined when turned off. */
  readonly budget: RetryBudget | undefined;
  /** Requests waiting to be retried; woken at once by a shutdown. */
  readonly retryWaits: RetryWaits;
  /** Publishes on the diagnostics channels, when anyone listens. */
  readonly diagnostics: RequestDiagnostics;
  /** Whether each attempt is timed (the balancer weighs reply times). */
  readonly timed: boolean;
  /**
   * The options of requests whose first attempt had less time, to the
   * options their retries go on with (RequestPath.firstAttempt).
   */
  readonly firstOnly:
    | WeakMap<ClientRequestOptions, ClientRequestOptions>
    | undefined;
  /** Attempts after the first. */
  retryCount: number;
  /** The request failed for good, decided by the attempt of `message`. */
  end(call: RequestCall, error: unknown, message?: RequestMessage): void;
  /** The next attempt of `call`, whose last one failed with `error`. */
  dispatchRetry(call: RequestCall, error: unknown): void;
  /** What the client learns from an outcome was lost to the clock. */
  samplesLost(thrown: unknown): void;
}

/**
 * An attempt failed: the failure is booked against its node (when it was
 * the node's doing), then the request is retried or ends.
 */
export function bookFailure(
  path: RetryingPath,
  call: RequestCall,
  node: ManagedNode,
  error: Error,
  started: number,
  message: RequestMessage | undefined,
): void {
  node.inFlight--;
  let others = -1;
  // Called from a connection's sink: a throw (a custom clock whose now()
  // throws) was reported as uncaught there, the request never settled
  // and stayed counted. The try costs nothing until it catches, and
  // this runs only when an attempt failed.
  try {
    path.manager.recordRequestFailure(node, error);
    if (path.timed) {
      // Named where it threw (readClock): asked again below, a clock
      // that threw once read fine, and the request failed with its raw
      // Error.
      const now = readClock(path.config.clock);
      path.manager.recordLatency(node, started, now, error);
    }
    others = --call.outstanding;
    decide(path, call, node, error, message, others);
  } catch (thrown) {
    // Thrown before the attempt's outcome was published (see decide):
    // it is published here, once, whatever the request does next.
    if (others < 0) others = --call.outstanding;
    if (!call.done && others === 0) {
      path.end(call, blameClock(path.config.clock, thrown), message);
    } else {
      if (message) path.diagnostics.failed(call, message, error, false);
      path.samplesLost(thrown);
    }
  }
}

/**
 * The failed attempt is booked; with `others` attempts still out, the
 * request is retried, ends, or waits for them.
 */
function decide(
  path: RetryingPath,
  call: RequestCall,
  node: ManagedNode,
  error: Error,
  message: RequestMessage | undefined,
  others: number,
): void {
  // Another attempt is still out (hedged), or the request already has
  // its outcome: this failure decides nothing. Unless it is a node's
  // answer that it will not do the request: the first answer is the
  // request's, an error as much as a reply, so the request does not
  // wait for a slower attempt to say so again.
  if (
    call.done ||
    (others > 0 && !(error instanceof RemoteError && !error.retryable))
  ) {
    if (message) path.diagnostics.failed(call, message, error, false);
    return;
  }
  const options = call.options;
  const signal = options.signal;
  // The caller asked to stop; an attempt may have failed because of it
  // with some other error.
  if (signal?.aborted && !(error instanceof AbortedError)) {
    return path.end(call, aborted(signal), message);
  }
  if (!shouldRetry(path.owner, error, options)) {
    return path.end(call, error, message);
  }
  const retryConfig = path.config.retryConfig;
  if (call.attempt >= retryConfig.maxRetries) {
    return path.end(
      call,
      new RetriesExhaustedError(call.attempt + 1, error),
      message,
    );
  }
  const budget = path.budget;
  if (
    budget !== undefined && !budget.tryWithdraw(readClock(path.config.clock))
  ) {
    // Retrying now would add load to a cluster that is failing more
    // than the budget allows: the request fails with its own error. The
    // notice reads the clock (the event's time), as the `retry` event
    // does below: a custom one that throws there ended the request with
    // the clock's raw throw in place of its own error. Only the notice
    // is lost.
    try {
      path.owner.budgetSpent({
        attempt: call.attempt + 1,
        error,
        address: node.address,
      });
    } catch (thrown) {
      path.samplesLost(thrown);
    }
    return path.end(call, error, message);
  }
  const delayMs = delayFor(call.attempt, retryConfig);
  if (message) path.diagnostics.failed(call, message, error, true);
  call.attempt++;
  path.retryCount++;
  // The event reads the clock (its time): a custom one that throws there
  // ended the request after its attempt was published as retried, and
  // that attempt was published again. The retry goes on, as published;
  // only the event is lost.
  try {
    path.owner.retrying({
      attempt: call.attempt,
      delayMs,
      error,
      address: node.address,
    });
  } catch (thrown) {
    path.samplesLost(thrown);
  }
  backOff(path, call, delayMs, error);
}

/**
 * Waits `delayMs`, then makes the next attempt, unless told to stop;
 * `error` is the last attempt's (carried here, not on the call, which
 * every request in flight holds).
 */
async function backOff(
  path: RetryingPath,
  call: RequestCall,
  delayMs: number,
  error: unknown,
): Promise<void> {
  const signal = call.options.signal;
  // A `retry` listener may already have aborted the signal or
  // disconnected the client: neither would wake a wait that starts
  // after it, so there is none.
  let unarmed: ConfigError | undefined;
  if (!signal?.aborted && !path.owner.closing()) {
    unarmed = await waitToRetry(
      path.config.clock,
      delayMs,
      signal,
      path.retryWaits,
    );
  }
  if (signal?.aborted) return path.end(call, aborted(signal));
  if (path.owner.closing()) {
    return path.end(
      call,
      new ClientClosedError(
        "the client disconnected while the request waited to be retried",
      ),
    );
  }
  // A backoff the clock could not time: the request ends with the clock's
  // failure rather than retry at once (a storm of retries against a node
  // that just failed, with none of the backoff it is owed).
  if (unarmed !== undefined) return path.end(call, unarmed);
  const full = path.firstOnly?.get(call.options);
  if (full !== undefined) call.options = full;
  path.dispatchRetry(call, error);
}

/** Whether a request whose attempt failed with `error` is tried again. */
function shouldRetry(
  owner: RetryOwner,
  error: unknown,
  options: ClientRequestOptions,
): boolean {
  // With no healthy node the client fails fast instead of backing off.
  return options.retry !== false && !owner.closing() &&
    !(error instanceof NoHealthyNodesError) &&
    retryableAfter(error, options.idempotent === true);
}
