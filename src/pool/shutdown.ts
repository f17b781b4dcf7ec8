/**
 * How a pool lets its connections go: `clear()` (the node turned
 * unhealthy: everything is dropped, the pool stays usable) and `close()`
 * (the pool ends). The pool keeps its own state; these do the work on
 * its parts.
 *
 * @module
 */

import { PoolClosedError } from "../errors.ts";
import type { PoolParts } from "./assembly.ts";
import type { PoolableConnection } from "./types.ts";

/**
 * `clear()`'s work, once the pool has stopped filling: `poolCleared`,
 * opens aborted, every connection retired, every waiter failed.
 */
export function clearPool<C extends PoolableConnection>(
  parts: PoolParts<C>,
  reason: unknown,
): void {
  const { address, target } = parts.ctx;
  // First, as CMAP orders it: what follows is its consequence.
  if (target.hasListeners("poolCleared")) {
    parts.events.emit("poolCleared", { address, reason });
  }
  const error = new PoolClosedError(address, "cleared", {
    cause: reason,
  });
  parts.opener.abort(error);
  // A custom clock whose now() throws reaches clear()'s caller, but the
  // waiters are failed all the same: before, they waited on a cleared pool
  // until its close().
  try {
    const now = parts.clock.now();
    for (const entry of parts.roster.list.slice()) {
      parts.roster.retire(entry, "stale");
      parts.keeper.closeWhenIdle(entry, now);
    }
  } finally {
    parts.waiters.failAll(error, "connectionError");
  }
}

/**
 * `close()`'s work: `closing` is handed the promise `close()` returns, and
 * marks the pool closed, before anything else runs; then the timers stop,
 * opens and waiters fail, and every connection not lent is closed.
 */
export function closePool<C extends PoolableConnection>(
  parts: PoolParts<C>,
  closing: (promise: Promise<void>) => void,
): Promise<void> {
  const { address, target } = parts.ctx;
  let held: Promise<unknown>[] = [];
  // Set before anything runs: a listener that calls close() from here
  // on gets this same promise, and poolClosed comes once.
  const promise = Promise.resolve().then(() => Promise.all(held))
    // A return starts a close that drain() then waits for.
    .then(() => parts.opener.drain())
    .then(() => {
      if (target.hasListeners("poolClosed")) {
        parts.events.emit("poolClosed", { address });
      }
    });
  closing(promise);
  parts.keeper.stop();
  parts.waiters.turns.stop();
  const error = new PoolClosedError(address, "closed");
  parts.opener.close(error);
  try {
    parts.waiters.failAll(error, "poolClosed");
  } catch (thrown) {
    // A checkoutFailed event that could not be built (a custom clock
    // whose now() throws): let out, it left the rest of the waiters
    // waiting and every connection open. They fail all the same, with
    // the ConfigError naming the clock, and the connections go below.
    parts.waiters.failThrown(thrown);
  }
  held = parts.roster.closeAll();
  return promise;
}
