/**
 * The Client's cold code, apart from its request path: the check that
 * `Client.connect` built it, `ping`'s round trip, `withConnection`'s
 * loan, `stats()`, and its log lines.
 *
 * @module
 */

import type { Logger } from "../config/shapes.ts";
import type { TypedEventTarget } from "../events.ts";
import type { ClientEventMap, RetryBudgetEventDetail } from "./events.ts";
import { ConnectionManager } from "../cluster/manager.ts";
import type { ManagedNode } from "../cluster/node.ts";
import type { Connection } from "../connection/connection.ts";
import type { BatchHost } from "./batch.ts";
import { type ClientStats, nodeStats } from "./stats.ts";
import type { RequestPathOwner } from "./request_path.ts";
import { executeWithRetry, isRetryable } from "./retry.ts";
import {
  InvalidArgumentError,
  messageOf,
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
  const connection = await diagnostics.observeCheckout(
    node.address,
    "shared",
    () =>
      node.pool.tryAcquireShared() ?? node.pool.acquireShared({
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
  const latencyMs = await connection.ping({ timeoutMs: left, signal });
  return { address: node.address, nodeId: connection.nodeId, latencyMs };
}

/**
 * Lends `fn` a connection for its exclusive use until it settles. The
 * checkout is retried (on another node if any) unless the client is
 * `closing()`, and its final error goes through `final`; `fn` is not
 * retried.
 */
export async function lendConnection<T>(
  { manager, config, path }: BatchHost,
  { closing, final }: RequestPathOwner,
  fn: (connection: Connection) => Promise<T>,
  acquire: { timeoutMs: number | undefined; signal: AbortSignal | undefined },
): Promise<T> {
  const diagnostics = path.diagnostics;
  let node: ManagedNode | undefined;
  const connection = await executeWithRetry(
    () => {
      const picked = node = manager.pickNode(node);
      return diagnostics.observeCheckout(
        picked.address,
        "exclusive",
        () => picked.pool.getConnection(acquire),
      );
    },
    config.retryConfig,
    {
      clock: config.clock,
      signal: acquire.signal,
      isRetryable: (e) => !closing() && isRetryable(e),
    },
  ).catch((error) => {
    throw final(error);
  });
  try {
    return await fn(connection);
  } finally {
    node!.pool.returnConnection(connection);
  }
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
