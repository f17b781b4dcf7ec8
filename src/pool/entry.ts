/**
 * The record a pool keeps for each connection it holds. Apart from the
 * roster because every part of the pool reads and writes it (the pool and
 * the waiters lend it, the housekeeper probes it, the shared turn marks
 * it), while only the roster keeps the list of them.
 *
 * @module
 */

import type { ConnectionClosedReason } from "./events.ts";

/**
 * A connection the pool holds, with its bookkeeping.
 */
export interface Entry<C> {
  readonly conn: C;
  /**
   * The connection's `id` and `closed`, read once as it was taken in: a
   * custom connection's getter that threw later escaped from the events
   * that name it (from a timer, or as an unhandled rejection when it
   * closed) and from a closing pool's wait for it.
   */
  readonly id: number;
  /** See {@linkcode Entry.id}. */
  readonly closed: Promise<Error | undefined>;
  /** When it retires; `Infinity` without a lifetime. */
  readonly expiresAt: number;
  /**
   * Last time it was handed out, given back, or seen busy; `Infinity`
   * when given back while the clock threw, until the housekeeper reads it.
   */
  lastUsedAt: number;
  /** Lent exclusively. */
  lent: boolean;
  /**
   * Handed to a shared caller that has not sent on it yet: not lent until
   * its turn is over (see shared_turn.ts).
   */
  promised: boolean;
  /** Set once it must not be handed out again; it closes as soon as it is idle. */
  retire: ConnectionClosedReason | undefined;
  /** Last time it answered a heartbeat, or the one in flight started (or it opened). */
  checkedAt: number;
  /** A heartbeat is in flight on it. */
  probing: boolean;
  /** No longer held (closed or broken); kept in the map only while lent. */
  removed: boolean;
  /**
   * Handed out at least once: a connection that breaks then has served
   * (its requests get their own errors and retries); one that breaks
   * unused soon after it opened is a failed open (see opening.ts).
   */
  used: boolean;
}
