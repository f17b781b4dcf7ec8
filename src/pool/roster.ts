/**
 * The connections one pool holds: the list of their records (the record
 * itself is entry.ts), the choice of one for a request, and letting them
 * go.
 *
 * @module
 */

import { PoolMisuseError } from "../errors.ts";
import { asError } from "../errors/base.ts";
import type { PoolContext } from "./context.ts";
import type { Entry } from "./entry.ts";
import type { ConnectionClosedReason } from "./events.ts";
import { hasWork, idOf, uncounted, unreadable } from "./load.ts";
import { closeQuietly, destroyQuietly, noop } from "./quiet_close.ts";
import type { PoolableConnection } from "./types.ts";

/** A close the pool started and waits for. */
interface Closing<C> {
  readonly conn: C;
  /**
   * Since when it has not been seen with requests in flight; undefined
   * until first looked at when the clock could not be read as it began.
   */
  quietSince: number | undefined;
}

/**
 * The connections a pool holds, oldest first, with the counts the pool
 * decides by. It picks the connection for a request and lets connections
 * go (retired, removed, discarded), tracking their closes until they
 * settle. It never opens one: the opener admits what the factory delivers.
 */
export class Roster<C extends PoolableConnection> {
  /** Open connections, oldest first: the order shared use prefers, so old ones stay warm and new ones idle out. */
  readonly list: Entry<C>[] = [];
  /** Every held connection, plus lent ones that broke, until returned. */
  readonly entries: Map<C, Entry<C>> = new Map();

  readonly #ctx: PoolContext;
  readonly #threshold: number;
  /** `idleTimeoutMs`, or `Infinity` when idle connections never close. */
  readonly #idleMs: number;
  readonly #min: number;
  /** Every connection this pool ever admitted, to tell "returned twice" from "another pool's". */
  #known = new WeakSet<C>();
  /** Held connections that may still be handed out (neither retiring nor removed). */
  #live = 0;
  /** Closes started by the pool that have not settled, and their connections. */
  #closing = new Map<Promise<void>, Closing<C>>();
  /** Lent connections a closing pool waits for, and what ends that wait. */
  #letGo = new Map<Entry<C>, () => void>();
  #totalClosed = 0;

  /** Creates an empty roster. */
  constructor(ctx: PoolContext) {
    this.#ctx = ctx;
    this.#threshold = ctx.config.multiplexThreshold;
    this.#idleMs = ctx.config.idleTimeoutMs > 0
      ? ctx.config.idleTimeoutMs
      : Infinity;
    this.#min = ctx.config.minConnections;
  }

  /** Held connections that may still be handed out (neither retiring nor removed). */
  get live(): number {
    return this.#live;
  }

  /** Connections the pool let go of over its life. */
  get totalClosed(): number {
    return this.#totalClosed;
  }

  /** Closes started by the pool that have not settled yet. */
  get closing(): number {
    return this.#closing.size;
  }

