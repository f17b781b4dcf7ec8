/**
 * The pool's one maintenance timer and what it does when it fires: retire
 * connections past their lifetime, close those idle too long, expire
 * waiters, give up on closes that do not settle, and check idle
 * connections with a heartbeat.
 *
 * @module
 */

import { type Clock, holdTimer, type TimerHandle } from "../clock.ts";
import type { PoolConfig } from "../config/shapes.ts";
import { clearTimer, setTimer } from "../config/clock_failure.ts";
import type { PoolContext } from "./context.ts";
import { type ConfigError, ConnectionLostError } from "../errors.ts";
import { asError } from "../errors/base.ts";
import { overdueClose } from "./drain.ts";
import { endpointOf } from "./endpoint.ts";
import type { Entry } from "./entry.ts";
import { uncounted, unreadable } from "./load.ts";
import type { Roster } from "./roster.ts";
import type { PoolableConnection } from "./types.ts";

/**
 * A connection due to close while requests are in flight on it is looked at
 * again after this long, because a connection does not announce that its
 * last request finished.
 */
const BUSY_RECHECK_MS = 1000;
/** The longest delay a timer accepts before it overflows and fires at once. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Owns the pool's one maintenance timer. Every deadline (a waiter's
 * timeout, a lifetime, an idle timeout, a heartbeat, the end of a backoff)
 * arms it for the earliest; when it fires it does all the work due and
 * arms it for the next. No timer per waiter or per connection. It keeps
 * the process alive only while a caller awaits what it bounds (see
 * `hold`).
 */
export class Housekeeper<C extends PoolableConnection> {
  readonly #ctx: PoolContext;
  readonly #config: Readonly<PoolConfig>;
  readonly #clock: Clock;
  readonly #roster: Roster<C>;
  readonly #heartbeat: ((conn: C) => Promise<unknown>) | undefined;
  /** The timer, and when it fires (`Infinity` when unset). */
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  /** Whether the timer keeps the process alive (see `hold`). */
  #held = false;
  /** Set by `stop()`, when the pool closes: nothing is armed again. */
  #stopped = false;

  /** Creates a housekeeper; the timer is armed on the first deadline. */
  constructor(
    ctx: PoolContext,
    roster: Roster<C>,
    heartbeat: ((conn: C) => Promise<unknown>) | undefined,
  ) {
    this.#ctx = ctx;
    this.#config = ctx.config;
    this.#clock = ctx.clock;
    this.#roster = roster;
    this.#heartbeat = heartbeat;
  }

  /**
   * Arms the timer for `at`, unless it fires sooner already. Never
   * throws: a custom clock whose setTimeout() throws fails every waiter
   * with the ConfigError naming it (see #arm).
   */
  wakeAt(at: number): void {
    const failed = this.wakeFor(at);
    if (failed !== undefined) this.#ctx.failWaiters(failed);
  }

