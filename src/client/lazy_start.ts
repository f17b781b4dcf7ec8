/**
 * A lazy client's first connect (`Client.connect(..., { lazy: true })`),
 * shared by the calls that wait for it; apart so an eager client holds none.
 *
 * @module
 */

import type { ManagedNode } from "../cluster/node.ts";
import { connectLogged } from "../cluster/log.ts";
import { PoolTimeoutError, RequestTimeoutError } from "../errors.ts";
import { abortable } from "./connect.ts";
import type { BatchHost } from "./batch.ts";
import type { ClientRequestOptions } from "./request_options.ts";
import type { RequestPathOwner } from "./request_path.ts";

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
   * Runs a request of a lazy client once it is connected (`failed` with
   * the error when it could not be, in the request's time). In flight
   * from the call: a disconnect meanwhile gives it its grace.
   */
  after<T>(
    options: ClientRequestOptions,
    run: () => Promise<T>,
    failed: (error: unknown) => Promise<T>,
  ): Promise<T> {
    const limit = options.timeoutMs ?? this.#client.config.requestTimeoutMs;
    const path = this.#client.path;
    path.inFlight++;
    return this.ready(options.signal, limit).then(() => {
      path.inFlight--;
      return run();
    }, (error) => {
      if (--path.inFlight === 0) this.#owner.idle();
      return failed(this.#owner.final(error));
    });
  }

  /**
   * Waits for the connect as `withConnection` waits for a pool connection
   * (within its own `timeoutMs`, or the pool's), failing as that would.
   */
  readyToLend(
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ): Promise<void> {
    const own = timeoutMs !== undefined;
    const limit = timeoutMs ??
      this.#client.config.poolConfig.connectionTimeoutMs;
    const name = own ? "timeoutMs" : "connectionTimeoutMs";
    return this.ready(signal, limit, name).catch((error) => {
      throw this.#owner.final(error);
    });
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
    this.#connecting ??= connectLogged(manager, config.logger).then(
      this.#connected,
      (error) => {
        this.#connecting = undefined;
        throw error;
      },
    );
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
