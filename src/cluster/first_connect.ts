/**
 * A manager's first connections: to every node at once in `connect()`,
 * then its pools and health loop started, and to a node `addNode` brings
 * in, with how long each may take and what the failures add up to (a
 * manager closed meanwhile among them). Runs once per node, never on the
 * request path.
 *
 * @module
 */

import type { ResolvedConfig } from "../config/shapes.ts";
import { MAX_TIMER_DELAY_MS } from "../config/validate.ts";
import { isClockFailure } from "../config/clock_failure.ts";
import {
  AbortedError,
  AuthenticationError,
  ClientClosedError,
  ConnectFailedError,
  NegotiationError,
  TlsError,
} from "../errors.ts";
import { asError } from "../errors/base.ts";
import type { HealthCheckResult } from "./health_loop.ts";
import type { ManagedNode } from "./node.ts";

/** The manager's marks that a first connection sets. */
export interface ConnectMarks {
  /** The node answered: back in rotation. */
  markNodeHealthy(address: string, reason: string): boolean;
  /** The node did not answer: out of rotation until a check finds it. */
  markNodeUnhealthy(address: string, reason: string): boolean;
}

/**
 * How long the wait for a node's first connection may take. Each open is
 * bounded by its own connect timeout and its failure is handed to the
 * waiter; the wait only backs that up. With the same deadline the wait
 * would fire first, and a node that never finishes the handshake would be
 * reported as a pool timeout.
 */
export function firstConnectWaitMs(config: ResolvedConfig): number {
  return Math.min(2 * config.timeoutMs, MAX_TIMER_DELAY_MS);
}

/**
 * Opens a first connection to every one of `nodes` at once, waiting
 * `waitMs` at most for each, and marks each healthy or unhealthy through
 * `marks` by how it went. Resolves once all have settled, if one answered.
 *
 * @throws {ConnectFailedError} when none answered, with every host and why
 *   in `failures`.
 * @throws {AuthenticationError}, {@linkcode NegotiationError} or a
 *   certificate {@linkcode TlsError} itself when every node failed that
 *   way: never retried.
 * @throws {ConfigError} naming `clock` itself when none answered and one
 *   failed because the client's clock threw: never retried.
 * @throws {AbortedError} when `signal` aborts first, carrying its reason.
 */
export async function connectNodes(
  nodes: readonly ManagedNode[],
  waitMs: number,
  signal: AbortSignal | undefined,
  marks: ConnectMarks,
): Promise<void> {
  if (signal?.aborted) throw connectAborted(signal);
  const results = await Promise.allSettled(
    nodes.map((node) => firstCheckout(node, waitMs, signal)),
  );
  // The caller gave up: say that, whatever each node's wait failed with.
  if (signal?.aborted) throw connectAborted(signal);
  const failures: { address: string; error: Error }[] = [];
  // A mark that throws (its health change met a custom clock whose now()
  // throws) stopped the loop: the nodes after it kept their old marks.
  // Every node is marked, and the first throw is thrown after.
  let markFailed: { error: unknown } | undefined;
  results.forEach((result, i) => {
    const node = nodes[i];
    try {
      if (result.status === "fulfilled") {
        // Back in rotation if an earlier connect (a lazy client's) had
        // found it down.
        marks.markNodeHealthy(node.address, "connected");
        return;
      }
      const error = asError(result.reason);
      failures.push({ address: node.address, error });
      marks.markNodeUnhealthy(node.address, `connect failed: ${error.message}`);
    } catch (error) {
      markFailed ??= { error };
    }
  });
  if (markFailed !== undefined) throw markFailed.error;
  if (failures.length === nodes.length) {
    // The client's own clock broke (its setTimeout() threw as a time
    // limit was armed): the same for every node, and no node's fault. A
    // ConnectFailedError, retryable, named it only inside its failures
    // and had the caller retry what fails until the clock is mended.
    const clock = failures.find((f) => isClockFailure(f.error));
    if (clock !== undefined) throw clock.error;
    // Wrong credentials or a policy no node meets: say so plainly rather
    // than as a retryable "could not connect".
    const fatal = failures.every((f) =>
      f.error instanceof AuthenticationError ||
      f.error instanceof NegotiationError ||
      (f.error instanceof TlsError && !f.error.retryable)
    );
    if (fatal) throw failures[0].error;
    throw new ConnectFailedError(failures);
  }
}

/**
 * `ConnectionManager.connect()` once its signal is checked: the first
 * connections to every node (`registry.nodes` as they are now, each
 * waited for `waitMs` at most), then the pool of each node that answered
 * started and the health `loop` scheduled. `closed` says whether the
 * manager was closed meanwhile.
 *
 * @throws what {@linkcode connectNodes} throws, or
 *   {@linkcode ClientClosedError} when the manager was closed meanwhile.
 */
export async function startNodes(
  registry: { readonly nodes: readonly ManagedNode[] },
  loop: { schedule(): void },
  waitMs: number,
  signal: AbortSignal | undefined,
  marks: ConnectMarks,
  closed: () => boolean,
): Promise<void> {
  try {
    await connectNodes(registry.nodes, waitMs, signal, marks);
  } catch (error) {
    // Every pool closed under it: a ConnectFailedError, retryable, would
    // have a caller retry a manager that can never connect again.
    throw closed() ? closedError() : error;
  }
  if (closed()) throw closedError();
  for (const node of registry.nodes) {
    if (node.health.isHealthy && !node.pool.isClosed) node.pool.start();
  }
  loop.schedule();
}

/**
 * Opens the first connection to `node`, added while the manager runs,
 * waiting `waitMs` at most; hands the error it failed with (undefined once
 * it is open) to `book`, which updates the node's health, and resolves
 * with how it went, as `addNode` reports it.
 */
export async function connectAdded(
  node: ManagedNode,
  waitMs: number,
  book: (error: Error | undefined) => void,
): Promise<HealthCheckResult> {
  let error: Error | undefined;
  try {
    await node.pool.acquireShared({ timeoutMs: waitMs });
  } catch (caught) {
    error = asError(caught);
  }
  book(error);
  return {
    address: node.address,
    nodeId: node.nodeId,
    ok: error === undefined,
    latencyMs: undefined,
    error,
    healthy: node.health.isHealthy,
  };
}

/**
 * `node`'s first checkout, a throw at the call (a custom pool's, a clock's
 * that throws in it) taken as its rejection: thrown inside the map, it
 * ended the connect at once and let go of the other nodes' waits, whose
 * later failures were then unhandled rejections.
 */
function firstCheckout(
  node: ManagedNode,
  waitMs: number,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  try {
    return node.pool.acquireShared({ signal, timeoutMs: waitMs });
  } catch (error) {
    return Promise.reject(error);
  }
}

function connectAborted(signal: AbortSignal): AbortedError {
  return new AbortedError("the connect was aborted", signal.reason);
}

/** What a manager's calls fail with once it is closed. */
export function closedError(): ClientClosedError {
  return new ClientClosedError("the connection manager is closed");
}
