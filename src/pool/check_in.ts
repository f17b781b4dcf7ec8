/**
 * The check-in of a connection lent for exclusive use
 * (`ConnectionPool.returnConnection()`, once the connection is known to be
 * lent): what becomes of it (dropped, retired, kept idle) and, when a
 * caller waits for a connection to itself, the hand-over to it. Apart from
 * the pool's API because it is the longest of its paths and reads only
 * the parts; not on a request's path (requests share connections, never
 * check them out).
 *
 * @module
 */

import { clockFailed } from "../config/clock_failure.ts";
import type { PoolParts } from "./assembly.ts";
import type { Entry } from "./entry.ts";
import { uncounted, unreadable } from "./load.ts";
import type { Pump } from "./pump.ts";
import type { PoolableConnection } from "./types.ts";

/**
 * Takes back `entry`, lent until now by `pool`, whose parts and pump are
 * given. `pool.isClosed` is read after `checkedIn`'s listeners ran, which
 * may have closed the pool.
 */
export function checkIn<C extends PoolableConnection>(
  parts: PoolParts<C>,
  pump: Pump<C>,
  pool: { readonly isClosed: boolean },
  entry: Entry<C>,
): void {
  const { ctx, events, roster, keeper, tick, waiters } = parts;
  const { target } = ctx;
  const queue = waiters.queue;
  const conn = entry.conn;
  entry.lent = false;
  if (target.hasListeners("checkedIn")) {
    events.emit("checkedIn", {
      address: ctx.address,
      connectionId: entry.id,
    });
    // A listener's own call (getConnection, which serves the waiters)
    // may have lent it already: handed over again below, it was lent
    // twice.
    if (entry.lent) return;
  }
  if (entry.removed) {
    roster.entries.delete(conn);
    return;
  }
  // A getter that throws escaped to the caller returning it, and the
  // connection stayed, counted, never handed out again.
  const broken = unreadable(conn);
  if (broken !== undefined) {
    roster.dropBroken(entry, broken);
    return;
  }
  if (!conn.isOpen) {
    roster.remove(entry, "error", undefined, false);
    return;
  }
  if (pool.isClosed) {
    // Its graceful close lets what is in flight on it finish.
    roster.remove(entry, "poolClosed", undefined, true);
    return;
  }
  // Its inFlight is no count (a custom connection): never chosen, it
  // would keep the callers waiting for it until their timeout.
  const uncountable = uncounted(conn);
  if (uncountable !== undefined) {
    roster.dropBroken(entry, uncountable);
    return;
  }
  try {
    if (!keep(parts, entry, tick.now())) return;
  } catch (thrown) {
    // A custom clock whose now() throws: the connection is back all the
    // same, its time unknown. Its idle time starts at the housekeeper's
    // next reading, which arms the timers from there; the waiters are
    // served, or failed with the clock's error. Before, nothing was
    // served until something else pumped.
    entry.lastUsedAt = Infinity;
    keeper.wakeUnread();
    pump.pumpOrFail();
    throw clockFailed(ctx.clock, thrown);
  }
  // The oldest waiter wants a connection to itself and this one is free:
  // hand it over directly instead of scanning the queue and the pool.
  if (!pump.pumping && conn.inFlight === 0 && !entry.promised) {
    const head = queue.peek();
    if (head !== undefined && head.exclusive) {
      waiters.grant(head, entry);
      if (queue.shared === 0) return;
    }
  }
  pump.pump();
}

/**
 * Keeps `entry`, given back at `now`, and arms the timers for it; one due
 * to retire is closed once idle instead. Says whether it was kept.
 */
function keep<C extends PoolableConnection>(
  { roster, keeper }: PoolParts<C>,
  entry: Entry<C>,
  now: number,
): boolean {
  if (entry.retire === undefined && now >= entry.expiresAt) {
    roster.retire(entry, "lifetime");
  }
  if (entry.retire !== undefined) {
    keeper.closeWhenIdle(entry, now);
    return false;
  }
  entry.lastUsedAt = now;
  keeper.wakeAfterUse(now);
  return true;
}
