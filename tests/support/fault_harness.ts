/**
 * Checks shared by the fault matrix and the soak test: that no error
 * escapes to the process, that every request settles once, in time and
 * typed, and a way to run a virtual clock until something settles.
 *
 * @module
 */

import type { Clock } from "../../src/clock.ts";
import { NodewireError } from "../../src/errors.ts";
import type { ByteChannel, RuntimeAdapter } from "../../src/runtime/types.ts";
import type { VirtualClock } from "../../testing/virtual_clock.ts";

interface ProcessEvents {
  on(event: string, fn: (value: unknown) => void): void;
  off(event: string, fn: (value: unknown) => void): void;
}

/** What {@linkcode watchEscapes} returns. */
export interface EscapeWatch {
  /** Errors that reached the process: unhandled rejections, uncaught exceptions. */
  readonly escaped: unknown[];
  /** Lets pending detections fire, removes the listeners, returns what escaped. */
  stop(): Promise<unknown[]>;
}

/** Lets the runtime run its unhandled-rejection detection. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Records every unhandled promise rejection and uncaught exception until
 * `stop()`: process events on Node and Bun, `globalThis` events on Deno
 * (where they are cancelled so the run goes on and the test can report
 * them).
 *
 * @example
 * ```ts
 * import { watchEscapes } from "./fault_harness.ts";
 * const watch = watchEscapes();
 * // ... the test ...
 * const escaped = await watch.stop();
 * if (escaped.length > 0) throw new Error(`escaped: ${escaped}`);
 * ```
 */
export function watchEscapes(): EscapeWatch {
  const escaped: unknown[] = [];
  const g = globalThis as {
    Deno?: unknown;
    process?: ProcessEvents;
    addEventListener?: typeof globalThis.addEventListener;
    removeEventListener?: typeof globalThis.removeEventListener;
  };
  let remove: () => void;
  if (g.Deno !== undefined && typeof g.addEventListener === "function") {
    const onRejection = (event: Event) => {
      event.preventDefault();
      escaped.push((event as PromiseRejectionEvent).reason);
    };
    const onError = (event: Event) => {
      event.preventDefault();
      escaped.push((event as ErrorEvent).error);
    };
    g.addEventListener("unhandledrejection", onRejection);
    g.addEventListener("error", onError);
    remove = () => {
      g.removeEventListener!("unhandledrejection", onRejection);
      g.removeEventListener!("error", onError);
    };
  } else {
    const proc = g.process!;
    const onRejection = (reason: unknown) => escaped.push(reason);
    const onException = (error: unknown) => escaped.push(error);
    proc.on("unhandledRejection", onRejection);
    proc.on("uncaughtException", onException);
    remove = () => {
      proc.off("unhandledRejection", onRejection);
      proc.off("uncaughtException", onException);
    };
  }
  return {
    escaped,
    async stop() {
      await macrotask();
      await macrotask();
      remove();
      return escaped;
    },
  };
}

/** One tracked operation. */
export interface Tracked<T> {
  /** A label for messages. */
  readonly label: string;
  /** When it started, on the clock. */
  readonly startedAt: number;
  /** How often it settled (must end at exactly 1). */
  settledCount: number;
  /** When it settled, on the clock. */
  settledAt: number | undefined;
  /** Its value, if it succeeded. */
  value: T | undefined;
  /** Its error, if it failed. */
  error: unknown;
  /** Whether it succeeded. */
  ok: boolean;
  /** The promise, settled with the outcome and never rejecting. */
  readonly done: Promise<void>;
}

/**
 * Tracks operations: when each settles, how, and how often.
 *
 * @example
 * ```ts
 * import { systemClock } from "@nodewire/client";
 * import { Tracker } from "./fault_harness.ts";
 * const tracker = new Tracker(systemClock);
 * tracker.track("one", Promise.resolve(1));
 * await tracker.settled();
 * tracker.assertSettled(100);
 * ```
 */
export class Tracker {
  readonly #clock: Clock;
  /** Everything tracked so far. */
  readonly all: Tracked<unknown>[] = [];

  /** Times operations on `clock`. */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Starts tracking `promise`. */
  track<T>(label: string, promise: Promise<T>): Tracked<T> {
    const record = {
      label,
      startedAt: this.#clock.now(),
      settledCount: 0,
      settledAt: undefined,
      value: undefined,
      error: undefined,
      ok: false,
    } as Omit<Tracked<T>, "done"> as Tracked<T>;
    (record as { done: Promise<void> }).done = promise.then(
      (value) => {
        record.settledCount++;
        record.settledAt = this.#clock.now();
        record.value = value;
        record.ok = true;
      },
      (error) => {
        record.settledCount++;
        record.settledAt = this.#clock.now();
        record.error = error;
      },
    );
    this.all.push(record as Tracked<unknown>);
    return record;
  }

  /** Resolves when everything tracked so far has settled. */
  async settled(): Promise<void> {
    await Promise.all(this.all.map((t) => t.done));
  }

  /** Those that failed. */
  get failures(): Tracked<unknown>[] {
    return this.all.filter((t) => t.settledCount > 0 && !t.ok);
  }

