/**
 * A fault-injecting TCP proxy for tests: it sits between a client and a
 * node, forwards bytes both ways, and breaks the network on demand while
 * it runs. Built on the runtime adapters (listen + connect), so it runs on
 * Deno, Bun and Node, and on the in-memory network with a virtual clock
 * for tests that must be deterministic.
 *
 * @module
 */

import { type Clock, systemClock, type TimerHandle } from "../src/clock.ts";
import { formatAddress, InvalidArgumentError } from "../src/errors.ts";
import { readU32 } from "../src/protocol/codec.ts";
import { HEADER_SIZE } from "../src/protocol/frame.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type {
  ByteChannel,
  Listener,
  RuntimeAdapter,
  RuntimeName,
} from "../src/runtime/types.ts";
import { concatBytes } from "./bytes.ts";
import { bool, func, is, text } from "../src/config/options.ts";
import {
  checkOptions,
  clock,
  count,
  delay,
  type OptionNames,
  optionsRejection,
  port,
  runtime,
} from "./options.ts";

/**
 * The faults a {@linkcode FaultProxy} can inject. Every field is optional;
 * a missing field means that fault is off.
 *
 * Byte budgets (`resetAfterBytes`, `dataLimit`) count the bytes a
 * connection carried in both directions since the budget was set, or since
 * the connection opened when that was later.
 *
 * @example
 * ```ts
 * import type { ProxyFaults } from "@nodewire/client/testing";
 * const slowAndChoppy: ProxyFaults = { latencyMs: 20, jitterMs: 10, chunkSize: 1 };
 * ```
 */
export interface ProxyFaults {
  /** Delay added to every chunk, in ms on the proxy's clock. Order is kept. */
  latencyMs?: number;
  /** Extra delay drawn uniformly from [0, jitterMs) per chunk, in ms. */
  jitterMs?: number;
  /**
   * Forward at most this many bytes per write: 1 delivers byte by byte.
   * On the memory network every write arrives as its own chunk; on real
   * sockets the kernel may merge pieces unless `chunkIntervalMs` spaces
   * them out.
   */
  chunkSize?: number;
  /** Time between the pieces cut by `chunkSize`, in ms. Default 0. */
  chunkIntervalMs?: number;
  /**
   * Hold every byte, both ways, on every connection (new ones included):
   * the peer looks silent, as behind a black hole or a long network pause.
   * Held bytes flow again, in order, when the stall is cleared, as TCP
   * would retransmit them.
   */
  stall?: boolean;
  /** Reset each connection (both sides) after it carried this many bytes. */
  resetAfterBytes?: number;
  /**
   * Cut each connection's next frame from the node in the middle (in its
   * payload, or in its header when the payload is under 2 bytes), forward
   * the first half and close both sides cleanly.
   */
  closeMidFrame?: boolean;
  /** Close each connection (both sides, cleanly) after it carried this many bytes. */
  dataLimit?: number;
  /**
   * Send every frame from the node to the client twice: a node that
   * answers twice. A frame is held until it is complete.
   */
  duplicateFrames?: boolean;
  /**
   * Refuse new connections (the port is unbound) and drop every open one
   * with a reset. Clearing it binds the same port again.
   */
  down?: boolean;
}

/** Options of {@linkcode startFaultProxy}. */
export interface FaultProxyOptions {
  /** Where to forward to: the node. */
  target: { hostname: string; port: number };
  /** Adapter to listen and connect with. Default: the runtime's native one. */
  runtime?: RuntimeName | RuntimeAdapter;
  /** Clock for latency, jitter and chunk spacing. Default the system clock. */
  clock?: Clock;
  /** Address to listen on. Default `127.0.0.1`. */
  hostname?: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Random numbers in [0, 1) for jitter. Default `Math.random`. */
  random?: () => number;
  /** Faults on from the start. */
  faults?: ProxyFaults;
}

const FAULT_PROXY_OPTIONS: OptionNames<FaultProxyOptions> = {
  target: is((v) => {
    const t = v as { hostname?: unknown; port?: unknown } | null;
    return typeof t === "object" && t !== null &&
      text(t.hostname) === undefined && port(t.port) === undefined &&
      t.port !== 0;
  }, "expected { hostname, port } with a port in 1–65535"),
  runtime,
  clock,
  hostname: text,
  port,
  random: func,
  faults: true,
};
// NaN or Infinity as a delay armed a timer that never delivered and
// re-armed itself forever; a string was concatenated into the delay.
const PROXY_FAULTS: OptionNames<ProxyFaults> = {
  latencyMs: delay,
  jitterMs: delay,
  chunkSize: count,
  chunkIntervalMs: delay,
  stall: bool,
  resetAfterBytes: count,
  closeMidFrame: bool,
  dataLimit: count,
  duplicateFrames: bool,
  down: bool,
};

