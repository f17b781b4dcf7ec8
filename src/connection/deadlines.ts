/**
 * Deadlines for many pending operations with one timer, and no record of
 * them beyond a number in each entry.
 *
 * Arming a timer per request costs more than the request itself (about
 * 1.5 µs per setTimeout/clearTimeout pair in Deno), so one timer serves
 * them all. Linking every entry into a list by deadline measured at a
 * tenth of a pipelined request's cost on V8 (each link is a store into a
 * long-lived object, paid for again by the garbage collector), so entries
 * are not linked at all: an entry gets its deadline, the timer is moved
 * earlier only when that deadline is the earliest, and when the timer
 * fires it scans the entries its owner holds (a connection's table of
 * requests in flight), expires those due and re-arms for the earliest of
 * the rest. With one timeout for every request, it fires about once per
 * timeout period, whatever the request rate, and each scan costs a few
 * nanoseconds an entry.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../clock.ts";
import { TickClock } from "../tick_clock.ts";
import { clearTimer, clockFailed, setTimer } from "../config/clock_failure.ts";
import type { ConfigError } from "../errors.ts";

/** An entry with a deadline. Callers extend it with their own fields. */
export interface DeadlineEntry {
  /** Absolute time, on the tracker's clock, when the entry expires. */
  deadline: number;
  /** The timeout it was added with. */
  timeoutMs: number;
}

/** Calls `visit` for every entry the owner still holds. */
export type EntryScan<E> = (visit: (entry: E) => void) => void;

/**
 * Tracks the deadlines of the entries `scan` yields and calls `onExpire`
 * for each one whose deadline passes, using a single timer on `clock`. An
 * entry stops being tracked when `scan` no longer yields it.
 */
export class DeadlineTracker<E extends DeadlineEntry> {
  readonly #clock: Clock;
  readonly #scan: EntryScan<E>;
  readonly #onExpire: (entry: E, timeoutMs: number) => void;
  readonly #onUntimed: (entry: E, error: ConfigError) => void;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  // Read once per tick, not per entry: a burst of requests shares it.
  readonly #tick: TickClock;
  // Reused by every firing; emptied before the callbacks run.
  #due: E[] = [];
  // The firing's clock reading, and the earliest deadline not yet due.
  #nowAtFire = 0;
  #next = Infinity;

  /**
   * Creates a tracker over the entries `scan` yields that reports expired
   * ones, with the timeout they were added with, to `onExpire`. Entries it
   * can no longer time (a custom clock whose `setTimeout()` threw as the
   * timer re-armed from its firing) go to `onUntimed`, with the
   * ConfigError naming the clock.
   */
  constructor(
    clock: Clock,
    scan: EntryScan<E>,
    onExpire: (entry: E, timeoutMs: number) => void,
    onUntimed: (entry: E, error: ConfigError) => void,
  ) {
    this.#clock = clock;
    this.#tick = new TickClock(clock, (thrown) => clockFailed(clock, thrown));
    this.#scan = scan;
    this.#onExpire = onExpire;
    this.#onUntimed = onUntimed;
  }