  /** Those that succeeded. */
  get successes(): Tracked<unknown>[] {
    return this.all.filter((t) => t.ok);
  }

  /**
   * Throws unless every operation settled exactly once, within
   * `deadlineMs` of its start, with a value or a `NodewireError`.
   */
  assertSettled(deadlineMs: number): void {
    for (const t of this.all) {
      if (t.settledCount !== 1) {
        throw new Error(`${t.label} settled ${t.settledCount} times`);
      }
      const took = t.settledAt! - t.startedAt;
      if (took > deadlineMs) {
        throw new Error(
          `${t.label} settled after ${took} ms, past its ${deadlineMs} ms deadline`,
        );
      }
      if (!t.ok && !(t.error instanceof NodewireError)) {
        throw new Error(`${t.label} failed with an untyped error: ${t.error}`);
      }
    }
  }

  /** The codes of the failures, counted. */
  codes(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const t of this.failures) {
      const code = t.error instanceof NodewireError ? t.error.code : "UNTYPED";
      counts[code] = (counts[code] ?? 0) + 1;
    }
    return counts;
  }
}

/** How long {@linkcode drive} waits, in real ms, with nothing on the clock. */
const REAL_IDLE_LIMIT_MS = 5_000;

/**
 * Runs a virtual clock, timer by timer, until `promise` settles, and
 * returns its outcome. Throws when it has not settled after `limitMs` of
 * virtual time, or when nothing is left that could settle it.
 *
 * @example
 * ```ts
 * import { sleep } from "@nodewire/client";
 * import { VirtualClock } from "@nodewire/client/testing";
 * import { drive } from "./fault_harness.ts";
 * const clock = new VirtualClock();
 * await drive(clock, sleep(clock, 5000)); // instant in real time
 * ```
 */
export async function drive<T>(
  clock: VirtualClock,
  promise: Promise<T>,
  limitMs = 600_000,
): Promise<T> {
  let done = false;
  promise.then(() => (done = true), () => (done = true));
  const end = clock.now() + limitMs;
  await clock.advance(0);
  // Real time spent waiting with no virtual timer due: some work is not
  // on the virtual clock (a module loaded on first use, the runtime's own
  // I/O), and a loaded machine may take a while. Only a wait that long is
  // taken for "nothing left could settle it".
  let idleSince: number | undefined;
  for (let i = 0; i < 1_000_000 && !done; i++) {
    const next = clock.nextTimerAt();
    if (next === undefined || next > end) {
      await clock.advance(0);
      if (done) break;
      const again = clock.nextTimerAt();
      if (again !== undefined && again <= end) continue;
      idleSince ??= Date.now();
      if (Date.now() - idleSince > REAL_IDLE_LIMIT_MS) break;
      await new Promise((resolve) => setTimeout(resolve, 1));
      continue;
    }
    idleSince = undefined;
    await clock.advance(next - clock.now());
  }
  if (!done) {
    throw new Error(`did not settle within ${limitMs} ms of virtual time`);
  }
  return await promise;
}

/** An adapter that records what its connecting side received. */
export interface ObservedAdapter extends RuntimeAdapter {
  /** Size of every chunk delivered to a connecting channel, in order. */
  readonly chunks: number[];
  /** Times (on the clock given) of every `connect` call, by `host:port`. */
  readonly connects: Map<string, number[]>;
}

/**
 * Wraps an adapter to record the chunk sizes its connecting channels
 * receive and when each connect was attempted.
 *
 * @example
 * ```ts
 * import { createMemoryNetwork, systemClock } from "@nodewire/client";
 * import { observe } from "./fault_harness.ts";
 * const adapter = observe(createMemoryNetwork(), systemClock);
 * console.log(adapter.chunks.length, adapter.connects.size); // 0 0
 * ```
 */
export function observe(
  adapter: RuntimeAdapter,
  clock: Clock,
): ObservedAdapter {
  const chunks: number[] = [];
  const connects = new Map<string, number[]>();
  const wrap = (channel: ByteChannel): ByteChannel =>
    new Proxy(channel, {
      get(target, key) {
        if (key === "onData") {
          return (fn: (chunk: Uint8Array) => void) =>
            target.onData((chunk) => {
              chunks.push(chunk.byteLength);
              fn(chunk);
            });
        }
        const value = Reflect.get(target, key);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return {
    name: adapter.name,
    chunks,
    connects,
    async connect(options) {
      const key = `${options.hostname}:${options.port}`;
      const times = connects.get(key) ?? [];
      times.push(clock.now());
      connects.set(key, times);
      return wrap(await adapter.connect(options));
    },
    listen: (options, onConnection) => adapter.listen(options, onConnection),
  };
}

/**
 * Waits, in real time, until `condition` holds, polling every few ms; for
 * runtimes that report a socket's close a little later than it happens.
 *
 * @example
 * ```ts
 * import { eventually } from "./fault_harness.ts";
 * let ready = false;
 * setTimeout(() => (ready = true), 5);
 * await eventually(() => ready);
 * ```
 */
export async function eventually(
  condition: () => boolean,
  timeoutMs = 2000,
): Promise<boolean> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}
