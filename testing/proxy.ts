/**
 * A fault-injecting TCP proxy for tests: it sits between a client and a
 * node, forwards bytes both ways, and breaks the network on demand while
 * it runs. Built on the runtime adapters (listen + connect), so it runs on
 * Deno, Bun and Node, and on the in-memory network with a virtual clock
 * for tests that must be deterministic.
 *
 * @module
 */

import { type Clock, systemClock } from "../src/clock.ts";
import {
  ConfigError,
  formatAddress,
  InvalidArgumentError,
} from "../src/errors.ts";
import { isPayload } from "../src/connection/payload.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type {
  ByteChannel,
  Listener,
  RuntimeAdapter,
  RuntimeName,
} from "../src/runtime/types.ts";
import { func, text } from "../src/config/options.ts";
import {
  checked,
  checkOptions,
  clock,
  type OptionNames,
  port,
  refuseUnchecked,
  runtime,
} from "./options.ts";
import { PROXY_FAULTS, type ProxyFaults } from "./proxy_faults.ts";
import { Session } from "./proxy_session.ts";

export type { ProxyFaults };

/**
 * Options of {@linkcode startFaultProxy}.
 *
 * @example
 * ```ts
 * import { startFaultProxy, startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode();
 * const proxy = await startFaultProxy({
 *   target: node,
 *   faults: { latencyMs: 20, jitterMs: 10 }, // from the first connection on
 *   random: () => 0.5, // jitter the same on every run
 * });
 * await proxy.close();
 * await node.close();
 * ```
 */
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
  /**
   * Random numbers in [0, 1) for jitter. Default `Math.random`. Any other
   * (or a clock's `now()` not finite) resets that connection, and
   * `close()` rejects with the error.
   */
  random?: () => number;
  /** Faults on from the start. */
  faults?: ProxyFaults;
}

const FAULT_PROXY_OPTIONS: OptionNames<FaultProxyOptions> = {
  // Read by readTarget: a node is a target, with more than the two names.
  target: true,
  runtime,
  clock,
  hostname: text,
  port,
  random: func,
  faults: true,
};
/**
 * Counters of a {@linkcode FaultProxy}.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { ops, startFaultProxy, startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode();
 * const proxy = await startFaultProxy({ target: node });
 * const client = await Client.connect({ hosts: [proxy.address] });
 * await client.request(ops.echo("hi"));
 * console.log(proxy.stats.accepted > 0, proxy.stats.bytesToNode > 0); // true true
 * await client.disconnect();
 * await proxy.close();
 * await node.close();
 * ```
 */
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
  // The first bad random() or now(): close() rejects with it.
  #failure: Error | undefined;
  // Serialises listener changes: down and up may be asked in quick turn.
  #change: Promise<void> = Promise.resolve();

  /** @internal Use {@linkcode startFaultProxy}. */
  constructor(adapter: RuntimeAdapter, options: FaultProxyOptions) {
    refuseUnchecked(options, "new FaultProxy", "startFaultProxy(options)");
    this.#adapter = adapter;
    this.target = Object.freeze({
      hostname: options.target.hostname,
      port: options.target.port,
    });
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    this.#faults = Object.freeze({ ...options.faults });
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
    try {
      changes = checkOptions("setFaults faults", changes, PROXY_FAULTS, {
        required: true,
      });
    } catch (error) {
      return Promise.reject(error);
    }
    const before = this.#faults;
    const next: ProxyFaults = { ...before };
    for (const [key, value] of Object.entries(changes)) {
      (next as Record<string, unknown>)[key] = value;
    }
    // Frozen: `faults` hands it out, and a NaN written into it would pass
    // no check (and re-arm a timer forever).
    this.#faults = Object.freeze(next);
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
    const method = "FaultProxy.inject";
    // isPayload, not instanceof: that throws for a revoked proxy.
    if (!isPayload(bytes)) {
      throw new InvalidArgumentError("bytes", bytes, "expected a Uint8Array", {
        method,
      });
    }
    if (to !== "client" && to !== "node") {
      throw new InvalidArgumentError("to", to, 'expected "client" or "node"', {
        method,
      });
    }
    // A copy: the bytes go out later (after latency, or a stall), and the
    // caller may reuse its buffer as soon as the call returns.
    const copy = new Uint8Array(bytes);
    for (const session of this.#sessions) {
      (to === "client" ? session.toClient : session.toNode).inject(copy);
    }
  }

  /**
   * Stops listening and drops every connection. Idempotent.
   *
   * @throws {InvalidArgumentError} once closed, for a bad `random()` or
   *   `now()` on the way.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const session of [...this.#sessions]) session.reset();
    await this.#queueChange(() => this.#unbind());
    if (this.#failure) throw this.#failure;
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
    const session = new Session(this, channel, (ended, error) => {
      if (this.#sessions.delete(ended)) this.stats.open--;
      this.#failure ??= error;
    });
    this.#sessions.add(session);
    if (this.#faults.closeMidFrame) session.toClient.armCut();
    void session.connect(this.#adapter);
  }
}

/**
 * `target`'s hostname and port, each read once (a target is often a
 * TestNode, whose two getters answer for it), as a plain copy.
 *
 * @throws {ConfigError} unless they are a host name and a port in 1–65535.
 */
function readTarget(target: unknown): FaultProxyOptions["target"] {
  let hostname: unknown;
  let at: unknown;
  let cause: unknown;
  if (typeof target === "object" && target !== null) {
    try {
      ({ hostname, port: at } = target as {
        hostname?: unknown;
        port?: unknown;
      });
    } catch (error) {
      cause = error;
    }
  }
  if (
    cause !== undefined || text(hostname) !== undefined ||
    port(at) !== undefined || at === 0
  ) {
    throw new ConfigError(
      "startFaultProxy options.target",
      target,
      cause === undefined
        ? "expected { hostname, port } with a port in 1–65535"
        : "could not be read",
      { cause },
    );
  }
  return { hostname: hostname as string, port: at as number };
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
  const read = checkOptions<FaultProxyOptions>(
    "startFaultProxy options",
    options,
    FAULT_PROXY_OPTIONS,
    { required: true, needs: ["target"] },
  );
  read.target = readTarget(read.target);
  read.faults = checkOptions(
    "startFaultProxy options.faults",
    read.faults,
    PROXY_FAULTS,
  );
  const adapter = await getAdapter(read.runtime);
  const proxy = new FaultProxy(adapter, checked(read));
  await proxy.start();
  return proxy;
}