/** Counters of a {@linkcode FaultProxy}. */
export interface FaultProxyStats {
  /** Connections accepted since start. */
  accepted: number;
  /** Connections open now. */
  open: number;
  /** Bytes written to the node. */
  bytesToNode: number;
  /** Bytes written to the client. */
  bytesToClient: number;
  /** Connections the proxy reset on purpose (budget, `down`, `resetConnections`). */
  resets: number;
  /** Connections the proxy closed on purpose (`dataLimit`, `closeMidFrame`). */
  closes: number;
  /** Connections whose forward connect to the node failed. */
  upstreamFailures: number;
}

type Item =
  | { kind: "data"; bytes: Uint8Array; at: number }
  | { kind: "end" | "reset" | "close"; at: number };

type Held = Uint8Array | "end";

/**
 * Follows frame boundaries in a byte stream without decoding it, so the
 * proxy knows where "the middle of a frame" is.
 */
class FrameTracker {
  /** Absolute offset of the next byte. */
  offset = 0;
  #header = new Uint8Array(HEADER_SIZE);
  #headerFill = 0;
  #payloadLeft = 0;

  /**
   * Walks `chunk`; for each frame that starts in it, calls `onStart` with
   * the frame's absolute start offset and its payload length when the
   * whole header is inside this chunk (else `undefined`).
   */
  walk(
    chunk: Uint8Array,
    onStart: (start: number, length: number | undefined) => void,
  ): void {
    const base = this.offset;
    let i = 0;
    while (i < chunk.byteLength) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, chunk.byteLength - i);
        this.#payloadLeft -= take;
        i += take;
        continue;
      }
      if (this.#headerFill === 0) {
        const whole = chunk.byteLength - i >= HEADER_SIZE;
        onStart(base + i, whole ? readU32(chunk, i + 12) : undefined);
      }
      const take = Math.min(
        HEADER_SIZE - this.#headerFill,
        chunk.byteLength - i,
      );
      this.#header.set(chunk.subarray(i, i + take), this.#headerFill);
      this.#headerFill += take;
      i += take;
      if (this.#headerFill === HEADER_SIZE) {
        this.#headerFill = 0;
        this.#payloadLeft = readU32(this.#header, 12);
      }
    }
    this.offset = base + chunk.byteLength;
  }
}

/** One direction of one proxied connection. */
class Pipe {
  readonly #session: Session;
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

  constructor(session: Session, toClient: boolean) {
    this.#session = session;
    this.#toClient = toClient;
  }

  get #proxy(): FaultProxy {
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

  #schedule(item: Item): void {
    const proxy = this.#proxy;
    const { latencyMs = 0, jitterMs = 0, chunkSize = 0 } = proxy.faults;
    const delay = latencyMs + (jitterMs > 0 ? proxy.random() * jitterMs : 0);
    const now = proxy.clock.now();
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
    const clock = this.#proxy.clock;
    const wait = Math.max(0, this.#queue[0].at - clock.now());
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      this.#deliverDue();
    }, wait);
  }

  #deliverDue(): void {
    const now = this.#proxy.clock.now();
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
    const rest = bytes.subarray(chunkSize);
    const at = this.#proxy.clock.now() + chunkIntervalMs;
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

/** One client connection and its forward connection to the node. */
class Session {
  readonly proxy: FaultProxy;
  readonly client: ByteChannel;
  node: ByteChannel | undefined;
  readonly toNode: Pipe;
  readonly toClient: Pipe;
  /** Bytes let through since the budgets were last set. */
  used = 0;
  /** A budget ran out: nothing more is let through. */
  doomed = false;
  finished = false;
  #clientClosed = false;
  #nodeClosed = false;
  readonly #connecting = new AbortController();
  readonly #onFinish: (session: Session) => void;

  constructor(
    proxy: FaultProxy,
    client: ByteChannel,
    onFinish: (session: Session) => void,
  ) {
    this.proxy = proxy;
    this.client = client;
    this.#onFinish = onFinish;
    this.toNode = new Pipe(this, false);
    this.toClient = new Pipe(this, true);
    client.onData((chunk) => this.toNode.input(chunk));
    client.onClose((error) => {
      this.#clientClosed = true;
      if (error) this.reset();
      else this.toNode.end();
      this.#checkDone();
    });
  }

