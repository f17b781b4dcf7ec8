/**
 * A lazy client's first connect (`Client.connect({ lazy: true })`): the
 * one connect every call waits on until it succeeds, each call within its
 * own time limit and signal, the requests and batches that wait on it
 * (apart from `Client.request`, which stays as lean as an eager client's),
 * and the errors of a call whose limit passed during it. Held only by a
 * lazy client, until that connect succeeds.
 *
 * @module
 */

import { connectLogged } from "../cluster/log.ts";
import type { ManagedNode } from "../cluster/node.ts";
import {
  type BatchHost,
  type BatchResult,
  failedBatch,
  runBatch,
} from "./batch.ts";
import { channels } from "../diagnostics/channels.ts";
import { abortable } from "./connect.ts";
import type { ClientRequestOptions } from "./request_options.ts";
import type { RequestPathOwner } from "./request_path.ts";
import { PoolTimeoutError, RequestTimeoutError } from "../errors.ts";

/** Until its first connect succeeds, what a lazy client's calls wait on. */
export class LazyStart {
  readonly #client: BatchHost;
  readonly #owner: RequestPathOwner;
  readonly #connected: () => void;
  #connecting: Promise<void> | undefined;

  /** `connected` runs once the connect succeeded: the client is eager from then on. */
  constructor(
    client: BatchHost,
    owner: RequestPathOwner,
    connected: () => void,
  ) {
    this.#client = client;
    this.#owner = owner;
    this.#connected = connected;
  }

