/**
 * The two waits of the request path, kept out of it: an attempt's wait for
 * a pool connection within its time (single requests and batch chunks
 * alike) and the send once it has one, and the wait before a retry, which
 * the caller's signal or the client's shutdown ends early. Neither is on
 * the way of a request that finds a connection ready.
 *
 * @module
 */

import { type Clock, wait } from "../clock.ts";
import type { ResolvedConfig } from "../config/shapes.ts";
import type { Connection } from "../connection/connection.ts";
import type { RequestOptions } from "../connection/types.ts";
import { notSent } from "../connection/refusals.ts";
import type { ManagedNode } from "../cluster/node.ts";
import { blameClock, clockFailed } from "../config/clock_failure.ts";
import { type ConfigError, RequestTimeoutError } from "../errors.ts";
import { asError } from "../errors/base.ts";
import { channels, type RequestMessage } from "../diagnostics/channels.ts";
import type { RequestDiagnostics } from "./request_diagnostics.ts";
import type { ClientRequestOptions } from "./request_options.ts";
import type { HedgeSink, RequestCall } from "./request_call.ts";

/** A connection that {@linkcode acquireWithin} waited for. */
export interface Waited {
  /** The pool's connection, shared. */
  readonly connection: Connection;
  /** What is left of the attempt's time for its reply, in ms. */
  readonly leftMs: number;
}

/**
 * Waits for a shared connection of `node` for an attempt that
 * `options.timeoutMs` bounds, the wait and the reply together, and tells
 * the diagnostics channels (with `message` when the attempt is observed).
 * Resolves with the connection and the ms left for the reply, or with the
 * error the attempt fails with: the pool's, or a RequestTimeoutError when
 * the wait used all of the time. A shared connection is not checked out:
 * an attempt that does not use it has nothing to give back. Never
 * rejects: a custom clock whose `now()` throws as the wait reads it is the
 * ConfigError naming `clock` (see {@linkcode blameClock}).
 */
export async function acquireWithin(
  config: ResolvedConfig,
  diagnostics: RequestDiagnostics,
  node: ManagedNode,
  options: ClientRequestOptions,
  message: RequestMessage | undefined,
): Promise<Waited | Error> {
  // Its callers void the wait: a throw here (the clock, as the wait starts
  // or ends) was an unhandled rejection, and the attempt never settled
  // and its node stayed charged. Caught once for all of them; the wait is
  // never on the way of a request that finds a connection ready.
  try {
    return await waitWithin(config, diagnostics, node, options, message);
  } catch (error) {
    return asError(blameClock(config.clock, error));
  }
}

/** {@linkcode acquireWithin}, which may throw. */
async function waitWithin(
  config: ResolvedConfig,
  diagnostics: RequestDiagnostics,
  node: ManagedNode,
  options: ClientRequestOptions,
  message: RequestMessage | undefined,
): Promise<Waited | Error> {
  const clock = config.clock;
  const limit = options.timeoutMs ?? config.requestTimeoutMs;
  const started = clock.now();
  let connection: Connection;
  try {
    connection = await node.pool.acquireShared({
      signal: options.signal,
      // The pool's own limit applies when it is the shorter one, and its
      // timeout error then names that limit.
      timeoutMs: limit < config.poolConfig.connectionTimeoutMs
        ? limit
        : undefined,
    });
  } catch (error) {
    if (channels.poolCheckout.hasSubscribers) {
      const waitMs = clock.now() - started;
      diagnostics.checkout(node.address, "shared", undefined, waitMs, error);
    }
    return error as Error;
  }
  const waitMs = clock.now() - started;
  if (message !== undefined || channels.poolCheckout.hasSubscribers) {
    diagnostics.checkedOut(message, node.address, connection.id, waitMs);
  }
  const leftMs = limit - waitMs;
  return leftMs > 0
    ? { connection, leftMs }
    : new RequestTimeoutError(node.address, limit, { sent: false });
}

