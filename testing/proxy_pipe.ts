/**
 * One direction of one proxied connection of the fault proxy: the faults
 * acting on its bytes (stall, budgets, mid-frame cut, duplicated frames,
 * latency, jitter, chunking) and their delivery in order. Apart from the
 * session, which pairs two pipes with the two sockets and their lifecycle;
 * a pipe reaches its session only through `PipeSession`.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../src/clock.ts";
import { readNumber, readRandom } from "../src/config/options.ts";
import { MAX_TIMER_DELAY_MS } from "../src/config/validate.ts";
import { readU32 } from "../src/protocol/header_bytes.ts";
import { HEADER_SIZE } from "../src/protocol/frame.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { concatBytes } from "./bytes.ts";
import type { ProxyFaults } from "./proxy_faults.ts";
import { FrameTracker } from "./proxy_frame_tracker.ts";

/** What a session uses of its proxy (a `FaultProxy`). */
export interface ProxyHost {
  /** Where bytes are forwarded. */
  readonly target: { hostname: string; port: number };
  /** For latency, jitter and chunk spacing. */
  readonly clock: Clock;
  /** Jitter source. */
  readonly random: () => number;
  /** The faults in force. */
  readonly faults: Readonly<ProxyFaults>;
  /** The proxy's counters that sessions count in. */
  readonly stats: {
    bytesToNode: number;
    bytesToClient: number;
    resets: number;
    closes: number;
    upstreamFailures: number;
  };
}

type Item =
  | { kind: "data"; bytes: Uint8Array; at: number }
  | { kind: "end" | "reset" | "close"; at: number };

type Held = Uint8Array | "end";

/** What a pipe uses of its session (a `Session`). */
export interface PipeSession {
  /** The proxy the session belongs to. */
  readonly proxy: ProxyHost;
  /** The client side. */
  readonly client: ByteChannel;
  /** The node side, once connected. */
  readonly node: ByteChannel | undefined;
  /** Bytes let through since the budgets were last set. */
  used: number;
  /** A budget ran out: nothing more is let through. */
  doomed: boolean;
  /** Both sides are done with. */
  readonly finished: boolean;
  /** How many more bytes `limit` lets through, or `undefined` without one. */
  budgetLeft(limit: number | undefined): number | undefined;
  /** Drops both sides at once with a reset (for `error`, when given). */
  reset(error?: Error): void;
  /** Closes both sides cleanly (FIN), dropping what is still queued. */
  closeBoth(): void;
}

/** One direction of one proxied connection. */
export class Pipe {
  readonly #session: PipeSession;
  readonly #toClient: boolean;
  #held: Held[] = [];
  #queue: Item[] = [];
  #timer: TimerHandle | undefined;
  #lastAt = -Infinity;
  readonly tracker = new FrameTracker();
  /** Absolute offset where `closeMidFrame` cuts, once known. */
  #cutAt: number | undefined;
  /** Bytes written before the destination existed (node side connecting). */
  #early: Uint8Array[] = [];
  #endEarly = false;
  /** An incomplete frame held while `duplicateFrames` is on. */
  #partial: Uint8Array = new Uint8Array(0);

  constructor(session: PipeSession, toClient: boolean) {
    this.#session = session;
    this.#toClient = toClient;
  }

