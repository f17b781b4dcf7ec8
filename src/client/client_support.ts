/**
 * The Client's cold code, apart from its request path: the check that
 * `Client.connect` built it and the wiring of its events and log at
 * construction, `ping` (its options read, its round trip),
 * `withConnection` (its arguments read, its loan),
 * `healthCheckAllNodes`'s options and wait, `stats()`, and its log lines.
 * A lazy client's first connect is lazy_start.ts, `disconnect()`'s
 * shutdown disconnect.ts.
 *
 * @module
 */

import type { Logger } from "../config/shapes.ts";
import { blameClock } from "../config/clock_failure.ts";
import type { TypedEventTarget } from "../events.ts";
import type { ClientEventMap, RetryBudgetEventDetail } from "./events.ts";
import { ConnectionManager } from "../cluster/manager.ts";
import type { HealthCheckResult } from "../cluster/health_loop.ts";
import { guardLogger } from "../cluster/log.ts";
import type { PoolEvent, PoolEventName } from "../pool/events.ts";
import type { ManagedNode } from "../cluster/node.ts";
import type { Connection } from "../connection/connection.ts";
import type { BatchHost } from "./batch.ts";
import type { LazyStart } from "./lazy_start.ts";
import { type ClientStats, nodeStats } from "./stats.ts";
import type { RequestPathOwner } from "./request_path.ts";
import { executeWithRetry, isRetryable, operationAborted } from "./retry.ts";
import { abortable, forwardManagerEvents } from "./connect.ts";
// The checks at the door of the client's public methods.
import * as door from "./arguments.ts";
import {
  AbortedError,
  ClientClosedError,
  type ConfigError,
  InvalidArgumentError,
  messageOf,
  NoHealthyNodesError,
  PoolTimeoutError,
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
 * Wires a new client's events: `manager`'s re-dispatched as the
 * client's, with the pool events in `forwarding` added to each node it
 * adds; with a `logger`, a log line for every retry. Returns the logger,
 * guarded, for the client's other log lines.
 */
export function wireClient(
  client: TypedEventTarget<ClientEventMap>,
  manager: ConnectionManager,
  logger: Logger | undefined,
  forwarding: ReadonlyMap<PoolEventName, (e: PoolEvent) => void>,
): Logger | undefined {
  // Health and membership changes are the client's events too.
  forwardManagerEvents(
    manager,
    (event) => client.dispatchEvent(event),
    forwarding,
  );
  const log = logger && guardLogger(logger);
  if (log) logRetries(client, log);
  return log;
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

/**
 * `Client.ping()`: its `options` read, refused once the client's `owner`
 * is closing, then after a lazy client's connect, within its limit, its
 * failures told as `owner` tells them.
 *
 * @throws {InvalidArgumentError} naming the bad option.
 * @throws {ClientClosedError} after `disconnect()`.
 */
export async function pingClient(
  client: BatchHost,
  owner: RequestPathOwner,
  lazy: LazyStart | undefined,
  options: unknown,
): Promise<
  { address: string; nodeId: string | undefined; latencyMs: number }
> {
  // Read once, here: the copy is what the ping goes on with.
  const { signal, timeoutMs } = door.readPingOptions(options);
  if (owner.closing()) throw new ClientClosedError();
  const limit = timeoutMs ?? client.config.requestTimeoutMs;
  // In flight like a request: a disconnect lets it finish, and a
  // failure because of the disconnect says so.
  const path = client.path;
  path.inFlight++;
  try {
    const started = client.config.clock.now();
    if (lazy) await lazy.ready(signal, limit);
    return await pingNode(client, started, limit, signal);
  } catch (error) {
    // The ping reads the clock throughout: a custom one whose now()
    // throws rejected it with its raw Error. Named, as a request names it.
    throw owner.final(blameClock(client.config.clock, error));
  } finally {
    if (--path.inFlight === 0) owner.idle();
  }
}

/**
 * `Client.withConnection()`: its arguments read, refused once the
 * client's `owner` is closing, then after a lazy client's connect, whose
 * time is taken off the first checkout's limit, `fn` lent a connection;
 * in flight from the call, as a request is, so a disconnect gives it its
 * grace.
 *
 * @throws {InvalidArgumentError} naming the bad argument or option.
 * @throws {ClientClosedError} after `disconnect()`.
 */
export async function lendClient<T>(
  client: BatchHost,
  owner: RequestPathOwner,
  lazy: LazyStart | undefined,
  fn: (connection: Connection) => Promise<T>,
  options: unknown,
): Promise<T> {
  // Read once, here: the pool is asked again on every retry, with a copy.
  const { timeoutMs, signal } = door.readWithConnectionArguments(fn, options);
  if (owner.closing()) throw new ClientClosedError();
  const acquire = { timeoutMs, signal };
  const path = client.path;
  path.inFlight++;
  try {
    // The connect's time is taken off the first checkout's limit (its
    // own `timeoutMs`, or `connectionTimeoutMs`): it bounds the attempt
    // end to end, as a request's and ping()'s do.
    const firstMs = lazy
      ? await lazy.readyToLend(signal, timeoutMs)
      : timeoutMs;
    return await lendConnection(client, owner, fn, acquire, firstMs);
  } finally {
    if (--path.inFlight === 0) owner.idle();
  }
}

/**
 * `Client.healthCheckAllNodes()`: its `options` read (or the promise
 * rejected with their error), refused once the client's `owner` is
 * closing, then `manager`'s sweep, whose wait `options.signal` ends.
 */
export function checkAllNodes(
  manager: ConnectionManager,
  owner: RequestPathOwner,
  options: unknown,
): Promise<HealthCheckResult[]> {
  const read = door.readHealthCheckOptions(options);
  if (read instanceof Error) return Promise.reject(read);
  if (owner.closing()) return Promise.reject(new ClientClosedError());
  const signal = read.signal;
  if (signal === undefined) return manager.healthCheckAllNodes();
  return abortable(manager.healthCheckAllNodes(), signal);
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
  let outcome: { value: T } | { error: unknown };
  try {
    outcome = { value: await fn(connection) };
  } catch (error) {
    outcome = { error };
  }
  try {
    node!.pool.returnConnection(connection);
  } catch (error) {
    // The check-in reads the clock: a custom one whose now() throws
    // rejected the call with its raw Error. Named, as a request names it;
    // a failed `fn` keeps its own error, the caller's first news (a broken
    // clock fails the next call anyway).
    if ("value" in outcome) throw final(blameClock(config.clock, error));
  }
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
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

/**
 * Tells `log` that a custom clock threw as a request's outcome was booked:
 * the request has its outcome, what the client learns from it is lost.
 */
export function logClockFailed(log: Logger, error: ConfigError): void {
  log({
    level: "error",
    message:
      `a request's outcome was booked without its timing: ${error.message}`,
    event: "clockFailed",
    error,
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