  /** How many more bytes `limit` lets through, or `undefined` without one. */
  budgetLeft(limit: number | undefined): number | undefined {
    return limit === undefined ? undefined : Math.max(0, limit - this.used);
  }

  async connect(adapter: RuntimeAdapter): Promise<void> {
    const target = this.proxy.target;
    let node: ByteChannel;
    try {
      node = await adapter.connect({
        hostname: target.hostname,
        port: target.port,
        signal: this.#connecting.signal,
      });
    } catch {
      if (this.finished) return;
      this.proxy.stats.upstreamFailures++;
      // What a client of a proxy sees when the node behind it is gone.
      this.reset();
      return;
    }
    if (this.finished) {
      node.destroy();
      return;
    }
    this.node = node;
    node.onData((chunk) => this.toClient.input(chunk));
    node.onClose((error) => {
      this.#nodeClosed = true;
      if (error) this.reset();
      else this.toClient.end();
      this.#checkDone();
    });
    this.toNode.connected();
  }

  /** Drops both sides at once with a reset. */
  reset(): void {
    if (this.finished) return;
    this.doomed = true;
    this.#finish();
    this.client.destroy();
    this.node?.destroy();
  }

  /** Closes both sides cleanly (FIN), dropping what is still queued. */
  closeBoth(): void {
    if (this.finished) return;
    this.doomed = true;
    this.#finish();
    this.client.close();
    this.node?.close();
  }

  #checkDone(): void {
    if (this.#clientClosed && (this.#nodeClosed || this.node === undefined)) {
      this.#finish();
    }
  }

  #finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.#connecting.abort();
    this.toNode.stop();
    this.toClient.stop();
    this.#onFinish(this);
  }
}

/**
 * A running fault-injecting proxy. Point a client at `address`; the proxy
 * forwards to its target and applies the faults set with
 * {@linkcode FaultProxy.setFaults}, which take effect at once on open
 * connections as well as new ones.
 *
 * The proxy reads everything from both sides at once and buffers what a
 * side has not taken, so it never exerts backpressure itself; a slow
 * reader must be simulated by the node.
 *
 * @example
 * ```ts
 * import { startFaultProxy, startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode();
 * const proxy = await startFaultProxy({ target: node });
 * await proxy.setFaults({ latencyMs: 50, chunkSize: 1 });
 * // ... point a client at proxy.address ...
 * await proxy.setFaults({ down: true });  // refuse and drop everything
 * await proxy.clearFaults();              // back, on the same port
 * await proxy.close();
 * await node.close();
 * ```
 */
export class FaultProxy {
  /** Where bytes are forwarded. */
  readonly target: { hostname: string; port: number };
  /** The proxy's clock. */
  readonly clock: Clock;
  /** Jitter source. */
  readonly random: () => number;
  /** Counters. */
  readonly stats: FaultProxyStats = {
    accepted: 0,
    open: 0,
    bytesToNode: 0,
    bytesToClient: 0,
    resets: 0,
    closes: 0,
    upstreamFailures: 0,
  };

  readonly #adapter: RuntimeAdapter;
  readonly #hostname: string;
  #port: number;
  #listener: Listener | undefined;
  #faults: ProxyFaults = {};
  readonly #sessions = new Set<Session>();
  #closed = false;
  // Serialises listener changes: down and up may be asked in quick turn.
  #change: Promise<void> = Promise.resolve();

  /** @internal Use {@linkcode startFaultProxy}. */
  constructor(adapter: RuntimeAdapter, options: FaultProxyOptions) {
    this.#adapter = adapter;
    this.target = {
      hostname: options.target.hostname,
      port: options.target.port,
    };
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    this.#faults = { ...options.faults };
  }

  /** The faults in force. */
  get faults(): Readonly<ProxyFaults> {
    return this.#faults;
  }

  /** The host clients connect to. */
  get hostname(): string {
    return this.#hostname;
  }

