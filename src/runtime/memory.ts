/**
 * An in-process network for tests: listeners and connections over pairs of
 * in-memory channels, with no sockets and no timer that fires. Everything
 * happens in microtasks, so a test that awaits the right promises sees the
 * same order of events on every run and every runtime. The one timer is a
 * hold that never fires: while a channel is open it keeps the process
 * running, as an open socket does.
 *
 * @module
 */

import {
  ConnectionLostError,
  ConnectionRefusedError,
  type Endpoint,
  HostNotFoundError,
  InvalidArgumentError,
} from "../errors.ts";
import { handOver } from "./accept.ts";
import { readConnect, readListen } from "./arguments.ts";
import { ChannelBase } from "./channel_base.ts";
import { toListenError } from "./errors.ts";
import type {
  ByteChannel,
  ConnectOptions,
  Listener,
  ListenOptions,
  RuntimeAdapter,
} from "./types.ts";
import { WriteQueue } from "./write_queue.ts";

/** Where port 0 and client-side ports start, as in the IANA dynamic range. */
const FIRST_DYNAMIC_PORT = 49152;
/** The last port there is; allocation wraps round to the first after it. */
const LAST_PORT = 65535;

/**
 * A {@linkcode RuntimeAdapter} over an in-memory network, plus handles for
 * tests to inspect it and inject faults. It has no TLS: `connect` and
 * `listen` refuse a `tls` option with an `InvalidArgumentError`.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { createMemoryNetwork } from "@nodewire/client/runtime";
 * import { startTestNode } from "@nodewire/client/testing";
 * const network = createMemoryNetwork();
 * const node = await startTestNode({ runtime: network });
 * const client = await Client.connect({ hosts: [node.address], runtime: network });
 * network.breakAll("partition"); // every open connection fails at once
 * await client.disconnect();
 * await node.close();
 * console.log(network.openChannels); // 0
 * ```
 */
export interface MemoryNetwork extends RuntimeAdapter {
  /** Always `"memory"`. */
  readonly name: "memory";
  /** Channel ends not yet closed; 0 after a test that cleaned up. */
  readonly openChannels: number;
  /**
   * Fails every open channel at once, both ends, with a
   * `ConnectionLostError`: a network partition or a crashed switch.
   */
  breakAll(reason?: string): void;
}

interface Network {
  readonly channels: Set<MemoryChannel>;
  hold: ReturnType<typeof setInterval> | undefined;
}

// Never fires: an interval only to hold the process (about 12 days).
const HOLD_MS = 2 ** 30;
const nothing = () => {};

/**
 * Counts `channel` open. An open socket keeps a process running until it
 * closes; so does an open memory channel, by a referenced timer held while
 * any is open. Without it, Node ended a program awaiting a late reply from
 * a test node on this network (a SLEEP on the system clock: the node's
 * timer and the request's deadline are both unreferenced) inside the
 * await, the reply never read.
 */
function opened(network: Network, channel: MemoryChannel): void {
  network.channels.add(channel);
  network.hold ??= setInterval(nothing, HOLD_MS);
}

/** Counts `channel` closed; the last to close lets the process go. */
function gone(network: Network, channel: MemoryChannel): void {
  network.channels.delete(channel);
  if (network.channels.size > 0 || network.hold === undefined) return;
  clearInterval(network.hold);
  network.hold = undefined;
}

class MemoryChannel extends ChannelBase {
  #network: Network;
  #remote: { hostname: string; port: number };
  // Bytes this end wrote that the other end has not read yet: the pipe.
  #outbox = new WriteQueue();
  #peer: MemoryChannel | undefined;
  #reading = false;
  // Set by pause(): nothing more is delivered until resume(), so what the
  // other end writes stays in its outbox and holds its writer back.
  #paused = false;
  #deliveryScheduled = false;
  #closing = false;

  constructor(
    network: Network,
    endpoint: Endpoint,
    remote: { hostname: string; port: number },
  ) {
    super(endpoint);
    this.#network = network;
    this.#remote = remote;
    opened(network, this);
  }

  /** Joins two fresh ends. */
  static pair(a: MemoryChannel, b: MemoryChannel): void {
    a.#peer = b;
    b.#peer = a;
  }

  /** `write` copies. */
  readonly releasesWrites = true;

  get bufferedAmount(): number {
    return this.#outbox.size;
  }

  get remoteAddress(): { hostname: string; port: number } {
    return this.#remote;
  }

