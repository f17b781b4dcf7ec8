/**
 * The Client's cold code, apart from its request path: the check that
 * `Client.connect` built it, a lazy client's first connect (`LazyStart`,
 * held only by a lazy client), `ping`'s round trip, `withConnection`'s
 * loan, `stats()`, `disconnect()`'s shutdown and grace period
 * (`Shutdown`), and its log lines. One file rather than several: each
 * module costs the npm tarball its import lines.
 *
 * @module
 */

import { type Clock, holdTimer, type TimerHandle } from "../clock.ts";
import type { Logger } from "../config/shapes.ts";
import { connectLogged, disconnected } from "../cluster/log.ts";
import type { TypedEventTarget } from "../events.ts";
import type { ClientEventMap, RetryBudgetEventDetail } from "./events.ts";
import { ConnectionManager } from "../cluster/manager.ts";
import type { ManagedNode } from "../cluster/node.ts";
import type { Connection } from "../connection/connection.ts";
import type { BatchHost } from "./batch.ts";
import { channels } from "../diagnostics/channels.ts";
import { abortable } from "./connect.ts";
import type { ClientRequestOptions } from "./request_options.ts";
import { type ClientStats, nodeStats } from "./stats.ts";
import type { RequestPathOwner } from "./request_path.ts";
import { executeWithRetry, isRetryable, operationAborted } from "./retry.ts";
import {
  AbortedError,
  ClientClosedError,
  InvalidArgumentError,
  messageOf,
  NoHealthyNodesError,
  PoolTimeoutError,
  RemoteError,
  RequestTimeoutError,
} from "../errors.ts";

/**
 * Refuses a Client built by hand (`new Client(config)` from JavaScript),
 * which would otherwise fail with a TypeError deep inside.
 *
 * @throws {InvalidArgumentError} saying what to call instead.
 */
export function checkClientConstruction(manager: unknown): void {
  if (manager instanceof ConnectionManager) return;
  throw new InvalidArgumentError(
    "manager",
    manager,
    "call Client.connect(config) (with { lazy: true } to connect on first use)",
    { method: "new Client" },
  );
}

/**
 * Pings a node the balancer picks: the wait for a connection and the
 * round trip within `limit` ms from `started` (a lazy connect's time is
 * spent already).
 *
 * @throws {RequestTimeoutError} when the time runs out before the send.
 */
export async function pingNode(
  { manager, config, path }: BatchHost,
  started: number,
  limit: number,
  signal: AbortSignal | undefined,
): Promise<
  { address: string; nodeId: string | undefined; latencyMs: number }
> {
  const { clock } = config;
  const diagnostics = path.diagnostics;
  const node = manager.pickNode();
  const waitMs = limit - (clock.now() - started);
  if (!(waitMs > 0)) {
    throw new RequestTimeoutError(node.address, limit, { sent: false });
  }
  // A connection ready now takes the ping in this same tick, as a
  // request's attempt does: with no await between, a removal of the node
  // or a health change that closes its idle connections cannot come
  // first, and the ping is in flight, which they let finish.
  const ready = node.pool.tryAcquireShared();
  if (ready !== undefined) {
    diagnostics.checkedOut(undefined, node.address, ready.id, 0);
    return pingOn(node.address, ready, waitMs, signal);
  }
  const connection = await diagnostics.observeCheckout(
    node.address,
    "shared",
    () =>
      node.pool.acquireShared({
        signal,
        // The pool's own limit applies when it is the shorter one, and
        // its timeout error then names that limit.
        timeoutMs: waitMs < config.poolConfig.connectionTimeoutMs
          ? waitMs
          : undefined,
      }),
  );
  const left = limit - (clock.now() - started);
  if (!(left > 0)) {
    throw new RequestTimeoutError(node.address, limit, { sent: false });
  }
  return pingOn(node.address, connection, left, signal);
}