  /**
   * As {@linkcode Housekeeper.wakeAt}, for a waiter just queued with
   * deadline `at`: the ConfigError naming the clock is given back instead,
   * for that waiter alone (those queued before it are timed by the timer
   * armed already, which fires no later than their deadlines). Failed
   * here with the others, its `checkoutFailed` listener asking again met
   * the same clock, and so on until the stack overflowed.
   */
  wakeFor(at: number): ConfigError | undefined {
    if (this.#stopped) return undefined;
    let failed: ConfigError | undefined;
    if (at !== Infinity && at < this.#timerAt) {
      const delay = Math.min(
        Math.max(0, at - this.#clock.now()),
        MAX_TIMER_MS,
      );
      failed = this.#arm(at, delay);
    }
    this.hold();
    return failed;
  }

  /**
   * Arms the timer to fire at once, without reading the clock: for a
   * path that met a clock whose `now()` threw and so could not say when
   * it is due. The firing reads it again and arms what is due from there.
   */
  wakeUnread(): void {
    if (this.#stopped) return;
    // Sooner than any time: no wakeAt replaces it before it fires.
    const failed = this.#arm(-Infinity, 0);
    this.hold();
    if (failed !== undefined) this.#ctx.failWaiters(failed);
  }

  /**
   * Arms the timer for `at`, `delay` from now, in place of the one armed.
   *
   * A custom clock whose setTimeout() throws: the ConfigError naming it is
   * given back, and the housekeeper is left as it was (the new timer is
   * armed before the old one is cleared, and the state set only then), so
   * the next wake tries again. Let out, the throw went out of whatever
   * woke the housekeeper, half done: a checkout's wait left its waiter
   * queued with its promise rejected (a connection given back later was
   * lent to nobody), an open was counted and never started, a connection
   * given back was reported as a clock whose now() threw. A pool whose
   * clock cannot arm its one timer times none of its waits: the waiters
   * fail with that error (wakeAt, wakeUnread), each caller hearing why
   * now rather than waiting past its deadline, for good if nothing else
   * woke the pool. Opens are bounded by their own connect limit;
   * lifetimes, idle times and heartbeats wait for the next timer armed.
   *
   * A custom clock whose clearTimeout() throws leaves the later timer
   * armed; its firing is a look at the pool with nothing due yet. Let out,
   * the throw left the timer armed for the later time only, and went out
   * of whatever woke the housekeeper (a checkout, a connection taken in or
   * given back) with that work half done.
   */
  #arm(at: number, delay: number): ConfigError | undefined {
    let timer: TimerHandle;
    try {
      timer = setTimer(this.#clock, this.#fire, delay);
    } catch (failed) {
      return failed as ConfigError;
    }
    if (this.#timer !== undefined) clearTimer(this.#clock, this.#timer);
    this.#timer = timer;
    this.#timerAt = at;
    this.#held = false;
    return undefined;
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#held = false;
    // A throw here (a clock whose now() throws) would be uncaught. The
    // timer is armed again by the next wakeAt, once the clock reads.
    try {
      this.#maintain();
    } catch (thrown) {
      this.#ctx.failWaiters(thrown);
    }
  };

  /**
   * Makes the timer keep the process alive while a waiter is queued (it
   * is armed for the waiter's deadline or sooner: the create timeout of
   * the open it waits on, the end of a backoff), and no longer once none
   * is; called wherever that may have changed. Unreferenced throughout, a
   * checkout whose open held no socket (a custom factory or channel) let
   * Node end the program inside the await, the promise never settled;
   * referenced for good, the idle and lifetime timers would hold a
   * process that has nothing left to do.
   */
  hold(): void {
    const hold = this.#timer !== undefined && this.#ctx.awaited();
    if (hold === this.#held) return;
    this.#held = hold;
    holdTimer(this.#clock, this.#timer, hold);
  }

  /**
   * Arms the timer for a connection used at `now`: for its idle timeout
   * when the pool holds more than the minimum, and for its heartbeat.
   */
  wakeAfterUse(now: number): void {
    const config = this.#config;
    if (config.idleTimeoutMs > 0 && this.#roster.live > config.minConnections) {
      this.wakeAt(now + config.idleTimeoutMs);
    }
    this.wakeForHeartbeat(now);
  }

  /** Arms the timer for a heartbeat `heartbeatIntervalMs` from `now`. */
  wakeForHeartbeat(now: number): void {
    const interval = this.#config.heartbeatIntervalMs;
    if (this.#heartbeat !== undefined && interval > 0) {
      this.wakeAt(now + interval);
    }
  }

  /** Stops the timer for good: the pool is closing. */
  stop(): void {
    this.#stopped = true;
    // Let out, the throw stopped the pool's close here (closing.ts): no
    // waiter failed, no connection closed, close() never settled. The
    // timer left armed finds the pool closed.
    if (this.#timer !== undefined) clearTimer(this.#clock, this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#held = false;
  }

  /**
   * Closes a retiring connection now if idle, else looks again later; one
   * whose `inFlight` is no count would never look idle, and is dropped as
   * broken instead.
   */
  closeWhenIdle(entry: Entry<C>, now: number): void {
    if (entry.removed || entry.lent) return; // a lent one closes on return
    // Checked first: a getter that throws escaped from clear() and the
    // timer.
    const error = uncounted(entry.conn);
    if (error !== undefined) this.#roster.dropBroken(entry, error);
    else if (entry.conn.inFlight === 0) {
      this.#roster.remove(entry, entry.retire ?? "stale", undefined, true);
    } else this.wakeAt(now + BUSY_RECHECK_MS);
  }

  /**
   * Retires connections past their lifetime, closes those idle too long
   * above the minimum, drops broken ones, refills, and arms the timer for
   * the next deadline.
   */
  #maintain(): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    const roster = this.#roster;
    const { idleTimeoutMs, minConnections } = this.#config;
    // Waiters first: a caller's own wait ends as it always did.
    let next = this.#ctx.expireWaiters(now);
    next = Math.min(next, this.#ctx.expireOpens(now));
    // A close that never settles (a peer that never closes its side) held
    // its connection open until the pool closed: given up on as drainPool
    // does, once it has gone createTimeoutMs with nothing in flight.
    const limitMs = this.#ctx.createTimeoutMs;
    next = Math.min(
      next,
      roster.overdueCloses(
        now,
        limitMs,
        () => overdueClose(this.#ctx.address, limitMs),
      ),
    );
    for (const entry of roster.list.slice()) {
      if (entry.removed) continue;
      // Given back while the clock threw (see checkIn): used until now.
      if (entry.lastUsedAt === Infinity) entry.lastUsedAt = now;
      // A getter that throws escaped from the timer (uncaught), the
      // timer was not armed again and the connection stayed.
      const broken = unreadable(entry.conn);
      if (broken !== undefined) {
        roster.dropBroken(entry, broken);
        continue;
      }
      if (!entry.conn.isOpen) {
        roster.remove(entry, "error", undefined, false);
        continue;
      }
      if (entry.retire === undefined && now >= entry.expiresAt) {
        roster.retire(entry, "lifetime");
      }
      if (entry.retire !== undefined) {
        this.closeWhenIdle(entry, now);
      } else if (entry.expiresAt < next) {
        next = entry.expiresAt;
      }
    }
    if (idleTimeoutMs > 0) {
      let surplus = roster.live - minConnections;
      for (const entry of roster.list.slice()) {
        if (surplus <= 0) break;
        if (entry.removed || entry.lent || entry.retire !== undefined) continue;
        // Its own heartbeat ping is no sign of use; look again after it.
        if (entry.probing) continue;
        if (entry.conn.inFlight !== 0) {
          // Busy now: its idle time starts no earlier than this.
          entry.lastUsedAt = now;
        } else if (now >= entry.lastUsedAt + idleTimeoutMs) {
          roster.remove(entry, "idle", undefined, true);
          surplus--;
          continue;
        }
        next = Math.min(next, entry.lastUsedAt + idleTimeoutMs);
      }
    }
    next = Math.min(next, this.#heartbeats(now));
    this.#ctx.pump();
    this.wakeAt(next);
  }

  /**
   * Pings every idle connection that has been quiet for
   * `heartbeatIntervalMs`, so that a half-open socket is found and
   * replaced before a request lands on it. Returns when the next one is
   * due. Busy connections are checked by their own requests' timeouts;
   * lent ones are looked at again when returned.
   */
  #heartbeats(now: number): number {
    const interval = this.#config.heartbeatIntervalMs;
    if (this.#heartbeat === undefined || interval <= 0) return Infinity;
    let next = Infinity;
    for (const entry of this.#roster.list.slice()) {
      if (entry.removed || entry.lent || entry.retire !== undefined) continue;
      if (entry.probing) {
        // A check is given until the next one would be due (checkedAt is
        // when it started): one that never settles would keep its
        // connection from ever being checked or idled out again.
        const end = entry.checkedAt + interval;
        if (now < end) next = Math.min(next, end);
        else {
          this.#probeFailed(
            entry,
            new ConnectionLostError(
              endpointOf(this.#ctx.address),
              `heartbeat did not settle within ${interval} ms`,
            ),
          );
        }
        continue;
      }
      const due = Math.max(entry.lastUsedAt, entry.checkedAt) + interval;
      if (due > now) {
        next = Math.min(next, due);
      } else if (entry.conn.inFlight !== 0) {
        next = Math.min(next, now + interval);
      } else {
        this.#probe(entry, now);
        next = Math.min(next, now + interval);
      }
    }
    return next;
  }

  #probe(entry: Entry<C>, now: number): void {
    entry.probing = true;
    entry.checkedAt = now;
    let check: Promise<unknown>;
    try {
      // A hook that returns no promise answered at once.
      check = Promise.resolve(this.#heartbeat!(entry.conn));
    } catch (error) {
      check = Promise.reject(error);
    }
    check.then(
      () => {
        if (!entry.probing) return; // failed already: it took too long
        entry.probing = false;
        if (entry.removed || this.#stopped) return;
        entry.checkedAt = this.#clock.now();
        this.wakeForHeartbeat(entry.checkedAt);
      },
      (reason) => this.#probeFailed(entry, asError(reason)),
    );
  }

  #probeFailed(entry: Entry<C>, error: Error): void {
    if (!entry.probing) return;
    entry.probing = false;
    if (entry.removed || this.#stopped) return;
    this.#roster.dropBroken(entry, error);
  }
}
