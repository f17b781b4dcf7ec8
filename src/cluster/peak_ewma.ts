/**
 * The latency estimates behind the `"peak-ewma"` balancer (power of two
 * choices over a peak-EWMA cost, as in Finagle, linkerd and tower; the
 * balancer itself is in peak_ewma_balancer.ts).
 *
 * Each node has a latency estimate that jumps to a reply's time at once
 * when the reply is slower than the estimate (the peak), and otherwise
 * moves toward new replies with a time constant, so one slow reply is
 * remembered for seconds while a run of fast ones is needed to forget it.
 * When a node gets no replies (it is being passed over) its estimate
 * decays toward zero with the same time constant, so it is tried again
 * sooner or later: a node that was slow once is not shunned for ever.
 *
 * A pick compares `estimate × (in flight + 1)` of two candidates: the
 * latency says how fast the node answers, the in-flight count how many
 * requests would queue ahead of this one. Counting requests alone lets a
 * node 40× slower hold as many requests as each of its peers (so a good
 * share of the callers wait on it); weighting them by latency keeps it
 * at about a fortieth.
 *
 * The state is two dense `Float64Array`s by slot beside the manager's
 * `Int32Array` of loads: a pick reads three numbers per candidate and
 * computes one `Math.exp`, whatever the cluster size.
 *
 * @module
 */

import { integer, refuse } from "../config/options.ts";
import { numberIn } from "../config/validate.ts";
import { NodewireError, nodewireErrorOf } from "../errors.ts";
import { isNodesFault } from "./health.ts";

/**
 * The time constant of the latency estimate, in ms: after this long a
 * sample's weight has fallen to 1/e. Finagle's and linkerd's default;
 * long enough that a node with occasional 50 ms stalls stays out of the
 * way between them, short enough that a node that recovered is back in
 * rotation within tens of seconds.
 *
 * @example
 * ```ts
 * import { PEAK_EWMA_DECAY_MS, PeakEwma } from "@nodewire/client/core";
 * const latency = new PeakEwma(1); // decays over PEAK_EWMA_DECAY_MS by default
 * latency.observe(0, 40, 0);
 * console.log(latency.estimate(0, PEAK_EWMA_DECAY_MS)); // ≈ 14.7: 40 / e
 * ```
 */
export const PEAK_EWMA_DECAY_MS = 10_000;

/**
 * What a failed attempt counts as, in ms, when the node was at fault (a
 * lost connection, Overloaded or Unavailable) or answered with an error
 * it marked retryable: a reply this late. A node that fails fast would
 * otherwise look like the fastest node of all and draw the most requests;
 * a second is far above any healthy node's latency, and it decays like
 * any other sample, so the node is tried again when the others are busy
 * or some tens of seconds later.
 *
 * @example
 * ```ts
 * import { ConnectionRefusedError } from "@nodewire/client";
 * import { PEAK_EWMA_FAILURE_MS, peakEwmaFailureSample } from "@nodewire/client/core";
 * // A node that refuses in 2 ms is booked as slow, not as the fastest node.
 * const refused = new ConnectionRefusedError({ hostname: "127.0.0.1", port: 7000 });
 * console.log(peakEwmaFailureSample(2, refused) === PEAK_EWMA_FAILURE_MS); // true
 * ```
 */
export const PEAK_EWMA_FAILURE_MS = 1_000;

/**
 * The cost of a node that has not answered yet but has requests in
 * flight: above any measured cost, so a new node gets one request at a
 * time until it answers rather than a burst (Finagle's penalty).
 */
const UNKNOWN_PENALTY = 1e12;

/**
 * A sample's floor, in ms: a reply timed at 0 (a coarse or virtual clock)
 * still marks the node as measured.
 */
const MIN_SAMPLE_MS = 0.001;

/** The most slots a table holds: more than 2^24 would take gigabytes. */
const MAX_SLOTS = 2 ** 24;

/**
 * {@linkcode PeakEwma.observe} for the manager, which books the replies
 * of its own requests: numbers from its clock, so their type is not
 * checked again per reply (a NaN, a negative or an infinite number, or
 * a bad slot, is still refused).
 */