/** Pings over `connection` to `address`, within `timeoutMs`. */
async function pingOn(
  address: string,
  connection: Connection,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<
  { address: string; nodeId: string | undefined; latencyMs: number }
> {
  const latencyMs = await connection.ping({ timeoutMs, signal });
  return { address, nodeId: connection.nodeId, latencyMs };
}

/**
 * Lends `fn` a connection for its exclusive use until it settles. The
 * checkout is retried (on another node if any) unless the client is
 * `closing()` or no node is healthy, and its final error goes through
 * `final`; `fn` is not retried. The first checkout waits `firstMs` (what
 * a lazy connect left of the limit: `acquire.timeoutMs`, or the pool's
 * `connectionTimeoutMs`), and its timeout names that whole limit; the
 * retries wait `acquire.timeoutMs` each.
 */
export async function lendConnection<T>(
  { manager, config, path }: BatchHost,
  { closing, final }: RequestPathOwner,
  fn: (connection: Connection) => Promise<T>,
  acquire: { timeoutMs: number | undefined; signal: AbortSignal | undefined },
  firstMs: number | undefined = acquire.timeoutMs,
): Promise<T> {
  const diagnostics = path.diagnostics;
  const { signal } = acquire;
  let node: ManagedNode | undefined;
  let first = firstMs === acquire.timeoutMs
    ? undefined
    : { timeoutMs: firstMs, signal };
  // The wait before a checkout is tried again ends with the client's
  // shutdown, as a request's wait before its retry does (it is among the
  // path's retry waits while it waits), or with the caller's signal: a
  // disconnect waited it out, and its timer held the process after that.
  const wake = new AbortController();
  let waiting = false;
  const stopWaiting = () => {
    if (waiting) path.retryWaits.delete(wake, signal);
    waiting = false;
  };
  let connection: Connection;
  try {
    connection = await executeWithRetry(
      () => {
        stopWaiting();
        const picked = node = manager.pickNode(node);
        const shortened = first;
        first = undefined;
        return diagnostics.observeCheckout(
          picked.address,
          "exclusive",
          () =>
            shortened === undefined
              ? picked.pool.getConnection(acquire)
              : picked.pool.getConnection(shortened).catch((error) => {
                throw wholeLimit(error, picked, acquire.timeoutMs, config);
              }),
        );
      },
      config.retryConfig,
      {
        clock: config.clock,
        signal: wake.signal,
        // With no healthy node a checkout fails fast, as a request does,
        // instead of backing off to the same answer.
        isRetryable: (e) =>
          !closing() && !(e instanceof NoHealthyNodesError) && isRetryable(e),
        onRetry: () => {
          // Aborted already: its listener would never wake the wait.
          if (signal?.aborted) throw operationAborted(signal);
          path.retryWaits.add(wake, signal);
          waiting = true;
        },
      },
    );
  } catch (error) {
    throw final(checkoutError(error, wake.signal, signal));
  } finally {
    stopWaiting();
  }
  try {
    return await fn(connection);
  } finally {
    node!.pool.returnConnection(connection);
  }
}

/**
 * A lazy client's first checkout timed out on what the connect left of
 * its limit: said as the whole limit (the call's `timeoutMs`, or the
 * pool's `connectionTimeoutMs`) that the connect and the checkout shared,
 * as a limit that passed during the connect is. Said as the part left, it
 * named "the call's timeoutMs" for a call that gave none.
 */
function wholeLimit(
  error: unknown,
  node: ManagedNode,
  timeoutMs: number | undefined,
  config: BatchHost["config"],
): unknown {
  if (!(error instanceof PoolTimeoutError)) return error;
  return new PoolTimeoutError(
    error.address,
    timeoutMs ?? config.poolConfig.connectionTimeoutMs,
    node.pool.stats(),
    timeoutMs === undefined ? "connectionTimeoutMs" : "timeoutMs",
  );
}

/**
 * What a checkout's retries ended with, as the caller is told: once its
 * own signal aborted, that abort (unless the pool said it already); woken
 * from the wait before a retry by the client's shutdown, a
 * {@linkcode ClientClosedError}.
 */
function checkoutError(
  error: unknown,
  wake: AbortSignal,
  signal: AbortSignal | undefined,
): unknown {
  const woken = wake.aborted && error instanceof AbortedError &&
    error.cause === wake.reason;
  if (signal?.aborted && (woken || !(error instanceof AbortedError))) {
    return operationAborted(signal);
  }
  if (!woken) return error;
  return new ClientClosedError(
    "the client disconnected while withConnection waited to retry its " +
      "checkout",
  );
}

/** The caller's abort, as executeWithRetry words it. */

/** Tells `log` of every retry `client` dispatches. */
export function logRetries(
  client: TypedEventTarget<ClientEventMap>,
  log: Logger,
): void {
  client.addEventListener("retry", (e) => {
    const d = e.detail;
    log({
      level: "debug",
      message: `retry ${d.attempt} in ${d.delayMs} ms after: ${
        messageOf(d.error)
      }`,
      event: "retry",
      address: d.address,
      error: d.error instanceof Error ? d.error : undefined,
    });
  });
}

/** Tells `log` that a request was not retried: the budget is spent. */
export function logBudgetSpent(
  log: Logger,
  detail: RetryBudgetEventDetail,
): void {
  log({
    level: "warn",
    message: `not retried, the retry budget is spent: ${
      messageOf(detail.error)
    }`,
    event: "retryBudgetExhausted",
    address: detail.address,
  });
}

/** `Client.stats()`: the counters of the client's `path`, and each node's state. */
export function clientStats(
  { path, manager }: BatchHost,
): ClientStats {
  return {
    succeeded: path.succeededCount,
    failed: path.failedCount,
    retries: path.retryCount,
    hedges: path.hedgeCount,
    inFlight: path.inFlight,
    nodes: manager.nodes.map(nodeStats),
  };
}

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

/**
 * The error a call of a closing client fails with: `error` restated as a
 * {@linkcode ClientClosedError}, saying why when it was `cancelled`.
 */
export function closingError(
  error: unknown,
  cancelled: Error | undefined,
): unknown {
  if (error instanceof ClientClosedError) return error;
  // A node's answer and the caller's own abort stay what they are.
  if (error instanceof AbortedError || error instanceof RemoteError) {
    return error;
  }
  return new ClientClosedError(
    cancelled?.message ?? "the client disconnected during the request",
    { cause: error },
  );
}

/**
 * One client's shutdown, from the first `disconnect()` on. Made, then
 * started: the client holds it before its first steps run, because they
 * dispatch events (idle connections close at once when nothing is in
 * flight), and a listener that calls `disconnect()` again must find this
 * shutdown, not start another.
 */
export class Shutdown {
  /** Resolves when all of it is done. */
  readonly done: Promise<void>;
  #finish!: (run: Promise<void>) => void;
  #grace: Grace | undefined;
  #cancelled: Error | undefined;

  constructor() {
    this.done = new Promise<void>((resolve) => (this.#finish = resolve));
  }

  /** Starts shutting down, with `timeoutMs` of grace; `done` follows it. */
  start(client: BatchHost, log: Logger | undefined, timeoutMs: number): void {
    this.#finish(this.#run(client, log, timeoutMs));
  }

  /** Why requests still in flight after the grace period were cancelled. */
  get cancelled(): Error | undefined {
    return this.#cancelled;
  }

  /** The client is idle: the grace period, if one runs, is over. */
  idle(): void {
    this.#grace?.end();
  }

  /** A more urgent `disconnect()`: what is still in flight gets less time. */
  shorten(timeoutMs: number): void {
    this.#grace?.shorten(timeoutMs);
  }

  async #run(
    { manager, path, config }: BatchHost,
    log: Logger | undefined,
    timeoutMs: number,
  ): Promise<void> {
    manager.stopHealthLoop();
    // A request waiting to be retried will not be: it ends now.
    path.stop();
    let waitedMs = 0;
    if (path.inFlight > 0) {
      const grace = this.#grace = new Grace(config.clock, timeoutMs);
      await grace.done;
      this.#grace = undefined;
      waitedMs = grace.elapsedMs;
    }
    if (path.inFlight > 0) {
      this.#cancelled = new ClientClosedError(
        `disconnect cancelled the request after waiting ${waitedMs} ms`,
      );
      manager.destroyConnections(this.#cancelled);
    }
    // A connection lent straight from a pool (client.manager, /core) is
    // no call of the client's, but the pools wait for it: what is left of
    // the grace bounds that wait too, or the disconnect never ends.
    const grace = this.#grace = new Grace(
      config.clock,
      Math.max(0, timeoutMs - waitedMs),
    );
    let shut = false;
    const closed = manager.close().finally(() => {
      shut = true;
      grace.end();
    });
    await grace.done;
    this.#grace = undefined;
    if (!shut) {
      manager.destroyConnections(
        new ClientClosedError(
          "disconnect closed the connection, still lent " +
            `${waitedMs + grace.elapsedMs} ms after it was called`,
        ),
      );
    }
    await closed;
    log?.(disconnected());
  }
}

/**
 * A disconnect's grace period: over (`done`) when the client is idle
 * (`end()`) or at the deadline, which a later, more urgent disconnect may
 * bring forward (a second Ctrl-C must not wait out the first's grace).
 * Its timer keeps the process alive: the caller of `disconnect()` awaits
 * it, and a call in flight that holds no socket (a custom channel, the
 * memory network) left Node nothing else, so it ended the program inside
 * the await.
 */
export class Grace {
  readonly #clock: Clock;
  readonly #started: number;
  #deadline: number;
  #timer: TimerHandle | undefined;
  #resolve!: () => void;
  /** Resolves when the grace period is over. */
  readonly done: Promise<void>;

  /** Starts a grace period of `timeoutMs` on `clock`. */
  constructor(clock: Clock, timeoutMs: number) {
    this.#clock = clock;
    this.#started = clock.now();
    this.#deadline = this.#started + timeoutMs;
    this.done = new Promise<void>((resolve) => (this.#resolve = resolve));
    this.#arm(timeoutMs);
  }

  /** How long it has lasted, in ms. */
  get elapsedMs(): number {
    return this.#clock.now() - this.#started;
  }

  /** Ends it now. */
  readonly end = (): void => {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#resolve();
  };

  /** Ends it `timeoutMs` from now, if that is sooner. */
  shorten(timeoutMs: number): void {
    const deadline = this.#clock.now() + timeoutMs;
    if (this.#timer === undefined || deadline >= this.#deadline) return;
    this.#deadline = deadline;
    this.#clock.clearTimeout(this.#timer);
    this.#arm(timeoutMs);
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(this.end, ms);
    holdTimer(this.#clock, this.#timer, true);
  }
}
