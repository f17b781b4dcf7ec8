/**
 * A real reference node: a server that speaks the wire protocol over the
 * same runtime adapters as the client, on Deno, Bun and Node. Tests,
 * benchmarks and the demo run clusters of these on loopback. This file is
 * the node's life (start, stop, restart on the same port) and the
 * connections it holds; what is said on one is node_session.ts's.
 *
 * @module
 */

import { type Clock, systemClock } from "../src/clock.ts";
import { DEFAULT_MAX_FRAME_SIZE } from "../src/protocol/frame.ts";
import { formatAddress } from "../src/errors.ts";
import type { ProtocolFeature } from "../src/protocol/messages.ts";
import { sortProtocols } from "../src/protocol/negotiation.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { checkServerTls } from "../src/runtime/tls.ts";
import type {
  ByteChannel,
  Listener,
  RuntimeAdapter,
} from "../src/runtime/types.ts";
import { CredentialStore } from "./auth.ts";
import { bool } from "../src/config/options.ts";
import { checked, checkOptions, refuseUnchecked } from "./options.ts";
import { readTestNodeOptions, type TestNodeOptions } from "./node_options.ts";
import { RequestServer } from "./node_requests.ts";
import { NodeSession, type SessionHost } from "./node_session.ts";
import type { TestNodeStats } from "./node_stats.ts";
import { NodeUdp } from "./node_udp.ts";
import type { UdpServiceStats } from "./udp_service.ts";

/**
 * How long a gracefully stopped node keeps a stream open after its
 * GOODBYE for the client to close it: requests sent before the client
 * read the GOODBYE are still answered meanwhile.
 */
const GOODBYE_WINDOW_MS = 1_000;

const encoder = new TextEncoder();

/**
 * A running reference node. Stop it to simulate a crash, start it again on
 * the same port to simulate a restart.
 *
 * @example
 * ```ts
 * import { startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode({ nodeId: "n1" });
 * console.log(node.address); // e.g. "127.0.0.1:41234"
 * await node.close();
 * ```
 */
export class TestNode {
  /** Counters. */
  readonly stats: TestNodeStats = {
    accepted: 0,
    open: 0,
    requests: 0,
    pings: 0,
    negotiations: 0,
    authAttempts: 0,
    authSuccesses: 0,
    authFailures: 0,
    tlsHandshakes: 0,
    tlsFailures: 0,
  };

  readonly #adapter: RuntimeAdapter;
  readonly #hostname: string;
  #port: number;
  #nodeId: string | undefined;
  #nodeIdBytes = new Uint8Array(0);
  readonly #sessions = new Set<NodeSession>();
  #listener: Listener | undefined;
  readonly #credentials: Record<string, string> | CredentialStore | undefined;
  #users: CredentialStore | undefined;
  readonly #udp: NodeUdp<NodeSession> | undefined;
  readonly #tls: TestNodeOptions["tls"];
  #tlsChecked = false;
  // The store and SLEEP's timers: the store outlives a stop.
  readonly #requests: RequestServer;
  // What the sessions see of the node.
  readonly #host: SessionHost;
  readonly #dropped = new WeakSet<NodeSession>();