  /** The closes in progress, to wait for. */
  closes(): Promise<void>[] {
    return [...this.#closing.keys()];
  }

  /**
   * Every connection not let go of for good, oldest first: those held,
   * then those whose close the pool started and still waits for. A
   * closing pool takes its busy connections off the list to close once
   * idle; left out here, a disconnect's destroy after its grace missed
   * them and waited on their slowest request (a hedge's losing attempt).
   */
  connections(): C[] {
    const all = this.list.map((entry) => entry.conn);
    for (const { conn } of this.#closing.values()) {
      if (!all.includes(conn)) all.push(conn);
    }
    return all;
  }

  /**
   * Gives up on the closes in progress whose connection has gone `limitMs`,
   * at `now`, without being seen with requests in flight: each is destroyed
   * with `error()` (a custom connection's close may never settle) and no
   * longer waited for; what its close does later is handled quietly. A
   * connection seen busy is left to finish (each request has a timeout of
   * its own). Returns when to look again.
   */
  overdueCloses(now: number, limitMs: number, error: () => Error): number {
    let next = Infinity;
    for (const [closing, record] of [...this.#closing]) {
      if (record.quietSince === undefined || hasWork(record.conn)) {
        record.quietSince = now;
      }
      const due = record.quietSince + limitMs;
      if (now < due) {
        next = Math.min(next, due);
        continue;
      }
      this.#closing.delete(closing);
      destroyQuietly(record.conn, error());
    }
    return next;
  }

  /**
   * Takes in a connection the factory delivered: usable from now on, and
   * let go of by itself when its `closed` settles.
   */
  admit(conn: C, now: number, expiresAt: number): Entry<C> {
    const entry: Entry<C> = {
      conn,
      id: conn.id,
      closed: conn.closed,
      expiresAt,
      lastUsedAt: now,
      checkedAt: now,
      probing: false,
      lent: false,
      promised: false,
      retire: undefined,
      removed: false,
      used: false,
    };
    this.list.push(entry);
    this.entries.set(conn, entry);
    this.#known.add(conn);
    this.#live++;
    entry.closed.then(
      (error) => this.#gone(entry, error),
      (error) => this.#gone(entry, asError(error)),
    );
    return entry;
  }

  // ---------------------------------------------------------------- choosing

  /**
   * The usable connection with the fewest requests in flight, oldest first
   * on ties; stops at the first one with none, so the common case looks at
   * one or two entries. Drops connections found broken on the way, and
   * retires the one it would choose if that is past its limits at `now`
   * (see {@linkcode Roster.pickShared}).
   */
  leastLoaded(now: number): Entry<C> | undefined {
    return this.#pick(now, 1);
  }

  /**
   * What an exclusive caller gets now: an idle connection; else a busy one
   * only when waiting could not bring a fresh one (no open in progress and
   * none allowed now), since exclusive work is better off alone. Never one
   * just handed to a shared caller that has not sent yet (`promised`):
   * then another idle one, or nothing until that caller's turn is over.
   */
  pickExclusive(now: number): Entry<C> | undefined {
    const entry = this.leastLoaded(now);
    if (entry === undefined) return undefined;
    if (entry.promised) return this.#idleUnpromised(now);
    if (entry.conn.inFlight === 0) return entry;
    return this.#ctx.wouldOpen() ? undefined : entry;
  }

  /**
   * An idle usable connection not `promised`, within its limits at `now`.
   * Off the request path: only while a shared caller's turn is pending.
   */
  #idleUnpromised(now: number): Entry<C> | undefined {
    for (const entry of this.list) {
      if (entry.lent || entry.promised || entry.retire !== undefined) continue;
      const conn = entry.conn;
      if (!conn.isOpen || conn.inFlight !== 0 || now >= entry.expiresAt) {
        continue;
      }
      if (now < entry.lastUsedAt + this.#idleMs || this.#live <= this.#min) {
        return entry;
      }
    }
    return undefined;
  }

  /**
   * The connection for the next shared request: the oldest usable one with
   * fewer than `multiplexThreshold` requests in flight, else the least
   * loaded. Filling one connection before spilling onto the next keeps a
   * tick's frames together in one write, which is what makes multiplexing
   * pay: spreading 64 requests over 20 sockets costs 20 writes instead of
   * one, and measured at a tenth of the throughput.
   *
   * A connection past its lifetime, or idle past `idleTimeoutMs` while the
   * pool holds more than the minimum, is retired instead of chosen, as the
   * housekeeper would have done had its timer fired on time (a busy event
   * loop delays it). The check costs two comparisons with `now`, the tick's
   * clock reading the caller has at hand.
   */
  pickShared(now: number): Entry<C> | undefined {
    return this.#pick(now, this.#threshold);
  }

  /**
   * The oldest usable entry with fewer than `below` requests in flight,
   * else the least loaded, found in one pass (a saturated pool would
   * otherwise scan twice per request). An entry past its limits at `now`
   * is retired instead of chosen, and the search starts over (rare).
   */
  #pick(now: number, below: number): Entry<C> | undefined {
    const list = this.list;
    let best: Entry<C> | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < list.length; i++) {
      const entry = list[i];
      if (entry.lent || entry.retire !== undefined) continue;
      const conn = entry.conn;
      if (!conn.isOpen) {
        this.remove(entry, "error", undefined, false);
        // Look again from the start, as after a retirement (rare): a
        // connectionClosed listener may have closed or cleared the pool,
        // or been lent `best`, which was then handed out regardless.
        i = -1;
        best = undefined;
        bestLoad = Infinity;
        continue;
      }
      const load = conn.inFlight;
      if (load < below) {
        if (now < entry.expiresAt && now < entry.lastUsedAt + this.#idleMs) {
          return entry;
        }
        if (!this.#expire(entry, now)) return entry;
        i = -1; // retired, perhaps removed: look again
        best = undefined;
        bestLoad = Infinity;
      } else if (load < bestLoad) {
        best = entry;
        bestLoad = load;
      }
    }
    // Busy, so never idle; only its lifetime can have run out.
    if (
      best !== undefined && now >= best.expiresAt && this.#expire(best, now)
    ) {
      return this.#pick(now, below);
    }
    return best;
  }