/**
 * The attempt waits for a pool connection. Its `timeoutMs` bounds the
 * wait and the reply together: what the wait used is taken off the time
 * the reply may take. The attempt is `call`'s main one, or a hedge of it
 * (`sink`), charged to `node` already; its outcome goes to `sink`.
 */
export async function waitThenSend(
  config: ResolvedConfig,
  diagnostics: RequestDiagnostics,
  call: RequestCall,
  node: ManagedNode,
  options: ClientRequestOptions,
  sink: RequestCall | HedgeSink,
): Promise<void> {
  const waited = await acquireWithin(
    config,
    diagnostics,
    node,
    options,
    sink.message,
  );
  if (waited instanceof Error) return sink.onError(waited);
  if (call.done) {
    // Another attempt answered, or the request ended, meanwhile: this
    // one is booked as never made, and the node not charged for it.
    node.inFlight--;
    call.outstanding--;
    if (sink.message === undefined) return;
    return diagnostics.failed(call, sink.message, notSent(), false);
  }
  const sendOptions: RequestOptions = {
    timeoutMs: waited.leftMs,
    signal: options.signal,
    idempotent: options.idempotent,
  };
  waited.connection.submitRequest(call.payload, sendOptions, sink);
}

/**
 * The waits between retries of one client: each woken early by its
 * caller's signal, or all at once by the client's shutdown. One listener
 * per signal, however many waits share it: a listener per wait made each
 * add and remove scan the signal's listeners (20,000 retries of one
 * signal took Deno 4.2 s against 1.5 s without it, 40,000 took 17.7 s),
 * and Node warned of a leak past ten.
 */
export class RetryWaits {
  readonly #all = new Set<AbortController>();
  readonly #bySignal = new Map<AbortSignal, Set<AbortController>>();

  /** Wakes every wait (the client shuts down). */
  wakeAll(): void {
    for (const wake of this.#all) wake.abort();
  }

  /** `wake` waits, to be woken by `signal` too. */
  add(wake: AbortController, signal: AbortSignal | undefined): void {
    this.#all.add(wake);
    if (signal === undefined) return;
    let group = this.#bySignal.get(signal);
    if (group === undefined) {
      group = new Set();
      this.#bySignal.set(signal, group);
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    group.add(wake);
  }

  /** `wake`'s wait is over. */
  delete(wake: AbortController, signal: AbortSignal | undefined): void {
    this.#all.delete(wake);
    if (signal === undefined) return;
    const group = this.#bySignal.get(signal);
    if (group === undefined || !group.delete(wake) || group.size > 0) return;
    this.#bySignal.delete(signal);
    signal.removeEventListener("abort", this.#onAbort);
  }

  /** Listeners on callers' signals (for tests of the above). */
  get listening(): number {
    return this.#bySignal.size;
  }

  #onAbort = (event: Event): void => {
    const signal = event.target as AbortSignal;
    const group = this.#bySignal.get(signal);
    this.#bySignal.delete(signal);
    // Gone already (once), but said: a caller counting listeners sees it.
    signal.removeEventListener("abort", this.#onAbort);
    for (const wake of group ?? []) wake.abort();
  };
}

/**
 * Waits `delayMs` before a retry, or less: `signal` aborting ends the
 * wait, and so does the client's shutdown (`waits.wakeAll()`). Never
 * rejects: the caller checks why it woke. Resolves with the ConfigError
 * naming the clock when its `setTimeout()` threw (nothing waited):
 * swallowed as a wake, the retry went out at once, with no backoff.
 */
export async function waitToRetry(
  clock: Clock,
  delayMs: number,
  signal: AbortSignal | undefined,
  waits: RetryWaits,
): Promise<ConfigError | undefined> {
  // One controller ends the wait for either reason.
  const wake = new AbortController();
  waits.add(wake, signal);
  try {
    await wait(clock, delayMs, wake.signal);
  } catch (thrown) {
    // Woken early, or (not woken) the clock threw (see wait).
    if (!wake.signal.aborted) return clockFailed(clock, thrown, "setTimeout");
  } finally {
    waits.delete(wake, signal);
  }
  return undefined;
}