  write(bytes: Uint8Array): boolean {
    if (this.finished || this.#closing) return false;
    const peer = this.#peer;
    // The other end is gone but we have not read its EOF yet; TCP would
    // swallow these bytes too.
    if (peer === undefined || peer.finished) return true;
    // Copied so the caller keeps its buffer and the reader owns its chunk.
    const below = this.#outbox.push(bytes.slice());
    peer.#scheduleDelivery();
    return below;
  }

  drained(): Promise<void> {
    return this.finished ? Promise.resolve() : this.#outbox.drained();
  }

  close(): void {
    if (this.finished || this.#closing) return;
    // The other end reads what is in flight, then sees the end of stream.
    this.#closing = true;
    const peer = this.#peer;
    if (peer !== undefined) peer.#scheduleDelivery();
    this.finish();
  }

  destroy(error?: Error): void {
    if (this.finished) return;
    this.#outbox.clear();
    const peer = this.#peer;
    this.finish(error);
    if (peer !== undefined && !peer.finished) {
      peer.#outbox.clear();
      peer.finish(new ConnectionLostError(peer.endpoint, "reset by peer"));
    }
  }

  /**
   * Delivers nothing more, once the chunk being delivered has been handed
   * over, until `resume()`: what the other end writes waits in its queue,
   * so its `write` returns false past the mark and its `drained()` waits,
   * as against a TCP reader that stopped reading, but exactly (a kernel
   * may still take bytes in, more under load as its buffers grow).
   */
  pause(): void {
    this.#paused = true;
  }

  /** Delivers again after `pause()`: what waited, in order, then any end. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#scheduleDelivery();
  }

  /** Fails this end only; the network breaking under it. */
  sever(reason: string): void {
    if (this.finished) return;
    this.#outbox.clear();
    this.finish(new ConnectionLostError(this.endpoint, reason));
  }

  protected override startReading(): void {
    this.#reading = true;
    this.#scheduleDelivery();
  }

  protected override finish(error?: Error): boolean {
    if (!super.finish(error)) return false;
    gone(this.#network, this);
    // Whatever the peer sent that we never read is lost with us; releasing
    // it wakes a peer waiting in drained().
    const peer = this.#peer;
    if (peer !== undefined) peer.#outbox.clear();
    return true;
  }

  #scheduleDelivery(): void {
    if (
      this.#deliveryScheduled || !this.#reading || this.#paused ||
      this.finished
    ) return;
    this.#deliveryScheduled = true;
    queueMicrotask(() => this.#deliver());
  }

  #deliver(): void {
    this.#deliveryScheduled = false;
    const source = this.#peer;
    if (source === undefined) return;
    while (!this.finished && !this.#paused) {
      const chunk = source.#outbox.shift();
      if (chunk === undefined) break;
      this.emitData(chunk);
    }
    // End of stream after the last byte; close our side too, like a TCP
    // socket without half-open support. Paused, it is read on resume().
    if (!this.#paused && source.#closing && source.#outbox.size === 0) {
      this.close();
    }
  }
}

function isIpLiteral(hostname: string): boolean {
  return hostname.includes(":") || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname);
}

function canonicalHost(hostname: string): string {
  return hostname === "localhost" ? "127.0.0.1" : hostname;
}

/**
 * Creates an isolated in-memory network. Each call is a separate network:
 * ports bound on one are not visible on another.
 *
 * - `listen({ port: 0 })` allocates a free port from 49152 to 65535,
 *   round the range (client ends take theirs from it too).
 * - `connect` to a port nobody listens on rejects with
 *   `ConnectionRefusedError`; to a name that is neither an IP literal,
 *   `localhost`, nor a name something listened on, with `HostNotFoundError`.
 * - Written bytes are copied and delivered to the other end in a later
 *   microtask, one chunk per write. `bufferedAmount` counts bytes the other
 *   end has not read, so a reader that has not called `onData` yet holds
 *   back the writer exactly like a full TCP window.
 * - `close()` lets the other end read what is in flight, then closes it
 *   cleanly; `destroy()` resets it with a `ConnectionLostError`.
 * - `pause()` on an end reads nothing more until `resume()`: the other
 *   end's writes wait (past 1 MiB its `write` returns false), exactly as
 *   a peer that stopped reading holds back a TCP writer, whatever the
 *   machine's load; the end of the stream is seen after them.
 * - An open channel keeps the process running, as an open socket does;
 *   once every channel is closed, nothing is held.
 *
 * @example An echo server and a client on the same network
 * ```ts
 * import { createMemoryNetwork } from "@nodewire/client/runtime";
 * const network = createMemoryNetwork();
 * const listener = await network.listen({ port: 0 }, (server) => {
 *   server.onData((chunk) => server.write(chunk));
 *   server.onClose(() => {});
 * });
 * const client = await network.connect({ hostname: "127.0.0.1", port: listener.port });
 * const echoed = new Promise<Uint8Array>((resolve) => client.onData(resolve));
 * client.onClose(() => {});
 * client.write(new Uint8Array([1, 2, 3]));
 * console.log(await echoed); // Uint8Array(3) [ 1, 2, 3 ]
 * client.close();
 * await listener.close();
 * ```
 */
export function createMemoryNetwork(): MemoryNetwork {
  const channels = new Set<MemoryChannel>();
  const network: Network = { channels, hold: undefined };
  const listeners = new Map<string, (channel: ByteChannel) => void>();
  const knownHosts = new Set<string>();
  let nextPort = FIRST_DYNAMIC_PORT;
  const key = (hostname: string, port: number) => `${hostname} ${port}`;
  // Round the dynamic range, skipping ports listened on: every connect
  // takes a client port too, and counting on past 65535 gave listeners
  // and peers ports that do not exist.
  const allocatePort = (hostname: string): number => {
    for (let tries = FIRST_DYNAMIC_PORT; tries <= LAST_PORT; tries++) {
      const port = nextPort;
      nextPort = port === LAST_PORT ? FIRST_DYNAMIC_PORT : port + 1;
      if (!listeners.has(key(hostname, port))) return port;
    }
    throw toListenError(
      new Error(
        `every port from ${FIRST_DYNAMIC_PORT} to ${LAST_PORT} is in use`,
      ),
      { hostname, port: 0 },
    );
  };
  const find = (hostname: string, port: number) =>
    listeners.get(key(hostname, port)) ??
      listeners.get(key(hostname.includes(":") ? "::" : "0.0.0.0", port));

  return {
    name: "memory",

    get openChannels(): number {
      return channels.size;
    },

    async connect(options: ConnectOptions): Promise<ByteChannel> {
      options = readConnect(options);
      refuseTls("connect()", options.tls);
      const { port, signal } = options;
      signal?.throwIfAborted();
      // A real connect never completes synchronously; neither does this, so
      // an abort right after the call is seen.
      await Promise.resolve();
      signal?.throwIfAborted();
      const endpoint = { hostname: options.hostname, port };
      const hostname = canonicalHost(options.hostname);
      if (!isIpLiteral(hostname) && !knownHosts.has(hostname)) {
        throw new HostNotFoundError(endpoint);
      }
      const onConnection = find(hostname, port);
      if (onConnection === undefined) {
        throw new ConnectionRefusedError(endpoint);
      }
      const clientAddress = {
        hostname: hostname.includes(":") ? "::1" : "127.0.0.1",
        port: allocatePort(""),
      };
      const client = new MemoryChannel(network, endpoint, { hostname, port });
      const server = new MemoryChannel(network, clientAddress, clientAddress);
      MemoryChannel.pair(client, server);
      handOver(onConnection, server);
      return client;
    },

    // async so that a bad argument rejects rather than throws.
    // deno-lint-ignore require-await
    async listen(
      options: ListenOptions,
      onConnection: (channel: ByteChannel) => void,
    ): Promise<Listener> {
      options = readListen(options, onConnection);
      refuseTls("listen()", options.tls);
      const hostname = canonicalHost(options.hostname ?? "127.0.0.1");
      const port = options.port === 0 ? allocatePort(hostname) : options.port;
      if (listeners.has(key(hostname, port))) {
        throw toListenError(
          new Error(`port ${port} is in use`),
          { hostname, port },
        );
      }
      listeners.set(key(hostname, port), onConnection);
      knownHosts.add(hostname);
      let closed = false;
      return {
        hostname,
        port,
        close(): Promise<void> {
          if (!closed) {
            closed = true;
            listeners.delete(key(hostname, port));
          }
          return Promise.resolve();
        },
      };
    },

    breakAll(reason = "network failure"): void {
      for (const channel of [...channels]) channel.sever(reason);
    },
  };
}

/**
 * The memory network has no TLS (`supportsTls` is unset, so a client never
 * asks it for TLS): a caller that does gets an error, not a plaintext
 * channel it would take for an encrypted one.
 */
function refuseTls(method: string, tls: unknown): void {
  if (tls === undefined) return;
  throw new InvalidArgumentError(
    "options.tls",
    tls,
    "the memory network does not speak TLS (supportsTls is not set)",
    { method },
  );
}
