/**
 * The snapshot behind {@linkcode ConnectionPool.stats}: counts read off
 * the pool's parts.
 *
 * @module
 */

import type { PoolParts } from "./assembly.ts";
import { isCount, unreadable } from "./load.ts";
import type { PoolableConnection, PoolStats } from "./types.ts";

/**
 * The pool's counters now, as plain data: one pass over the connections
 * held, plus the opener's and the queue's counts; `closed` is the pool's
 * own state.
 */
export function poolStats<C extends PoolableConnection>(
  { ctx, roster, waiters, opener }: PoolParts<C>,
  closed: boolean,
): PoolStats {
  let idle = 0;
  let inUse = 0;
  let inFlight = 0;
  const list = roster.list;
  for (const entry of list) {
    if (entry.lent) inUse++;
    // One whose getter throws counts as held and nothing more (a snapshot
    // leaves it to the pool to drop it); its throw escaped from stats().
    if (unreadable(entry.conn) !== undefined) continue;
    const load = entry.conn.inFlight;
    // A custom connection's that is no count (NaN) would make the sum one;
    // the pool drops such a connection once it is in anyone's way.
    if (isCount(load)) inFlight += load;
    if (
      !entry.lent && entry.retire === undefined && load === 0 &&
      entry.conn.isOpen
    ) idle++;
  }
  return {
    address: ctx.address,
    open: list.length,
    idle,
    inUse,
    inFlight,
    waiting: waiters.queue.size,
    connecting: opener.connecting,
    totalCreated: opener.totalCreated,
    totalClosed: roster.totalClosed,
    totalFailed: opener.totalFailed,
    consecutiveFailures: opener.consecutiveFailures,
    blocked: opener.blocked,
    closed,
  };
}