  /** @internal Use {@linkcode startTestNode}. */
  constructor(
    adapter: RuntimeAdapter,
    options: TestNodeOptions,
  ) {
    refuseUnchecked(options, "new TestNode", "startTestNode(options)");
    this.#adapter = adapter;
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    const clock: Clock = options.clock ?? systemClock;
    this.#nodeId = options.nodeId;
    this.#credentials = options.credentials;
    const protocols = sortProtocols(options.protocols ?? ["tcp"]);
    const udpPort = options.udpPort;
    this.#tls = options.tls;
    const features: readonly ProtocolFeature[] = options.udpBatch === false
      ? []
      : ["udp-batch"];
    if (protocols.includes("udp") && adapter.datagram) {
      this.#udp = new NodeUdp<NodeSession>({
        adapter,
        clock,
        dropEvery: options.udpDropEvery,
        maxDatagramSize: options.udpMaxDatagramSize,
        onMessage: (session, message, reply) =>
          session.handleDatagram(message, reply),
      }, udpPort);
    }
    this.#requests = new RequestServer({
      stats: this.stats,
      clock,
      nodeIdBytes: () => this.#nodeIdBytes,
    });
    this.#host = {
      nodeId: () => this.nodeId,
      maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      users: () => this.#users,
      protocols,
      features,
      tls: this.#tls,
      clock,
      stats: this.stats,
      requests: this.#requests,
      udp: this.#udp,
      // Given, it is advertised even by a node that cannot serve UDP.
      udpPort: () => this.#udp?.knownPort ?? udpPort ?? this.#port,
      holds: (session) => this.#sessions.has(session),
      // Sessions exist only once started, when there is a controller.
      stopped: () => this.#handshakes!.signal,
      drop: (session) => this.#drop(session),
    };
  }

  /** Whether the node requires authentication. */
  get requiresAuth(): boolean {
    return this.#credentials !== undefined;
  }

  /** The node's id, echoed in every reply. */
  get nodeId(): string {
    return this.#nodeId ?? `node-${this.#port}`;
  }

  /** The bound host. */
  get hostname(): string {
    return this.#hostname;
  }

  /** The bound port (stays the same across restarts). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` to give to a client. */
  get address(): string {
    return formatAddress({ hostname: this.#hostname, port: this.#port });
  }

  /** Whether the node is listening. */
  get running(): boolean {
    return this.#listener !== undefined;
  }

  /**
   * Starts listening (again), on the same port as before. A call while a
   * start is under way waits for that one: two would each bind a listener,
   * and the first, no longer held, would keep the process alive.
   */
  start(): Promise<void> {
    if (this.#listener) return Promise.resolve();
    return this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
  }

  #starting: Promise<void> | undefined;
  /** Aborts the TLS handshakes under way (direct or switched to), on stop. */
  #handshakes: AbortController | undefined;

  async #start(): Promise<void> {
    // The pair is first used at a client's TLS switch, long after a start
    // that bound fine: refused here, as listen() refuses it.
    if (this.#tls !== undefined && !this.#tlsChecked) {
      await checkServerTls(this.#tls, "startTestNode");
      this.#tlsChecked = true;
    }
    if (this.#credentials !== undefined && this.#users === undefined) {
      this.#users = this.#credentials instanceof CredentialStore
        ? this.#credentials
        : await CredentialStore.create(this.#credentials);
    }
    // UDP first when its port is known (given, or bound by an earlier
    // start): a client reconnecting the moment the stream listens again
    // must find UDP up, or it would be offered UDP without a token.
    const udp = this.#udp;
    if (udp?.knownPort !== undefined) await this.#startUdp(udp);
    // Given up when the node stops: a connection still in its direct
    // handshake is no session yet, and nothing else would drop it.
    const handshakes = this.#handshakes = new AbortController();
    const direct = this.#tls?.direct
      ? { cert: this.#tls.cert, key: this.#tls.key, signal: handshakes.signal }
      : undefined;
    let listener: Listener;
    try {
      listener = await this.#adapter.listen(
        { hostname: this.#hostname, port: this.#port, tls: direct },
        (channel) => {
          if (direct) this.stats.tlsHandshakes++;
          this.#serve(channel);
        },
      );
    } catch (error) {
      // Left as a stop leaves it: the socket this start bound, or the one
      // a graceful stop kept draining (the start ended the drain), stayed
      // bound with no node to close it, and the process never exited.
      await udp?.release();
      throw error;
    }
    this.#listener = listener;
    this.#port = listener.port;
    this.#nodeIdBytes = encoder.encode(this.nodeId);
    // Otherwise on the TCP port's number, known only now.
    if (udp && !udp.bound) {
      try {
        await this.#startUdp(udp);
      } catch (error) {
        this.#listener = undefined;
        await listener.close();
        throw error;
      }
    }
  }

  /** The bound UDP port, while the node serves UDP. */
  get udpPort(): number | undefined {
    return this.#udp?.port;
  }

  /** Sessions holding a UDP token (connections that negotiated UDP). */
  get udpSessions(): number {
    return this.#udp?.sessions ?? 0;
  }

  /** Counters of the UDP side, when the node serves UDP. */
  get udpStats(): UdpServiceStats | undefined {
    return this.#udp?.stats;
  }

  #startUdp(udp: NodeUdp<NodeSession>): Promise<void> {
    return udp.start(this.#hostname, this.#port);
  }

  /**
   * Stops listening. By default open connections are dropped at once, like
   * a crash; with `graceful` the node says GOODBYE (once per connection: a
   * second graceful stop sends none), answers what each client sent
   * before it read the GOODBYE, finishes what is in flight, and leaves
   * each stream for its client to close (after 1 s it closes it, once
   * nothing is in flight). Either way a TLS handshake under way
   * (a direct one, or a switch after negotiation) is given up and its
   * connection dropped. A `start()` under way is waited for, then stopped.
   *
   * @example
   * ```ts
   * import { startTestNode } from "@nodewire/client/testing";
   * const node = await startTestNode();
   * const restarting = node.start();
   * await node.stop(); // not listening, whatever the start did
   * await restarting;
   * await node.close();
   * ```
   */
  async stop(options: { graceful?: boolean } = {}): Promise<void> {
    const { graceful } = checkOptions<{ graceful?: boolean }>(
      "stop options",
      options,
      { graceful: bool },
    );
    // A start under way would bind after this stop returned, and the node
    // would listen (and keep the process alive) once closed: let it end,
    // then stop what it started.
    if (this.#starting !== undefined) await this.#starting.catch(() => {});
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.close();
    // Held open until the handshake's 10 s limit, and the process with it.
    this.#handshakes?.abort(new Error("the node stopped"));
    for (const session of [...this.#sessions]) {
      if (graceful) session.sayGoodbye(GOODBYE_WINDOW_MS);
      else {
        session.channel.destroy();
        this.#sessions.delete(session);
      }
    }
    if (!graceful) this.#requests.cancel();
    // Gracefully, UDP stays up until the last session holding a token
    // closes, so that answers to datagrams in flight still go out.
    if (graceful) await this.#udp?.release();
    else await this.#udp?.close();
  }

  /** Stops the node for good, dropping every connection. */
  async close(): Promise<void> {
    await this.stop();
  }

  /** `await using node = await startTestNode()` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #serve(channel: ByteChannel): void {
    if (!this.#listener) {
      channel.destroy();
      return;
    }
    const session = new NodeSession(this.#host, channel);
    this.#sessions.add(session);
    this.stats.accepted++;
    this.stats.open++;
    session.attach(channel);
  }

  /** A session's connection closed (once per session). */
  #drop(session: NodeSession): void {
    if (this.#dropped.has(session)) return;
    this.#dropped.add(session);
    this.stats.open--;
    this.#sessions.delete(session);
    // The session's UDP token dies with its TCP connection.
    this.#udp?.revoke(session);
  }
}

/**
 * Starts a reference node and resolves once it listens.
 *
 * @throws {ConfigError} for an unknown option.
 * @throws {InvalidArgumentError} (rejects) naming `options.tls` for a
 *   certificate and key that do not go together, or cannot be read:
 *   started anyway, the node would fail every client's TLS handshake.
 * @example
 * ```ts
 * import { startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode({ port: 0, nodeId: "a" });
 * await node.stop();   // like a crash
 * await node.start();  // back on the same port
 * await node.close();
 * ```
 */
export async function startTestNode(
  options: TestNodeOptions = {},
): Promise<TestNode> {
  const read = readTestNodeOptions(options);
  const adapter = await getAdapter(read.runtime);
  const node = new TestNode(adapter, checked(read));
  await node.start();
  return node;
}
