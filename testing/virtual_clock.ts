/**
 * A deterministic clock for tests: time moves only when the test says so.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../src/clock.ts";
import { InvalidArgumentError } from "../src/errors.ts";

interface VirtualTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * Lets pending promise callbacks and I/O callbacks run: a macrotask, so
 * socket reads that are ready get delivered too.
 */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A {@linkcode Clock} whose time advances only through
 * {@linkcode VirtualClock.advance}. Timers fire in deadline order (ties in
 * creation order), and the code under test gets to run between firings, so
 * a test can check a 5-second backoff in microseconds.
 *
 * @example
 * ```ts
 * import { VirtualClock } from "@nodewire/client/testing";
 * const clock = new VirtualClock();
 * let fired = false;
 * clock.setTimeout(() => (fired = true), 100);
 * await clock.advance(99);
 * console.log(fired); // false
 * await clock.advance(1);
 * console.log(fired); // true
 * ```
 */
export class VirtualClock implements Clock {
  #now: number;
  #nextId = 1;
  // Pending timers by id; a cancelled timer leaves the heap lazily.
  #live = new Map<number, VirtualTimer>();
  // A binary min-heap by (at, id): thousands of timers (one per simulated
  // node's pool, say) cost O(log n) to add, cancel and fire, not a scan.
  #heap: VirtualTimer[] = [];

  /** Starts the clock at `start` (finite) milliseconds. */
  constructor(start = 0) {
    this.#now = finite(start, "start", "new VirtualClock()");
  }

  /** The current virtual time. */
  now(): number {
    return this.#now;
  }

  /**
   * Schedules `fn` at `now() + ms` virtual milliseconds (now when `ms` is
   * negative). A NaN delay is a bug the real clock hides: refused here.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    if (typeof fn !== "function") {
      throw new InvalidArgumentError("fn", fn, "expected a function", {
        method: "VirtualClock.setTimeout",
      });
    }
    const timer = {
      id: this.#nextId++,
      at: later(this.#now, ms, "VirtualClock.setTimeout"),
      fn,
    };
    this.#live.set(timer.id, timer);
    this.#push(timer);
    return timer.id;
  }

  /** Cancels a pending timer. */
  clearTimeout(handle: TimerHandle): void {
    this.#live.delete(handle as number);
    // Keep the heap from filling with cancelled timers when many are
    // armed and cancelled without time moving.
    if (this.#heap.length > 64 && this.#heap.length > 2 * this.#live.size) {
      // A sorted array is a valid heap.
      this.#heap = [...this.#live.values()].sort((a, b) =>
        a.at - b.at || a.id - b.id
      );
    }
  }

  /** How many timers are pending. */
  get pendingTimers(): number {
    return this.#live.size;
  }

  /** The time of the earliest pending timer, or `undefined`. */
  nextTimerAt(): number | undefined {
    return this.#peek()?.at;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the
   * way, in order, and letting the code under test run after each one.
   * Timers due together all fire even if one throws; its error then
   * rejects, the clock at that instant. `ms` is finite and ≥ 0.
   */
  async advance(ms: number): Promise<void> {
    const target = later(this.#now, ms, "VirtualClock.advance", 0);
    await settle();
    for (;;) {
      // Every timer due at the same instant fires in one batch, in creation
      // order, before the code under test runs again.
      const batch = this.#takeDue(target);
      if (batch.length === 0) break;
      this.#now = batch[0].at;
      let failure: [unknown] | undefined;
      for (const timer of batch) {
        try {
          timer.fn();
        } catch (error) {
          failure ??= [error];
        }
      }
      await settle();
      if (failure) throw failure[0];
    }
    this.#now = target;
    await settle();
  }

  /** Advances to the next timer and fires it; false when there is none. */
  async runNext(): Promise<boolean> {
    const at = this.nextTimerAt();
    if (at === undefined) return false;
    await this.advance(at - this.#now);
    return true;
  }

  #takeDue(target: number): VirtualTimer[] {
    const first = this.#peek();
    if (first === undefined || first.at > target) return [];
    const due: VirtualTimer[] = [];
    // The heap yields equal deadlines in id order, i.e. creation order.
    let t: VirtualTimer | undefined = first;
    while (t !== undefined && t.at === first.at) {
      this.#pop();
      this.#live.delete(t.id);
      due.push(t);
      t = this.#peek();
    }
    return due;
  }

  /** The earliest timer still pending, dropping cancelled ones on the way. */
  #peek(): VirtualTimer | undefined {
    const heap = this.#heap;
    while (heap.length > 0 && this.#live.get(heap[0].id) !== heap[0]) {
      this.#pop();
    }
    return heap[0];
  }

  #push(timer: VirtualTimer): void {
    const heap = this.#heap;
    let i = heap.push(timer) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(timer, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = timer;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right], heap[left])
        ? right
        : left;
      if (!before(heap[child], last)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
  }
}

/**
 * `value` when it is a finite number from `min`, else an
 * InvalidArgumentError of `method`.
 */
function finite(
  value: number,
  argument: string,
  method: string,
  min = -Infinity,
): number {
  if (Number.isFinite(value) && value >= min) return value;
  throw new InvalidArgumentError(
    argument,
    value,
    `expected a finite number${min === 0 ? " ≥ 0" : ""}`,
    { method },
  );
}

/**
 * `now + ms` (`ms` below 0 counting as 0), for a finite `ms` from `min`,
 * else an InvalidArgumentError of `method`. The sum must be finite too:
 * a timer at Infinity never fires, and a clock at Infinity makes every
 * deadline computed from it NaN.
 */
function later(now: number, ms: number, method: string, min = -Infinity) {
  const at = now + Math.max(0, finite(ms, "ms", method, min));
  if (Number.isFinite(at)) return at;
  throw new InvalidArgumentError(
    "ms",
    ms,
    "expected a delay that keeps the clock's time finite",
    { method },
  );
}

/** Heap order: earlier deadline first, then earlier creation. */
function before(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.id < b.id);
}