export let bookReply: (
  latency: PeakEwma,
  slot: number,
  ms: number,
  now: number,
) => void;

/** {@linkcode PeakEwma.estimate} for pickCost, unchecked. */
let estimateAt: (latency: PeakEwma, slot: number, now: number) => number;

/**
 * Whether `value` is a table `new PeakEwma()` made: a Proxy of one, or an
 * object made from its prototype, passes `instanceof` but has none of its
 * fields, and a balancer given one threw a raw TypeError at every pick.
 */
export let isPeakEwma: (value: unknown) => value is PeakEwma;

/**
 * Per-node latency estimates by slot, updated from reply times.
 *
 * @example
 * ```ts
 * import { PeakEwma } from "@nodewire/client/core";
 * const latency = new PeakEwma(2);
 * latency.observe(0, 1, 0); // node 0 answered in 1 ms at t = 0
 * latency.observe(1, 40, 0); // node 1 in 40 ms
 * latency.estimate(1, 10_000); // ≈ 14.7: 40 ms decayed for one time constant
 * ```
 */
export class PeakEwma {
  /** The time constant in ms (see {@linkcode PEAK_EWMA_DECAY_MS}). */
  readonly decayMs: number;
  /** The estimate by slot, in ms, as of `#stamps`; 0: never measured. */
  #estimates: Float64Array;
  /** When each estimate was last updated, on the clock's scale. */
  #stamps: Float64Array;

  /** Creates estimates for `slots` nodes, none of them measured yet. */
  constructor(slots: number, decayMs: number = PEAK_EWMA_DECAY_MS) {
    const method = "new PeakEwma()";
    // A slot per node: more than 2^24 would take gigabytes, and NaN made
    // an empty estimate table.
    const badSlots = integer(0, MAX_SLOTS)(slots);
    if (badSlots) throw refuse(method, "slots", slots, badSlots);
    // Infinity stays allowed: estimates that never decay.
    if (!(typeof decayMs === "number" && decayMs > 0)) {
      throw refuse(method, "decayMs", decayMs, "expected a number > 0");
    }
    this.decayMs = decayMs;
    this.#estimates = new Float64Array(Math.max(1, slots));
    this.#stamps = new Float64Array(Math.max(1, slots));
  }

  /** How many slots are kept; grows with {@linkcode PeakEwma.observe}. */
  get slots(): number {
    return this.#estimates.length;
  }

  /**
   * Books a reply from the node in `slot` that took `ms`, at time `now`:
   * above the estimate it becomes the estimate (the peak); below, the
   * estimate moves toward it by the share of the time constant elapsed
   * since the last update. The table grows to hold `slot`.
   *
   * @throws {InvalidArgumentError} for a slot that is no integer from 0
   *   to 2^24 - 1 (the most slots a table may hold), an `ms` that is no
   *   finite number of 0 or more, or a `now` that is no finite number,
   *   changing nothing: a NaN or infinite time would stay in the estimate
   *   for good, and a fraction of a slot named no node.
   * @example
   * ```ts
   * import { PeakEwma } from "@nodewire/client/core";
   * const latency = new PeakEwma(1);
   * latency.observe(3, 12, 0); // grows to hold slot 3
   * console.log(latency.estimate(3, 0)); // 12
   * ```
   */
  observe(slot: number, ms: number, now: number): void {
    // "12", null, true or [] passed the comparisons below, coerced, and
    // were booked. The manager books through bookReply, without this.
    // A BigInt or Symbol slot threw a raw TypeError at `slot >>> 0`.
    if (
      typeof slot !== "number" || typeof ms !== "number" ||
      typeof now !== "number"
    ) {
      this.#checkAndGrow(slot, ms, now);
    }
    this.#book(slot, ms, now);
  }

  static {
    bookReply = (latency, slot, ms, now) => latency.#book(slot, ms, now);
    estimateAt = (latency, slot, now) => latency.#estimateAt(slot, now);
    isPeakEwma = (value): value is PeakEwma =>
      typeof value === "object" && value !== null && #estimates in value;
  }

