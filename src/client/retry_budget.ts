/**
 * The retry budget: retries (and hedges) together may add at most a fixed
 * share of the requests sent recently (or a small floor per second, when
 * that is more: a client sending little can still retry), so
 * that a failing cluster receives a bounded multiple of its offered load
 * instead of `(1 + maxRetries)` times it.
 *
 * Requests are counted with one increment each, without reading the
 * clock: the window is only looked at when a retry asks for a token, and
 * requests that arrived since the last look are spread evenly over the
 * time that passed (an estimate that is exact under steady traffic).
 *
 * @module
 */

import type { RetryBudgetConfig } from "../config/shapes.ts";

/** The window is kept as this many slots, rotated as time passes. */
const SLOTS = 10;

/**
 * How many retries the recent traffic allows. One per client; O(1) per
 * request, O(slots) per retry.
 */
export class RetryBudget {
  /** Requests counted since the client started. */
  requests = 0;

  readonly #ratio: number;
  readonly #floor: number;
  readonly #slotMs: number;
  /** Requests counted when each slot began (estimated). */
  readonly #stamps = new Float64Array(SLOTS);
  /** Retries withdrawn in each slot. */
  readonly #retries = new Int32Array(SLOTS);
  #current = 0;
  #slotStart: number;
  #retriesInWindow = 0;

  constructor(config: RetryBudgetConfig, now: number) {
    this.#ratio = config.ratio;
    // The floor is per second; the window holds windowMs of it.
    this.#floor = config.minPerSecond * (config.windowMs / 1000);
    this.#slotMs = config.windowMs / SLOTS;
    this.#slotStart = now;
  }

  /**
   * Takes one retry from the budget when there is room for it.
   *
   * @returns false when retries already used the budget of the window.
   */
  tryWithdraw(now: number): boolean {
    this.#rotate(now);
    const oldest = (this.#current + 1) % SLOTS;
    const recent = this.requests - this.#stamps[oldest];
    // The floor lets a client that sends little still retry; under load
    // the share alone applies, so retries never add more than `ratio`.
    if (
      this.#retriesInWindow + 1 > Math.max(this.#ratio * recent, this.#floor)
    ) {
      return false;
    }
    this.#retries[this.#current]++;
    this.#retriesInWindow++;
    return true;
  }

  /** Advances the slots to `now`, estimating where requests fell. */
  #rotate(now: number): void {
    const elapsed = now - this.#slotStart;
    if (!(elapsed >= this.#slotMs)) return;
    const steps = Math.floor(elapsed / this.#slotMs);
    const since = this.#stamps[this.#current];
    const arrived = this.requests - since;
    for (let k = 1; k <= Math.min(steps, SLOTS); k++) {
      // Slots skipped beyond a whole window are all in the past; only the
      // last SLOTS of them matter.
      const step = steps - Math.min(steps, SLOTS) + k;
      const slot = (this.#current + k) % SLOTS;
      this.#retriesInWindow -= this.#retries[slot];
      this.#retries[slot] = 0;
      this.#stamps[slot] = since + arrived * (step * this.#slotMs) / elapsed;
    }
    this.#current = (this.#current + Math.min(steps, SLOTS)) % SLOTS;
    this.#slotStart += steps * this.#slotMs;
  }
}