  /** The port clients connect to (the same across down and up). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` to give to a client. */
  get address(): string {
    return formatAddress({ hostname: this.#hostname, port: this.#port });
  }

  /** @internal Binds the port. */
  async start(): Promise<void> {
    if (this.#faults.down) {
      // Bind once to learn a port, then refuse from the start.
      await this.#bind();
      await this.#unbind();
      return;
    }
    await this.#bind();
  }

  /**
   * Changes faults: the fields given replace those in force, `undefined`
   * switches one off, fields not given stay. Resolves once applied (going
   * down or up binds or unbinds the port).
   */
  setFaults(changes: ProxyFaults): Promise<void> {
    const refused = optionsRejection(
      "setFaults faults",
      changes,
      PROXY_FAULTS,
      {
        required: true,
      },
    );
    if (refused) return refused;
    const before = this.#faults;
    const next: ProxyFaults = { ...before };
    for (const [key, value] of Object.entries(changes)) {
      (next as Record<string, unknown>)[key] = value;
    }
    this.#faults = next;
    const budgets = "resetAfterBytes" in changes || "dataLimit" in changes;
    for (const session of this.#sessions) {
      if (budgets) session.used = 0;
      if (next.closeMidFrame && !before.closeMidFrame) {
        session.toClient.armCut();
      }
    }
    if (before.duplicateFrames && !next.duplicateFrames) {
      for (const session of this.#sessions) session.toClient.flushPartial();
    }
    if (before.stall && !next.stall) {
      for (const session of [...this.#sessions]) {
        session.toNode.release();
        session.toClient.release();
      }
    }
    if (next.down && !before.down) {
      for (const session of [...this.#sessions]) {
        this.stats.resets++;
        session.reset();
      }
      return this.#queueChange(() => this.#unbind());
    }
    if (!next.down && before.down) {
      return this.#queueChange(() => this.#bind());
    }
    return this.#change;
  }

  /** Switches every fault off (and comes back up when down). */
  clearFaults(): Promise<void> {
    const off: ProxyFaults = {};
    for (const key of Object.keys(this.#faults)) {
      (off as Record<string, unknown>)[key] = undefined;
    }
    return this.setFaults(off);
  }

  /** Resets every open connection now, both sides. */
  resetConnections(): void {
    for (const session of [...this.#sessions]) {
      this.stats.resets++;
      session.reset();
    }
  }

  /**
   * Sends `bytes` to the client side (default) or the node side of every
   * open connection, after what is already queued: for garbage, unknown or
   * duplicate frames. Frame-aligned only if the stream is quiet.
   *
   * @throws {InvalidArgumentError} for bytes that are not a Uint8Array or
   * a side that is neither.
   */
  inject(bytes: Uint8Array, to: "client" | "node" = "client"): void {
    if (!(bytes instanceof Uint8Array) || (to !== "client" && to !== "node")) {
      throw bytes instanceof Uint8Array
        ? new InvalidArgumentError("to", to, 'expected "client" or "node"')
        : new InvalidArgumentError("bytes", bytes, "expected a Uint8Array");
    }
    for (const session of this.#sessions) {
      (to === "client" ? session.toClient : session.toNode).inject(bytes);
    }
  }

  /** Stops listening and drops every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const session of [...this.#sessions]) session.reset();
    await this.#queueChange(() => this.#unbind());
  }

  /** `await using proxy = await startFaultProxy(...)` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #queueChange(change: () => Promise<void>): Promise<void> {
    this.#change = this.#change.then(change, change);
    return this.#change;
  }

  async #bind(): Promise<void> {
    if (this.#listener || this.#closed || this.#faults.down) return;
    this.#listener = await this.#adapter.listen(
      { hostname: this.#hostname, port: this.#port },
      (channel) => this.#accept(channel),
    );
    this.#port = this.#listener.port;
  }

  async #unbind(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.close();
  }

  #accept(channel: ByteChannel): void {
    if (this.#closed || this.#faults.down || !this.#listener) {
      channel.onClose(() => {});
      channel.destroy();
      return;
    }
    this.stats.accepted++;
    this.stats.open++;
    const session = new Session(this, channel, (ended) => {
      if (this.#sessions.delete(ended)) this.stats.open--;
    });
    this.#sessions.add(session);
    if (this.#faults.closeMidFrame) session.toClient.armCut();
    void session.connect(this.#adapter);
  }
}

/**
 * Starts a fault-injecting proxy in front of `target` and resolves once it
 * listens.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { ops, startFaultProxy, startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode();
 * const proxy = await startFaultProxy({ target: node });
 * const client = await Client.connect({ hosts: [proxy.address] });
 * await proxy.setFaults({ latencyMs: 20 });
 * await client.request(ops.echo("slow"));
 * await client.disconnect();
 * await proxy.close();
 * await node.close();
 * ```
 */
export async function startFaultProxy(
  options: FaultProxyOptions,
): Promise<FaultProxy> {
  checkOptions("startFaultProxy options", options, FAULT_PROXY_OPTIONS, {
    required: true,
    needs: ["target"],
  });
  checkOptions("startFaultProxy options.faults", options.faults, PROXY_FAULTS);
  const adapter = await getAdapter(options.runtime);
  const proxy = new FaultProxy(adapter, options);
  await proxy.start();
  return proxy;
}