  get #proxy(): ProxyHost {
    return this.#session.proxy;
  }

  get #destination(): ByteChannel | undefined {
    return this.#toClient ? this.#session.client : this.#session.node;
  }

  /** Bytes from the source side. */
  input(chunk: Uint8Array): void {
    if (this.#session.doomed) return;
    if (this.#proxy.faults.stall) {
      this.#held.push(chunk);
      return;
    }
    this.#admit(chunk);
  }

  /** The source side closed cleanly. */
  end(): void {
    if (this.#session.doomed) return;
    if (this.#proxy.faults.stall) this.#held.push("end");
    else this.#schedule({ kind: "end", at: 0 });
  }

  /** Bytes the test wants the destination to see, after what is queued. */
  inject(bytes: Uint8Array): void {
    if (this.#session.doomed) return;
    if (this.#proxy.faults.stall) this.#held.push(bytes);
    else this.#schedule({ kind: "data", bytes, at: 0 });
  }

  /** Schedules every complete frame twice; holds an incomplete one. */
  #duplicate(bytes: Uint8Array): void {
    let buffer = concatBytes([this.#partial, bytes]);
    while (buffer.byteLength >= HEADER_SIZE) {
      const size = HEADER_SIZE + readU32(buffer, 12);
      if (buffer.byteLength < size) break;
      const frame = buffer.subarray(0, size);
      this.#schedule({ kind: "data", bytes: frame, at: 0 });
      this.#schedule({ kind: "data", bytes: frame, at: 0 });
      buffer = buffer.subarray(size);
    }
    this.#partial = buffer.slice();
  }

  /** `duplicateFrames` was switched off: what was held goes on as is. */
  flushPartial(): void {
    const held = this.#partial;
    this.#partial = new Uint8Array(0);
    if (held.byteLength > 0 && !this.#session.doomed) {
      this.#schedule({ kind: "data", bytes: held, at: 0 });
    }
  }

  /** The stall was cleared: let held bytes through, in order. */
  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const item of held) {
      if (this.#session.doomed) return;
      if (item === "end") this.#schedule({ kind: "end", at: 0 });
      else this.#admit(item);
    }
  }

  /** `closeMidFrame` was switched on. */
  armCut(): void {
    this.#cutAt = undefined;
  }

  /** The node side connected: flush what waited for it. */
  connected(): void {
    const node = this.#session.node!;
    for (const bytes of this.#early) this.#write(node, bytes);
    this.#early = [];
    if (this.#endEarly) node.close();
  }

  stop(): void {
    if (this.#timer !== undefined) this.#proxy.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
    this.#held = [];
    this.#early = [];
  }

  /** Applies the byte budgets and the mid-frame cut, then schedules. */
  #admit(chunk: Uint8Array): void {
    const session = this.#session;
    const faults = this.#proxy.faults;
    let keep = chunk.byteLength;
    let action: "reset" | "close" | undefined;
    if (this.#toClient) {
      const start = this.tracker.offset;
      if (faults.closeMidFrame) {
        this.tracker.walk(chunk, (frameStart, length) => {
          if (this.#cutAt !== undefined && this.#cutAt >= start) return;
          this.#cutAt = frameStart +
            (length !== undefined && length >= 2
              ? HEADER_SIZE + Math.floor(length / 2)
              : HEADER_SIZE / 2);
        });
        if (this.#cutAt !== undefined && this.#cutAt < start + keep) {
          keep = Math.max(0, this.#cutAt - start);
          action = "close";
        }
      } else {
        this.tracker.walk(chunk, () => {});
      }
    }
    const resetLeft = session.budgetLeft(faults.resetAfterBytes);
    if (resetLeft !== undefined && keep > resetLeft) {
      keep = resetLeft;
      action = "reset";
    }
    const limitLeft = session.budgetLeft(faults.dataLimit);
    if (limitLeft !== undefined && keep > limitLeft && action === undefined) {
      keep = limitLeft;
      action = "close";
    }
    session.used += keep;
    const bytes = keep === chunk.byteLength ? chunk : chunk.subarray(0, keep);
    if (this.#toClient && faults.duplicateFrames) {
      this.#duplicate(bytes);
    } else if (keep > 0) {
      this.#schedule({ kind: "data", bytes, at: 0 });
    }
    if (action !== undefined) {
      // Nothing more gets through either way; the action runs once what
      // was let through has been delivered.
      session.doomed = true;
      this.#schedule({ kind: action, at: 0 });
    }
  }

  /**
   * The proxy's `clock.now()`, or with `random` its `random()`; undefined
   * once a value no time can be made of (NaN, Infinity, a random outside
   * [0, 1), a throw) reset the session with the error: a NaN due time is
   * never due, and its timer re-armed every millisecond, forever.
   */
  #read(random?: boolean): number | undefined {
    const proxy = this.#proxy;
    const value = random
      ? readRandom(() => proxy.random(), "FaultProxy")
      : readNumber(
        () => proxy.clock.now(),
        Number.isFinite,
        "FaultProxy",
        "clock",
        "expected now() to be finite",
      );
    if (typeof value === "number") return value;
    this.#session.reset(value);
  }

  #schedule(item: Item): void {
    const proxy = this.#proxy;
    const { latencyMs = 0, jitterMs = 0, chunkSize = 0 } = proxy.faults;
    const random = jitterMs > 0 ? this.#read(true) : 0;
    const now = this.#read();
    if (random === undefined || now === undefined) return;
    const delay = latencyMs + random * jitterMs;
    // Never before an earlier chunk: jitter must not reorder the stream.
    item.at = Math.max(now + delay, this.#lastAt);
    this.#lastAt = item.at;
    const spaced = chunkSize > 0 && (proxy.faults.chunkIntervalMs ?? 0) > 0;
    if (delay === 0 && this.#queue.length === 0 && !spaced) {
      this.#run([item]);
      return;
    }
    this.#queue.push(item);
    this.#arm();
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#queue.length === 0) return;
    const now = this.#read();
    if (now === undefined) return;
    // Latency and jitter may add up past the longest timer a runtime
    // takes, which would fire at once and re-arm, every millisecond: wait
    // in parts instead (a part finds nothing due and arms the next).
    const wait = Math.min(
      Math.max(0, this.#queue[0].at - now),
      MAX_TIMER_DELAY_MS,
    );
    this.#timer = this.#proxy.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#deliverDue();
    }, wait);
  }

  #deliverDue(): void {
    const now = this.#read();
    if (now === undefined) return;
    let n = 0;
    while (n < this.#queue.length && this.#queue[n].at <= now) n++;
    const due = this.#queue.splice(0, n);
    this.#run(due);
    this.#arm();
  }

  /**
   * Delivers items in order. Data due at the same time goes out as one
   * write, so frames that queued up arrive together in one chunk.
   */
  #run(items: Item[]): void {
    let data: Uint8Array[] = [];
    const flush = (): boolean => {
      if (data.length === 0) return true;
      const bytes = concatBytes(data);
      data = [];
      return this.#send(bytes);
    };
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (this.#session.finished) return;
      if (item.kind === "data") {
        data.push(item.bytes);
        continue;
      }
      if (!flush()) {
        // Spaced pieces are still going out; the rest waits behind them.
        this.#queue.unshift(...items.slice(i));
        return;
      }
      if (item.kind === "end") {
        this.#sendEnd();
      } else if (item.kind === "reset") {
        this.#proxy.stats.resets++;
        const session = this.#session;
        // The bytes just written reach the other end first, as they would
        // on the wire; a reset in the same turn would discard them.
        setTimeout(() => session.reset(), 0);
        return;
      } else {
        this.#proxy.stats.closes++;
        this.#session.closeBoth();
      }
    }
    flush();
  }

  /** Writes bytes, cut into pieces; false when pieces wait for later. */
  #send(bytes: Uint8Array): boolean {
    const { chunkSize = 0, chunkIntervalMs = 0 } = this.#proxy.faults;
    const destination = this.#destination;
    if (chunkSize <= 0 || bytes.byteLength <= chunkSize) {
      this.#deliver(destination, bytes);
      return true;
    }
    if (chunkIntervalMs <= 0) {
      for (let at = 0; at < bytes.byteLength; at += chunkSize) {
        this.#deliver(destination, bytes.subarray(at, at + chunkSize));
      }
      return true;
    }
    this.#deliver(destination, bytes.subarray(0, chunkSize));
    const now = this.#read();
    if (now === undefined) return true;
    const rest = bytes.subarray(chunkSize);
    const at = now + chunkIntervalMs;
    this.#queue.unshift({ kind: "data", bytes: rest, at });
    this.#lastAt = Math.max(this.#lastAt, at);
    return false;
  }

  #deliver(destination: ByteChannel | undefined, bytes: Uint8Array): void {
    if (destination === undefined) {
      this.#early.push(bytes);
      return;
    }
    this.#write(destination, bytes);
  }

  #write(destination: ByteChannel, bytes: Uint8Array): void {
    // The proxy reads everything and buffers what the destination has not
    // taken: it is not a slow reader itself.
    destination.write(bytes);
    const stats = this.#proxy.stats;
    if (this.#toClient) stats.bytesToClient += bytes.byteLength;
    else stats.bytesToNode += bytes.byteLength;
  }

  #sendEnd(): void {
    const destination = this.#destination;
    if (destination === undefined) this.#endEarly = true;
    else destination.close();
  }
}