  /**
   * Runs a request of a lazy client once it is connected, with what the
   * connect left of its time (`failed` with the error when it could not
   * be connected in the request's time, or was with none left). In
   * flight from the call: a disconnect meanwhile gives it its grace.
   */
  after<T>(
    options: ClientRequestOptions,
    run: (leftMs: number) => Promise<T>,
    failed: (error: unknown) => Promise<T>,
  ): Promise<T> {
    const { config, manager, path } = this.#client;
    const limit = options.timeoutMs ?? config.requestTimeoutMs;
    const started = config.clock.now();
    path.inFlight++;
    const fail = (error: unknown) => {
      if (--path.inFlight === 0) this.#owner.idle();
      return failed(this.#owner.final(error));
    };
    return this.ready(options.signal, limit).then(() => {
      const leftMs = limit - (config.clock.now() - started);
      // Connected as the limit passed: failed as a limit passed during
      // the connect is.
      if (!(leftMs > 0)) return fail(lazyRequestTimeout(manager.nodes, limit));
      // Counted until `run` counts itself (a request does at once), and
      // the count's end said: a run that counts nothing (an empty batch)
      // must not leave a disconnect waiting out its grace.
      try {
        return run(leftMs);
      } finally {
        if (--path.inFlight === 0) this.#owner.idle();
      }
    }, fail);
  }

  /**
   * `Client.request` on a lazy client: the request once connected, its
   * first attempt with what the connect left of its `timeoutMs`. Apart
   * from `Client.request`: a closure there would capture its arguments,
   * and V8 would then allocate a context on every call, lazy or not.
   */
  request(
    payload: Uint8Array,
    options: ClientRequestOptions,
  ): Promise<Uint8Array> {
    const path = this.#client.path;
    return this.after(
      options,
      // The connect's time is taken off the first attempt's `timeoutMs`,
      // as a pool wait's is: it bounds the attempt end to end.
      (leftMs) => path.request(payload, path.firstAttempt(options, leftMs)),
      (error) => {
        // Failed for good, as one that reached no node is: counted so.
        path.failedCount++;
        path.diagnostics.unsent([payload], options, error);
        return Promise.reject(error);
      },
    );
  }

  /**
   * `Client.requestMany` on a lazy client: the batch once connected, or
   * every item failed with the connect's error.
   */
  requestMany(
    list: Uint8Array[],
    options: ClientRequestOptions,
  ): Promise<BatchResult[]> {
    const path = this.#client.path;
    return this.after(
      options,
      // Each item's first attempt has what the connect left, as a
      // request's has.
      (leftMs) =>
        runBatch(this.#client, list, path.firstAttempt(options, leftMs)),
      (error) => {
        path.failedCount += list.length;
        path.diagnostics.unsent(list, options, error);
        return Promise.resolve(failedBatch(list.length, error));
      },
    );
  }

  /**
   * Waits for the connect as `withConnection` waits for a pool connection
   * (within its own `timeoutMs`, or the pool's `connectionTimeoutMs`),
   * failing as that would, and resolves with what is left of that limit
   * for the first checkout: the two share it, as a request's first
   * attempt shares its `timeoutMs` with the connect. Before, a call with
   * no `timeoutMs` waited up to `connectionTimeoutMs` for the connect,
   * then a whole `connectionTimeoutMs` more for the checkout.
   */
  async readyToLend(
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ): Promise<number> {
    const { config, manager } = this.#client;
    const own = timeoutMs !== undefined;
    const limit = timeoutMs ?? config.poolConfig.connectionTimeoutMs;
    const started = config.clock.now();
    try {
      await this.ready(
        signal,
        limit,
        own ? "timeoutMs" : "connectionTimeoutMs",
      );
      const leftMs = limit - (config.clock.now() - started);
      // Connected as the limit passed, its timer not run yet: failed as a
      // limit that passed during the connect is, and not retried.
      if (!(leftMs > 0)) throw lazyPoolTimeout(manager.nodes, limit, own);
      return leftMs;
    } catch (error) {
      // A checkout that timed out before it could start: published as
      // every failed checkout is (an APM counting pool timeouts missed it).
      if (
        error instanceof PoolTimeoutError &&
        channels.poolCheckout.hasSubscribers
      ) {
        this.#client.path.diagnostics.checkout(
          error.address,
          "exclusive",
          undefined,
          config.clock.now() - started,
          error,
        );
      }
      throw this.#owner.final(error);
    }
  }

  /**
   * The first connect, shared by every call that needs it; a failed one
   * is tried again by the next call. Each call waits within its own
   * `signal` and time limit, then fails as a request would, or as a wait
   * for a pool connection (`pool`, the limit's name) would.
   */
  ready(
    signal: AbortSignal | undefined,
    limitMs: number,
    pool?: "timeoutMs" | "connectionTimeoutMs",
  ): Promise<void> {
    const { manager, config } = this.#client;
    if (this.#connecting === undefined) {
      // Held before it starts: the connect dispatches events (its
      // checkouts) from inside this call, and a listener's request must
      // wait for this connect, not start another.
      let start!: (connect: Promise<void>) => void;
      this.#connecting = new Promise<void>((resolve) => (start = resolve));
      start(
        connectLogged(manager, config.logger).then(this.#connected, (error) => {
          this.#connecting = undefined;
          throw error;
        }),
      );
    }
    const nodes = manager.nodes;
    const timedOut = pool === undefined
      ? () => lazyRequestTimeout(nodes, limitMs)
      : () => lazyPoolTimeout(nodes, limitMs, pool === "timeoutMs");
    const limit = { clock: config.clock, ms: limitMs, error: timedOut };
    return abortable(this.#connecting, signal, limit);
  }
}

/** Every node's address: the lazy connect went to all of them. */
function addressesOf(nodes: readonly ManagedNode[]): string {
  return nodes.map((node) => node.address).join(",");
}

/** A request or ping whose limit passed during a lazy client's connect. */
export function lazyRequestTimeout(
  nodes: readonly ManagedNode[],
  limitMs: number,
): RequestTimeoutError {
  return new RequestTimeoutError(addressesOf(nodes), limitMs, { sent: false });
}

/**
 * A `withConnection` whose limit (its own `timeoutMs` when `own`) passed
 * during a lazy client's connect: a wait for a pool connection.
 */
export function lazyPoolTimeout(
  nodes: readonly ManagedNode[],
  limitMs: number,
  own: boolean,
): PoolTimeoutError {
  const counts = { open: 0, inUse: 0, waiting: 0 };
  for (const node of nodes) {
    const stats = node.pool.stats();
    counts.open += stats.open;
    counts.inUse += stats.inUse;
    counts.waiting += stats.waiting;
  }
  const limit = own ? "timeoutMs" : "connectionTimeoutMs";
  return new PoolTimeoutError(addressesOf(nodes), limitMs, counts, limit);
}
