/**
 * Hedged requests: for an idempotent request that has no reply after the
 * hedge delay (fixed, or a percentile of the node's recent reply times), a
 * second attempt goes to another node, and whichever reply comes first is
 * the request's; the other attempts are cancelled. Hedges draw on the
 * retry budget, so a slow cluster is not sent twice its load.
 *
 * Only requests that may be hedged pay for it (a timer, a controller, a
 * clock read); the others never reach this file.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../clock.ts";
import type { HedgingConfig } from "../config/shapes.ts";
import type { ManagedNode } from "../cluster/node.ts";

/** What a hedge needs of a request's options: its signal. */
interface WithSignal {
  signal?: AbortSignal;
}

/** Reply times kept per node, the most recent ones. */
const WINDOW = 128;
/** No percentile is trusted before this many samples. */
const MIN_SAMPLES = 16;
/** The percentile is computed again after this many new samples. */
const REFRESH = 16;

/** A node's recent reply times, and a percentile of them. */
class LatencyWindow {
  readonly #samples = new Float64Array(WINDOW);
  #count = 0;
  #sinceSorted = 0;
  #cached: number | undefined = undefined;

  add(ms: number): void {
    this.#samples[this.#count % WINDOW] = ms;
    this.#count++;
    this.#sinceSorted++;
  }

  /** The `p`-th percentile (0–100), or undefined with too few samples. */
  percentile(p: number): number | undefined {
    const n = Math.min(this.#count, WINDOW);
    if (n < MIN_SAMPLES) return undefined;
    if (this.#cached === undefined || this.#sinceSorted >= REFRESH) {
      const sorted = this.#samples.slice(0, n).sort();
      this.#cached = sorted[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)];
      this.#sinceSorted = 0;
    }
    return this.#cached;
  }
}

/** A client's hedging policy and what it learned of each node. */
export class Hedging {
  readonly #config: HedgingConfig;
  readonly #clock: Clock;
  readonly #latency = new WeakMap<ManagedNode, LatencyWindow>();

  constructor(config: HedgingConfig, clock: Clock) {
    this.#config = config;
    this.#clock = clock;
  }

  /** The state of one request that may be hedged. */
  start<O extends WithSignal>(options: O, fire: () => void): Hedge<O> {
    return new Hedge(this, options, fire);
  }

  /** How long to wait for `node` before hedging, or undefined: do not. */
  delayFor(node: ManagedNode): number | undefined {
    const fixed = this.#config.delayMs;
    if (fixed !== undefined) return fixed;
    const p = this.#latency.get(node)?.percentile(this.#config.percentile);
    // At least a millisecond: a node answering in microseconds is not
    // worth a second attempt.
    return p === undefined ? undefined : Math.max(1, p);
  }

  /** Learns one reply time of `node`. */
  record(node: ManagedNode, ms: number): void {
    let window = this.#latency.get(node);
    if (window === undefined) {
      window = new LatencyWindow();
      this.#latency.set(node, window);
    }
    window.add(ms);
  }

  get maxHedges(): number {
    return this.#config.maxHedges;
  }

  get clock(): Clock {
    return this.#clock;
  }
}

/**
 * One request's hedging: the options its attempts are sent with (the
 * caller's, with a signal that cancels every attempt at once), the timer,
 * and how many hedges went out.
 */
export class Hedge<O extends WithSignal = WithSignal> {
  /** The options every attempt of the request is sent with. */
  readonly options: O;
  /** When the main attempt was sent, on the client's clock. */
  mainStarted = 0;
  /** Hedged attempts sent so far. */
  sent = 0;

  readonly #policy: Hedging;
  readonly #fire: () => void;
  readonly #cancel = new AbortController();
  readonly #callerSignal: AbortSignal | undefined;
  #onCallerAbort: (() => void) | undefined;
  #timer: TimerHandle | undefined = undefined;
  #node: ManagedNode | undefined = undefined;

  constructor(
    policy: Hedging,
    options: O,
    fire: () => void,
  ) {
    this.#policy = policy;
    this.#fire = fire;
    const signal = options.signal;
    this.#callerSignal = signal;
    if (signal !== undefined) {
      const cancel = this.#cancel;
      this.#onCallerAbort = () => cancel.abort(signal.reason);
      signal.addEventListener("abort", this.#onCallerAbort, { once: true });
      if (signal.aborted) cancel.abort(signal.reason);
    }
    this.options = { ...options, signal: this.#cancel.signal };
  }

  /** The main attempt went to `node`: the hedge timer starts over. */
  arm(node: ManagedNode): void {
    this.#node = node;
    this.#clear();
    this.rearm();
  }

  /** Sets the timer for the next hedge, if one is still allowed. */
  rearm(): void {
    if (this.sent >= this.#policy.maxHedges || this.#node === undefined) return;
    const delay = this.#policy.delayFor(this.#node);
    if (delay === undefined) return;
    this.#timer = this.#policy.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#fire();
    }, delay);
  }

  /** An attempt to `node` answered after `ms`: the node's latency learns it. */
  answered(node: ManagedNode, ms: number): void {
    this.#policy.record(node, ms);
  }

  /**
   * The request has its outcome: the timer stops and the attempts still
   * out are cancelled (their late replies are dropped).
   */
  finish(): void {
    this.#clear();
    if (this.#onCallerAbort !== undefined) {
      this.#callerSignal!.removeEventListener("abort", this.#onCallerAbort);
      this.#onCallerAbort = undefined;
    }
    if (!this.#cancel.signal.aborted) this.#cancel.abort();
  }

  #clear(): void {
    if (this.#timer !== undefined) {
      this.#policy.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