  /**
   * Retires `entry` if it is past its lifetime at `now`, or idle (nothing in
   * flight) longer than `idleTimeoutMs` while the pool holds more than the
   * minimum; closes it now when nothing is in flight on it. Returns whether
   * it did. The limits the housekeeper applies, checked at checkout.
   */
  #expire(entry: Entry<C>, now: number): boolean {
    if (now >= entry.expiresAt) {
      this.retire(entry, "lifetime");
      if (entry.conn.inFlight === 0) {
        this.remove(entry, "lifetime", undefined, true);
      }
      // Else its housekeeper's timer is due already (armed for its
      // lifetime) and closes it once idle.
      return true;
    }
    if (
      entry.conn.inFlight === 0 && !entry.probing && this.#live > this.#min
    ) {
      this.remove(entry, "idle", undefined, true);
      return true;
    }
    return false;
  }

  // ----------------------------------------------------------------- closing

  /**
   * Drops, as broken, the connections that may be handed out but whose
   * `inFlight` is no count, or whose `isOpen` or `inFlight` getter throws
   * (see {@linkcode uncounted}, {@linkcode unreadable}): they were never
   * chosen, or threw from the pick, and a caller waited for them in
   * vain. Destroyed, with
   * `connectionClosed` (reason `error`) carrying the error. For callers
   * waiting (as they are served), never for one served at once.
   */
  dropUnusable(): void {
    const list = this.list;
    // Backwards, without a copy: a removal moves only entries looked at.
    // A listener of the removal may change the list: what is gone is skipped.
    for (let i = list.length - 1; i >= 0; i--) {
      const entry = list[i];
      if (entry === undefined || entry.lent || entry.retire !== undefined) {
        continue;
      }
      const error = unreadable(entry.conn) ?? uncounted(entry.conn);
      if (error !== undefined) this.dropBroken(entry, error);
    }
  }

  /** Lets go of a connection found broken, and destroys it with `error`. */
  dropBroken(entry: Entry<C>, error: Error): void {
    // Off the books first, so nothing is handed it while it ends.
    this.remove(entry, "error", error, false);
    destroyQuietly(entry.conn, error);
  }

  /** Stops handing a connection out; it closes once idle. */
  retire(entry: Entry<C>, reason: ConnectionClosedReason): void {
    if (entry.retire !== undefined || entry.removed) return;
    entry.retire = reason;
    this.#live--;
    // A replacement may be due to keep the minimum.
    this.#ctx.pumpSoon();
  }

  /**
   * Lets go of a connection: off the books at once, closed gracefully when
   * `initiate` (else it is closing or closed already). A lent one stays in
   * the map until returned, so that its return is not mistaken for misuse.
   */
  remove(
    entry: Entry<C>,
    reason: ConnectionClosedReason,
    error: Error | undefined,
    initiate: boolean,
  ): void {
    if (entry.removed) return;
    entry.removed = true;
    if (entry.retire === undefined) this.#live--;
    const index = this.list.indexOf(entry);
    if (index >= 0) this.list.splice(index, 1);
    if (!entry.lent) this.entries.delete(entry.conn);
    this.#totalClosed++;
    const release = this.#letGo.get(entry);
    if (initiate) this.#track(entry.conn, closeQuietly(entry.conn));
    else if (release !== undefined) {
      // Closing on its own: a closing pool waits for it as for its own
      // closes, within the same bound.
      this.#track(entry.conn, entry.closed.then(noop, noop));
    }
    release?.();
    const ctx = this.#ctx;
    ctx.pumpSoon();
    if (ctx.target.hasListeners("connectionClosed")) {
      ctx.events.emit("connectionClosed", {
        address: ctx.address,
        connectionId: entry.id,
        reason,
        error,
      });
    }
  }

  /**
   * Lets go of every connection as the pool closes: those not lent close
   * gracefully now (what is in flight finishes); lent ones stay with their
   * holders, retired, and close when returned. Returns, for each lent one,
   * a promise that resolves once the pool let go of it (returned, and its
   * close started, or broken): the wait for its close is then the pool's
   * bounded wait for every close (`closes`), not its `closed`, which a
   * custom connection may never settle.
   */
  closeAll(): Promise<void>[] {
    const held: Promise<void>[] = [];
    for (const entry of this.list.slice()) {
      if (entry.lent) {
        this.retire(entry, "poolClosed");
        held.push(
          new Promise<void>((resolve) => this.#letGo.set(entry, resolve))
            .then(() => {
              this.#letGo.delete(entry);
            }),
        );
      } else {
        this.remove(entry, "poolClosed", undefined, true);
      }
    }
    return held;
  }

  /** Closes a connection the factory delivered but the pool will not keep. */
  discard(conn: C, reason: ConnectionClosedReason): void {
    this.#totalClosed++;
    conn.closed.then(noop, noop);
    this.#track(conn, closeQuietly(conn));
    const ctx = this.#ctx;
    if (ctx.target.hasListeners("connectionClosed")) {
      ctx.events.emit("connectionClosed", {
        address: ctx.address,
        connectionId: conn.id,
        reason,
        error: undefined,
      });
    }
  }

  /** The error for a `returnConnection()` of a connection that is not lent. */
  misuse(conn: C): PoolMisuseError {
    const address = this.#ctx.address;
    // A proxy or getter that throws: the error is about the misuse.
    const id = idOf(conn);
    return new PoolMisuseError(
      address,
      this.#known.has(conn)
        ? `connection ${id} was returned to the pool for ${address} ` +
          `but is not checked out: returned twice, or obtained from ` +
          `acquireShared(), which does not check out`
        : `connection ${id} does not belong to the pool for ${address}`,
    );
  }

  /** The connection's `closed` settled: it broke or closed on its own. */
  #gone(entry: Entry<C>, error: Error | undefined): void {
    if (!entry.removed) this.remove(entry, "error", error, false);
  }

  #track(conn: C, closing: Promise<void>): void {
    const ctx = this.#ctx;
    // A custom clock whose now() throws: let out, the throw left the
    // removal half done (no event), and a closing pool's other
    // connections never closed. The close is timed from its first look
    // instead, whose own reading tells of the clock (see drainPool).
    let now: number | undefined;
    try {
      now = ctx.clock.now();
    } catch {
      now = undefined;
    }
    this.#closing.set(closing, { conn, quietSince: now });
    closing.then(() => this.#closing.delete(closing));
    // Looked at again then, while the pool runs (see overdueCloses).
    if (now !== undefined) ctx.wakeAt(now + ctx.createTimeoutMs);
  }
}