  /** `observe` for numbers: what else they may be is checked here. */
  #book(slot: number, ms: number, now: number): void {
    // Inverted so that a NaN takes the rare branch, where it is checked:
    // the common case stays a few comparisons.
    if (
      !((slot >>> 0) === slot && slot < this.#estimates.length && ms >= 0 &&
        ms < Infinity && now - now === 0)
    ) this.#checkAndGrow(slot, ms, now);
    const sample = ms > MIN_SAMPLE_MS ? ms : MIN_SAMPLE_MS;
    const previous = this.#estimates[slot];
    const elapsed = now - this.#stamps[slot];
    this.#stamps[slot] = now;
    if (sample >= previous) {
      this.#estimates[slot] = sample;
    } else {
      const w = elapsed > 0 ? Math.exp(-elapsed / this.decayMs) : 1;
      this.#estimates[slot] = previous * w + sample * (1 - w);
    }
  }

  /**
   * The estimate for `slot` at `now`, in ms; 0 when never measured (also
   * for what is no slot of the table: a fraction, a negative number, what
   * is no number).
   *
   * @throws {InvalidArgumentError} for a `now` that is no finite number:
   *   NaN answered NaN, and a string or null was coerced.
   * @example
   * ```ts
   * import { PeakEwma } from "@nodewire/client/core";
   * const latency = new PeakEwma(1);
   * latency.observe(0, 40, 0);
   * console.log(latency.estimate(0, 0)); // 40
   * ```
   */
  estimate(slot: number, now: number): number {
    // The balancer reads estimates through pickCost, without this.
    if (!(typeof now === "number" && Number.isFinite(now))) {
      throw refuse("PeakEwma.estimate", "now", now, "expected a finite number");
    }
    return this.#estimateAt(slotOrNone(slot), now);
  }

  /** `estimate` for a number `now`. */
  #estimateAt(slot: number, now: number): number {
    // A fraction of a slot read the typed array's undefined.
    const e = (slot >>> 0) === slot && slot < this.#estimates.length
      ? this.#estimates[slot]
      : 0;
    if (e === 0) return 0;
    const elapsed = now - this.#stamps[slot];
    return elapsed > 0 ? e * Math.exp(-elapsed / this.decayMs) : e;
  }

  /**
   * The cost of sending one more request to `slot` with `load` requests
   * in flight: `estimate × (load + 1)`. A node never measured costs 0
   * when idle (try it) and more than any measured node when busy.
   *
   * @throws {InvalidArgumentError} for a `load` that is no integer of 0
   *   or more, or a `now` that is no finite number: a NaN or negative
   *   load answered a NaN or negative cost, so the node looked cheapest.
   * @example
   * ```ts
   * import { PeakEwma } from "@nodewire/client/core";
   * const latency = new PeakEwma(1);
   * latency.observe(0, 2, 0);
   * console.log(latency.cost(0, 4, 0)); // 10: 2 ms × (4 in flight + 1)
   * ```
   */
  cost(slot: number, load: number, now: number): number {
    // The balancer prices its picks through pickCost, without these.
    const badLoad = LOAD(load);
    if (badLoad) throw refuse("PeakEwma.cost", "load", load, badLoad);
    if (!(typeof now === "number" && Number.isFinite(now))) {
      throw refuse("PeakEwma.cost", "now", now, "expected a finite number");
    }
    return pickCost(this, slotOrNone(slot), load, now);
  }

  /**
   * Forgets what was learned of `slot` (a node removed or replaced); a
   * slot the table has not grown to has nothing to forget.
   *
   * @throws {InvalidArgumentError} for a slot that is no integer from 0
   *   to 2^24 - 1, as `observe` refuses it, forgetting nothing: `"1"`
   *   forgot slot 1, and a fraction or a negative slot nothing, silently.
   * @example
   * ```ts
   * import { PeakEwma } from "@nodewire/client/core";
   * const latency = new PeakEwma(2);
   * latency.observe(1, 40, 0);
   * latency.reset(1); // slot 1 now holds another node
   * console.log(latency.estimate(1, 0)); // 0: never measured
   * ```
   */
  reset(slot: number): void {
    // Cold: once per node registered, never per request.
    const bad = integer(0, MAX_SLOTS - 1)(slot);
    if (bad) throw refuse("PeakEwma.reset", "slot", slot, bad);
    if (slot < this.#estimates.length) {
      this.#estimates[slot] = 0;
      this.#stamps[slot] = 0;
    }
  }

  /**
   * Refuses what `observe` may not book, then makes room for `slot`, one
   * the constructor could have made room for: a timestamp passed as the
   * slot was a raw RangeError (or gigabytes).
   */
  #checkAndGrow(slot: number, ms: number, now: number): void {
    const method = "PeakEwma.observe";
    const bad = integer(0, MAX_SLOTS - 1)(slot);
    if (bad) throw refuse(method, "slot", slot, bad);
    const badMs = SAMPLE_MS(ms);
    if (badMs) throw refuse(method, "ms", ms, badMs);
    if (!(typeof now === "number" && Number.isFinite(now))) {
      throw refuse(method, "now", now, "expected a finite number");
    }
    if (slot < this.#estimates.length) return;
    const size = Math.min(
      Math.max(slot + 1, this.#estimates.length * 2),
      MAX_SLOTS,
    );
    const estimates = new Float64Array(size);
    estimates.set(this.#estimates);
    const stamps = new Float64Array(size);
    stamps.set(this.#stamps);
    this.#estimates = estimates;
    this.#stamps = stamps;
  }
}

// A count of requests in flight.
const LOAD = integer(0);

/**
 * `slot` for the public reads, which answer "never measured" for what is
 * no slot: a BigInt or a Symbol, unlike a string, threw a raw TypeError
 * at `slot >>> 0`, so what is no number reads as -1 (no slot) here.
 */
function slotOrNone(slot: number): number {
  return typeof slot === "number" ? slot : -1;
}

/**
 * {@linkcode PeakEwma.cost} for the balancer, unchecked: it reads the
 * load and the time on every pick, where a check would cost every
 * request. The client's balancer reads its own `Int32Array` of counts; a
 * balancer built by hand reads the `loads` and the clock it was given, as
 * they are (a negative load or a NaN time there prices nodes wrongly).
 */
export function pickCost(
  latency: PeakEwma,
  slot: number,
  load: number,
  now: number,
): number {
  const e = estimateAt(latency, slot, now);
  if (e === 0) return load > 0 ? UNKNOWN_PENALTY + load : 0;
  return e * (load + 1);
}

// A NaN or negative sample would poison the node's estimate for good.
const SAMPLE_MS = numberIn(0, Infinity, Number.isFinite, "a number of ms");

/**
 * What an attempt that ended with `error` after `ms` counts as for the
 * latency estimate, or -1 when it says nothing about the node (the
 * caller aborted).
 *
 * @example
 * ```ts
 * import { AbortedError } from "@nodewire/client";
 * import { peakEwmaFailureSample } from "@nodewire/client/core";
 * peakEwmaFailureSample(2, new AbortedError("gave up")); // -1
 * ```
 */
export function peakEwmaFailureSample(ms: number, error: unknown): number {
  const badMs = SAMPLE_MS(ms);
  if (badMs) throw refuse("peakEwmaFailureSample", "ms", ms, badMs);
  return failureSample(ms, nodewireErrorOf(error, "peakEwmaFailureSample"));
}

/**
 * {@linkcode peakEwmaFailureSample}'s rule without its checks, for the
 * manager: its `ms` is two readings of its clock apart, which it checks
 * itself, and its errors are the request path's own.
 */
export function failureSample(ms: number, error: unknown): number {
  if (!(error instanceof NodewireError)) return ms;
  if (error.code === "ABORTED") return -1;
  const blamed = isNodesFault(error) ||
    (error.code === "REMOTE_ERROR" && error.retryable);
  return blamed && ms < PEAK_EWMA_FAILURE_MS ? PEAK_EWMA_FAILURE_MS : ms;
}
