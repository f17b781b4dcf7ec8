/**
 * The Client's cold code, apart from its request path: the check that
 * `Client.connect` built it, the errors of a lazy client's calls that time
 * out waiting for its first connect, `ping`'s round trip and
 * `withConnection`'s loan, the grace period of `disconnect()`, and its log
 * lines.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../clock.ts";
import type { Logger, ResolvedConfig } from "../config/shapes.ts";
import { isDuration } from "../config/validate.ts";
import type { TypedEventTarget } from "../events.ts";
import type { ClientEventMap, RetryBudgetEventDetail } from "./events.ts";
import { changedWhileRead } from "../config/options.ts";
import { ConnectionManager } from "../cluster/manager.ts";
import type { ManagedNode } from "../cluster/node.ts";
import type { Connection } from "../connection/connection.ts";
import type { RequestDiagnostics } from "./request_diagnostics.ts";
import { executeWithRetry, isRetryable } from "./retry.ts";
import {
  InvalidArgumentError,
  messageOf,
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
 * Pings a node the balancer picks: the wait for a connection and the
 * round trip within `limit` ms from `started` (a lazy connect's time is
 * spent already).
 *
 * @throws {RequestTimeoutError} when the time runs out before the send.
 */
export async function pingNode(
  manager: ConnectionManager,
  config: ResolvedConfig,
  diagnostics: RequestDiagnostics,
  timing: { clock: Clock; started: number; limit: number },
  signal: AbortSignal | undefined,
): Promise<
  { address: string; nodeId: string | undefined; latencyMs: number }
> {
  const { clock, started, limit } = timing;
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
 * checkout is retried (on another node if any) unless `closing()`, and
 * its final error goes through `final`; `fn` is not retried.
 */
export async function lendConnection<T>(
  manager: ConnectionManager,
  config: ResolvedConfig,
  diagnostics: RequestDiagnostics,
  closing: () => boolean,
  final: (error: unknown) => unknown,
  fn: (connection: Connection) => Promise<T>,
  acquire: { timeoutMs: number | undefined; signal: AbortSignal | undefined },
): Promise<T> {
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

/**
 * A disconnect's grace period: over (`done`) when the client is idle
 * (`end()`) or at the deadline, which a later, more urgent disconnect may
 * bring forward (a second Ctrl-C must not wait out the first's grace).
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
  }
}

/**
 * The grace a checked `disconnect(options)` asks for (`fallback` when not
 * given), read once more and checked again: a getter may answer otherwise.
 */
export function graceOf(
  options: { timeoutMs?: number },
  fallback: number,
): number | InvalidArgumentError {
  let timeoutMs: unknown;
  try {
    timeoutMs = options.timeoutMs ?? fallback;
  } catch {
    // Refused below.
  }
  return isDuration(timeoutMs, true)
    ? timeoutMs
    : changedWhileRead("Client.disconnect", options);
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
