/**
 * Hedged requests: for an idempotent request that has no reply after the
 * hedge delay (fixed, or a percentile of the node's recent reply times), a
 * second attempt goes to another node, and whichever reply comes first is
 * the request's; a later reply is dropped. Hedges draw on the retry
 * budget, so a slow cluster is not sent twice its load.
 *
 * Only requests that may be hedged pay for it: a clock read and a small
 * record each. One timer per client, armed for the earliest hedge due,
 * serves them all: a timer per request cost more than the request itself.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../clock.ts";
import type { HedgingConfig } from "../config/shapes.ts";
import { clearTimer, readClock, setTimer } from "../config/clock_failure.ts";
import type { ManagedNode } from "../cluster/node.ts";

/**
 * Whether a request may be hedged: idempotent, not opted out, allowed more
 * than one attempt (`retry: false` promises exactly one, and a hedge is a
 * second), and the client hedges (`hedging`) or it opts in. One rule for
 * requests and batches: opting one in never turns hedging on for the
 * others.
 */
export function mayHedge(
  options: {
    readonly idempotent?: boolean;
    readonly hedge?: boolean;
    readonly retry?: boolean;
  },
  clientHedges: boolean,
): boolean {
  return options.idempotent === true && options.hedge !== false &&
    options.retry !== false && (clientHedges || options.hedge === true);
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

/** A hedge waiting for its time; dropped once its request is done. */
interface Due {
  readonly hedge: Hedge;
  readonly at: number;
}

/**
 * A client's hedging policy, what it learned of each node, and the one
 * timer that sends every due hedge.
 */
export class Hedging {
  readonly #config: HedgingConfig;
  readonly #clock: Clock;
  readonly #latency = new WeakMap<ManagedNode, LatencyWindow>();
  /**
   * Hedges not yet sent, a min-heap by due time: a firing looks only at
   * the top (a scan cost a look per request per ms of hedge delay). A
   * finished hedge is dropped when it reaches the top.
   */
  #waiting: Due[] = [];
  #timer: TimerHandle | undefined = undefined;
  #timerAt = Infinity;
  #stopped = false;

  constructor(config: HedgingConfig, clock: Clock) {
    this.#config = config;
    this.#clock = clock;
  }

  /** The state of one request that may be hedged. */
  start(fire: () => void): Hedge {
    return new Hedge(this, fire);
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

  /** Sends `hedge` after `delayMs`, unless it is done or re-armed first. */
  schedule(hedge: Hedge, delayMs: number): Due {
    // Named where it threw (see readClock): the request's catch fails it.
    const now = readClock(this.#clock);
    const due: Due = { hedge, at: now + delayMs };
    // A listener may shut the client down while a hedge is being sent,
    // and the hedge then re-arms: no timer may outlive the client.
    if (this.#stopped) return due;
    // Armed before it waits: a custom clock whose setTimeout() throws
    // leaves nothing of it in the heap (see #arm).
    if (due.at < this.#timerAt) this.#arm(due.at, now);
    push(this.#waiting, due);
    return due;
  }

  /** Ends the timer: the client is shutting down. */
  stop(): void {
    this.#stopped = true;
    this.#waiting = [];
    this.#disarm();
  }

  /**
   * Arms the timer for `at`; `now` is the time just read. The new timer is
   * armed before the old one is cleared: a custom clock whose setTimeout()
   * throws (the ConfigError naming it, thrown to the request being hedged,
   * which ends with it as with a clock whose now() throws) leaves the
   * timer as it was. Cleared first, the hedges already waiting lost their
   * timer, and none was sent again until some later request armed one.
   */
  #arm(at: number, now: number): void {
    const timer = setTimer(this.#clock, this.#fire, Math.max(0, at - now));
    this.#disarm();
    this.#timerAt = at;
    this.#timer = timer;
  }

  #disarm(): void {
    // A custom clock whose clearTimeout() throws leaves the timer armed;
    // its firing sends only what is due by then (stopped: nothing). Let
    // out, the throw failed the request being hedged with the clock's
    // raw Error, or stopped a disconnect before it closed anything.
    if (this.#timer !== undefined) clearTimer(this.#clock, this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Sends every hedge that is due; keeps the rest for the next time. */
  #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // A custom clock whose now() throws: let out of this timer, the throw
    // was uncaught and the waiting hedges were never looked at again.
    // Every one is taken as due instead: each reads the clock as it goes
    // out, and a clock still broken then ends its request with the
    // ConfigError naming it (hedgeNow, in request_hedging.ts).
    let now: number;
    try {
      now = this.#clock.now();
    } catch {
      now = Infinity;
    }
    const waiting = this.#waiting;
    const fire: Due[] = [];
    while (waiting.length > 0) {
      const top = waiting[0];
      // Done or re-armed: dropped, so the timer never waits for it.
      if (top.hedge.current !== top) pop(waiting);
      else if (top.at <= now) fire.push(pop(waiting));
      else break;
    }
    if (waiting.length > 0) {
      try {
        this.#arm(waiting[0].at, now);
      } catch {
        // A custom clock whose setTimeout() throws: the rest cannot be
        // timed, and each is taken as due, as when now() throws above
        // (a hedge sent early, never lost; the retry budget bounds it).
        // Let out of this timer, the throw was uncaught, and neither the
        // hedges due nor the rest were ever sent.
        while (waiting.length > 0) {
          const top = pop(waiting);
          if (top.hedge.current === top) fire.push(top);
        }
      }
    }
    for (const due of fire) due.hedge.fire(due);
  };
}

/** Adds `due` to the min-heap `heap`. */
function push(heap: Due[], due: Due): void {
  let i = heap.length;
  heap.push(due);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent].at <= due.at) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = due;
}

/** Removes and returns the earliest of the non-empty min-heap `heap`. */
function pop(heap: Due[]): Due {
  const top = heap[0];
  const last = heap.pop()!;
  const n = heap.length;
  if (n === 0) return top;
  let i = 0;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap[child + 1].at < heap[child].at) child++;
    if (heap[child].at >= last.at) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = last;
  return top;
}

/**
 * One request's hedging: when its main attempt started, how many hedges
 * went out, and the hedge waiting for its time (if any).
 */
export class Hedge {
  /** When the main attempt was sent, on the client's clock. */
  mainStarted = 0;
  /** Hedged attempts sent so far. */
  sent = 0;
  /** The hedge waiting for its time; undefined when none is. */
  current: Due | undefined = undefined;

  readonly #policy: Hedging;
  readonly #fire: () => void;
  #node: ManagedNode | undefined = undefined;

  constructor(policy: Hedging, fire: () => void) {
    this.#policy = policy;
    this.#fire = fire;
  }

  /** The main attempt went to `node`: the hedge delay starts over. */
  arm(node: ManagedNode): void {
    this.#node = node;
    this.current = undefined;
    this.rearm();
  }

  /** Schedules the next hedge, if one is still allowed. */
  rearm(): void {
    this.current = undefined;
    if (this.sent >= this.#policy.maxHedges || this.#node === undefined) return;
    const delay = this.#policy.delayFor(this.#node);
    if (delay === undefined) return;
    this.current = this.#policy.schedule(this, delay);
  }

  /** Called by the policy's timer when `due` is this hedge's time. */
  fire(due: Due): void {
    if (this.current !== due) return;
    this.current = undefined;
    this.#fire();
  }

  /** An attempt to `node` answered after `ms`: the node's latency learns it. */
  answered(node: ManagedNode, ms: number): void {
    this.#policy.record(node, ms);
  }

  /**
   * The request has its outcome: no further hedge is sent. Attempts still
   * out are left to finish (their replies are dropped): they count in
   * their nodes' load meanwhile, which is what those nodes really carry.
   */
  finish(): void {
    this.current = undefined;
  }
}