  /**
   * Sets `entry`'s deadline `timeoutMs` from now. The owner must hold it
   * (so that `scan` yields it) by the time the timer can fire.
   *
   * @throws {ConfigError} naming `clock` when its `now()` throws, or its
   * `setTimeout()` as the timer moves earlier for this deadline: the
   * tracker is left as it was, and the entry must not be held.
   */
  add(entry: E, timeoutMs: number): void {
    const now = this.#tick.now();
    const deadline = now + timeoutMs;
    entry.deadline = deadline;
    entry.timeoutMs = timeoutMs;
    if (deadline < this.#timerAt) this.#arm(deadline, now);
  }

  /**
   * The deadline `timeoutMs` from now, for entries the caller stamps
   * itself (a run of requests sent together shares one reading of the
   * clock): as {@linkcode DeadlineTracker.add} for each of them.
   */
  deadlineFor(timeoutMs: number): number {
    const now = this.#tick.now();
    const deadline = now + timeoutMs;
    if (deadline < this.#timerAt) this.#arm(deadline, now);
    return deadline;
  }

  /**
   * Cancels the timer. Entries never expire unless added again, also when
   * an expiry's callback stops the tracker while it fires. Never throws:
   * a custom clock whose clearTimeout() throws leaves its timer to fire,
   * and it finds nothing of the owner's left to expire. Let out, the
   * throw stopped the connection's shutdown (ConnectionCore.shutDown)
   * here, and no request in flight on it ever settled.
   */
  stop(): void {
    const timer = this.#timer;
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // A firing under way re-arms for this; stopped, it must not.
    this.#next = Infinity;
    if (timer !== undefined) clearTimer(this.#clock, timer);
  }

  /** Whether the single timer is armed (for tests and leak checks). */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Arms the timer for `at`. `now` is the time just read: the tick's
   * (add, deadlineFor) or the firing's (see #fire); read here again, a
   * clock that threw once then read fine was found working by the
   * request's catch (blameClock), which failed it with the raw Error.
   *
   * The new timer is armed before the old one is cleared, and the
   * tracker's state set only then: a custom clock whose setTimeout()
   * throws (the ConfigError naming it, thrown to the request that moved
   * the timer) leaves the tracker as it was. Set first, #timerAt claimed
   * a timer that was never armed, and no later deadline armed one: every
   * request after it on the connection waited for good. Only here, not in
   * add(): this runs only when the timer moves earlier, so the request
   * path pays for no try.
   *
   * A custom clock whose clearTimeout() throws leaves the timer being
   * replaced armed: the new one is armed all the same, and the old one,
   * when it fires, scans and expires only what is due by then. Let out,
   * the throw failed the request that moved the timer with the clock's
   * raw Error, left the tracker armed for the later time only, or went
   * out of a firing uncaught; the request's deadline is set, so it goes
   * on (the clock's failure is told where a caller waits on the clear
   * itself: a disconnect's grace).
   */
  #arm(at: number, now: number): void {
    const timer = setTimer(this.#clock, this.#fire, Math.max(0, at - now));
    if (this.#timer !== undefined) clearTimer(this.#clock, this.#timer);
    this.#timer = timer;
    this.#timerAt = at;
  }

  #visit = (entry: E): void => {
    const deadline = entry.deadline;
    if (deadline <= this.#nowAtFire) this.#due.push(entry);
    else if (deadline < this.#next) this.#next = deadline;
  };

  #fire = (): void => {
    const armedFor = this.#timerAt;
    // Stopped, or every deadline it was for handled already: a timer the
    // clock could not clear (see #arm and stop), which must expire
    // nothing (a stopped tracker's entries never expire).
    if (armedFor === Infinity) return;
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // The timer fired because the deadline it was armed for came: a
    // custom clock whose now() throws here gives that time instead. Its
    // throw escaped from the timer (uncaught on a real clock), and the
    // tracker was left unarmed: every request in flight on the connection
    // lost its deadline, and one a node never answers waited for good.
    let now: number;
    try {
      now = this.#clock.now();
    } catch {
      now = armedFor;
    }
    this.#nowAtFire = now;
    this.#next = Infinity;
    this.#scan(this.#visit);
    const due = this.#due;
    this.#due = [];
    // Earliest first; the same deadline in the order the scan gave them.
    if (due.length > 1) due.sort((a, b) => a.deadline - b.deadline);
    for (const entry of due) this.#onExpire(entry, entry.timeoutMs);
    // Read after the callbacks: one may have stopped the tracker (its
    // connection destroyed), and one may have added entries and armed
    // the timer already. Re-armed from the firing's reading, not a new
    // one: the callbacks take microseconds, and the clock is not read
    // from inside the timer again.
    const next = this.#next;
    if (next >= this.#timerAt) return;
    try {
      this.#arm(next, now);
    } catch (error) {
      // setTimer's: the ConfigError naming the clock, nothing else.
      this.#untimed(error as ConfigError);
    }
  };

  /**
   * The firing could not re-arm (`error`, the clock's setTimeout() named):
   * every entry no timer armed would expire in time fails with it. Left
   * as they were, they waited with no deadline (for good, on a node that
   * never answers) unless a later request happened to arm one; ending
   * the connection instead failed them all as lost, and its pool opened
   * another (whose open needs the same clock) while the reply path still
   * worked. The next add() arms again, and meets the clock as it is then.
   */
  #untimed(error: ConfigError): void {
    const timerAt = this.#timerAt;
    const untimed: E[] = [];
    this.#scan((entry) => {
      if (entry.deadline < timerAt) untimed.push(entry);
    });
    for (const entry of untimed) this.#onUntimed(entry, error);
  }
}
