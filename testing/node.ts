/**
 * A real reference node: a server that speaks the wire protocol over the
 * same runtime adapters as the client, on Deno, Bun and Node. Tests,
 * benchmarks and the demo run clusters of these on loopback.
 *
 * @module
 */

import { type Clock, systemClock, type TimerHandle } from "../src/clock.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  MAX_FRAME_SIZE_LIMIT,
  MIN_FRAME_SIZE,
} from "../src/protocol/frame.ts";
import { AuthenticationError, formatAddress } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { FrameWriter } from "../src/connection/frame_writer.ts";
import {
  agreeFeatures,
  decodeHello,
  decodeJson,
  encodeError,
  encodeJson,
  type ProtocolFeature,
  RemoteErrorCode,
} from "../src/protocol/messages.ts";
import {
  decodeNegotiate,
  selectProtocol,
  sortProtocols,
} from "../src/protocol/negotiation.ts";
import type { ProtocolType } from "../src/protocol_type.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type {
  ByteChannel,
  Listener,
  RuntimeAdapter,
  RuntimeName,
} from "../src/runtime/types.ts";
import { SCRAM_SHA_256 } from "../src/auth/scram.ts";
import { CredentialStore, isStore, readUsers, ScramServer } from "./auth.ts";
import { encodeReply, Op } from "./ops.ts";
import { bool, integer, is, text } from "../src/config/options.ts";
import {
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
} from "../src/protocol/datagram.ts";
import { isProtocolType } from "../src/protocol_type.ts";
import {
  checked,
  checkOptions,
  clock,
  count,
  nodeId,
  type OptionNames,
  port,
  refuseUnchecked,
  runtime,
} from "./options.ts";
import {
  type ReplyWriter,
  UdpService,
  type UdpServiceStats,
} from "./udp_service.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options for {@linkcode startTestNode}. */
export interface TestNodeOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Address to bind. Default `127.0.0.1`. */
  hostname?: string;
  /** The node's id, echoed in every reply. Default `node-<port>`. */
  nodeId?: string;
  /** Adapter to listen with. Default: the runtime's native one. */
  runtime?: RuntimeName | RuntimeAdapter;
  /** Largest payload accepted: 1024 bytes to 1 GiB. Default 16 MiB. */
  maxFrameSize?: number;
  /** Clock for SLEEP. Default the system clock. */
  clock?: Clock;
  /**
   * Require SCRAM-SHA-256 authentication against these users (name to
   * password, or a prepared store). Until a connection authenticated, its
   * requests get ERROR 6 (AuthRequired). Default: no authentication.
   */
  credentials?: Record<string, string> | CredentialStore;
  /**
   * The transport protocols the node advertises in HELLO_OK and
   * NEGOTIATE_OK. Default `["tcp"]`. Advertising one the node does not
   * serve is for negotiation tests only.
   */
  protocols?: ProtocolType[];
  /**
   * The UDP port, when `protocols` lists udp: the node serves UDP there
   * (0 picks a free one) if its adapter can open datagram sockets, and
   * advertises it in NEGOTIATE_OK. Default: the TCP port's number, or a
   * free port when that one is taken.
   */
  udpPort?: number;
  /** Throw away every Nth valid UDP datagram received, to simulate loss. */
  udpDropEvery?: number;
  /** Largest UDP reply datagram, in bytes. Default 65507. */
  udpMaxDatagramSize?: number;
  /**
   * Whether the node supports `"udp-batch"` (several frames per datagram)
   * and agrees to it when a client offers it in HELLO. Default true; false
   * plays a node from before the feature: HELLO_OK carries no `features`.
   */
  udpBatch?: boolean;
  /**
   * Serve TLS with this certificate and key (PEM). When `protocols` lists
   * tls and negotiation selects it, the node answers NEGOTIATE_OK and
   * then runs the server side of the TLS handshake on the same stream;
   * with `direct`, every connection is TLS from the first byte. The key
   * is never logged. Default: no TLS (advertising tls anyway is for
   * negotiation tests only).
   */
  tls?: { cert: string; key: string; direct?: boolean };
}

const TEST_NODE_OPTIONS: OptionNames<TestNodeOptions> = {
  port,
  hostname: text,
  nodeId,
  runtime,
  maxFrameSize: integer(MIN_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT),
  clock,
  // Read by readUsers, once, into the copy the node keeps.
  credentials: true,
  protocols: is(
    (v) => Array.isArray(v) && v.every(isProtocolType),
    'expected an array of "tls", "tcp" and "udp"',
  ),
  udpPort: port,
  udpDropEvery: count,
  udpMaxDatagramSize: integer(MIN_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE),
  udpBatch: bool,
  tls: true,
};
const TLS_OPTIONS: OptionNames<NonNullable<TestNodeOptions["tls"]>> = {
  cert: text,
  key: text,
  direct: bool,
};

/** Counters of a reference node. */
export interface TestNodeStats {
  /** Connections accepted since start. */
  accepted: number;
  /** Connections open now. */
  open: number;
  /** Requests answered (results and errors). */
  requests: number;
  /** Pings answered. */
  pings: number;
  /** NEGOTIATE messages answered. */
  negotiations: number;
  /** SCRAM exchanges started (AUTH_START received). */
  authAttempts: number;
  /** SCRAM exchanges that succeeded. */
  authSuccesses: number;
  /** SCRAM exchanges that failed. */
  authFailures: number;
  /** TLS handshakes completed (upgrades and direct connections). */
  tlsHandshakes: number;
  /** TLS upgrades that failed (the client refused the certificate, say). */
  tlsFailures: number;
}

interface Session {
  channel: ByteChannel;
  writer: FrameWriter;
  codec: MessageCodec;
  greeted: boolean;
  // What HELLO / HELLO_OK agreed.
  features: readonly ProtocolFeature[];
  inFlight: number;
  negotiated: boolean;
  // SCRAM progress: "challenging" and "finishing" wait on crypto.
  auth: "none" | "challenging" | "challenged" | "finishing" | "done";
  scram: ScramServer | undefined;
}

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
  readonly #maxFrameSize: number;
  readonly #clock: Clock;
  #nodeId: string | undefined;
  #nodeIdBytes = new Uint8Array(0);
  readonly #store = new Map<string, Uint8Array>();
  readonly #sessions = new Set<Session>();
  readonly #timers = new Set<TimerHandle>();
  #listener: Listener | undefined;
  readonly #credentials: Record<string, string> | CredentialStore | undefined;
  #users: CredentialStore | undefined;
  readonly #protocols: ProtocolType[];
  #udpPort: number | undefined;
  readonly #udp: UdpService<Session> | undefined;
  // Set by a graceful stop: UDP closes once no session holds a token.
  #udpDraining = false;
  readonly #tls: { cert: string; key: string; direct?: boolean } | undefined;
  readonly #features: readonly ProtocolFeature[];
  readonly #dropped = new WeakSet<Session>();

  /** @internal Use {@linkcode startTestNode}. */
  constructor(
    adapter: RuntimeAdapter,
    options: TestNodeOptions,
  ) {
    refuseUnchecked(options, "new TestNode", "startTestNode(options)");
    this.#adapter = adapter;
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    this.#maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.#clock = options.clock ?? systemClock;
    this.#nodeId = options.nodeId;
    this.#credentials = options.credentials;
    this.#protocols = sortProtocols(options.protocols ?? ["tcp"]);
    this.#udpPort = options.udpPort;
    this.#tls = options.tls;
    this.#features = options.udpBatch === false ? [] : ["udp-batch"];
    if (this.#protocols.includes("udp") && adapter.datagram) {
      this.#udp = new UdpService<Session>({
        adapter,
        dropEvery: options.udpDropEvery,
        maxDatagramSize: options.udpMaxDatagramSize,
        onMessage: (session, message, reply) =>
          this.#handleDatagram(session, message, reply),
      });
    }
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

  async #start(): Promise<void> {
    if (this.#credentials !== undefined && this.#users === undefined) {
      this.#users = this.#credentials instanceof CredentialStore
        ? this.#credentials
        : await CredentialStore.create(this.#credentials);
    }
    // UDP first when its port is known (given, or bound by an earlier
    // start): a client reconnecting the moment the stream listens again
    // must find UDP up, or it would be offered UDP without a token.
    if (this.#udp && this.#udpPort !== undefined) await this.#startUdp();
    const direct = this.#tls?.direct
      ? { cert: this.#tls.cert, key: this.#tls.key }
      : undefined;
    this.#listener = await this.#adapter.listen(
      { hostname: this.#hostname, port: this.#port, tls: direct },
      (channel) => {
        if (direct) this.stats.tlsHandshakes++;
        this.#serve(channel);
      },
    );
    this.#port = this.#listener.port;
    this.#nodeIdBytes = encoder.encode(this.nodeId);
    // Otherwise on the TCP port's number, known only now.
    if (this.#udp && !this.#udp.bound) await this.#startUdp();
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

  async #startUdp(): Promise<void> {
    const udp = this.#udp!;
    this.#udpDraining = false;
    if (udp.bound) return;
    try {
      await udp.bind(this.#hostname, this.#udpPort ?? this.#port);
    } catch (error) {
      if (this.#udpPort !== undefined) {
        await this.stop();
        throw error;
      }
      // The TCP port's number is only a default; any free port will do.
      await udp.bind(this.#hostname, 0);
    }
    // A restart binds the same UDP port again.
    this.#udpPort = udp.port;
  }

  /**
   * Stops listening. By default open connections are dropped at once, like
   * a crash; with `graceful` the node says GOODBYE, finishes what is in
   * flight and then closes them.
   */
  async stop(options: { graceful?: boolean } = {}): Promise<void> {
    const { graceful } = checkOptions<{ graceful?: boolean }>(
      "stop options",
      options,
      { graceful: bool },
    );
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.close();
    for (const session of [...this.#sessions]) {
      if (graceful) {
        session.writer.push(MessageType.Goodbye, 0, 0, new Uint8Array(0));
        session.writer.flush();
        if (session.inFlight === 0) session.channel.close();
      } else {
        session.channel.destroy();
        this.#sessions.delete(session);
      }
    }
    if (!graceful) {
      for (const t of this.#timers) this.#clock.clearTimeout(t);
      this.#timers.clear();
    }
    // Gracefully, UDP stays up until the last session holding a token
    // closes, so that answers to datagrams in flight still go out.
    if (graceful && this.udpSessions > 0) this.#udpDraining = true;
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
    const session: Session = {
      channel,
      writer: new FrameWriter(channel),
      codec: new MessageCodec(this.#maxFrameSize),
      greeted: false,
      features: [],
      inFlight: 0,
      negotiated: false,
      auth: "none",
      scram: undefined,
    };
    this.#sessions.add(session);
    this.stats.accepted++;
    this.stats.open++;
    this.#attach(session, channel);
  }

  /** Reads `channel` for `session`: the accepted one, then its TLS one. */
  #attach(session: Session, channel: ByteChannel): void {
    channel.onData((chunk) => {
      try {
        session.codec.decode(
          chunk,
          (message) => this.#handle(session, message),
        );
      } catch (error) {
        // A client that breaks the protocol gets told why, then dropped.
        this.#sendError(session, 0, RemoteErrorCode.BadRequest, false, error);
        session.writer.flush();
        channel.close();
      }
    });
    channel.onClose(() => this.#drop(session));
  }

  /**
   * Runs the server side of TLS on the session's stream, right after
   * NEGOTIATE_OK chose it; the client sends its ClientHello next.
   */
  #startTls(session: Session, tls: { cert: string; key: string }): void {
    const plain = session.channel;
    plain.pause?.();
    session.writer.flush();
    const controller = new AbortController();
    // A client that never finishes the handshake must not hold the socket.
    const timer = this.#clock.setTimeout(
      () => controller.abort(new Error("TLS handshake timed out")),
      10_000,
    );
    plain.acceptTls!({
      cert: tls.cert,
      key: tls.key,
      signal: controller.signal,
    })
      .then((secure) => {
        this.#clock.clearTimeout(timer);
        if (!this.#sessions.has(session) || session.codec.bufferedBytes > 0) {
          // Stopped meanwhile, or plaintext smuggled in before the switch.
          secure.destroy();
          this.#drop(session);
          return;
        }
        this.stats.tlsHandshakes++;
        session.channel = secure;
        session.writer = new FrameWriter(secure);
        this.#attach(session, secure);
      }, () => {
        this.#clock.clearTimeout(timer);
        // The adapter closed the socket; its close no longer reaches us.
        this.stats.tlsFailures++;
        this.#drop(session);
      });
  }

  /** A session's connection closed (once per session). */
  #drop(session: Session): void {
    if (this.#dropped.has(session)) return;
    this.#dropped.add(session);
    this.stats.open--;
    this.#sessions.delete(session);
    // The session's UDP token dies with its TCP connection.
    this.#udp?.revoke(session);
    if (this.#udpDraining && this.udpSessions === 0) {
      this.#udpDraining = false;
      void this.#udp?.close();
    }
  }

  #handle(session: Session, message: Message): void {
    const { type, sequence } = message;
    if (!session.greeted) {
      if (type !== MessageType.Hello) {
        throw new Error("the first message must be HELLO");
      }
      session.greeted = true;
      // Only what the client offered, so a client from before a feature
      // gets the HELLO_OK it always got.
      const features = agreeFeatures(
        decodeHello(message.payload).features,
        this.#features,
      );
      session.features = features;
      session.writer.push(
        MessageType.HelloOk,
        0,
        sequence,
        encodeJson({
          nodeId: this.nodeId,
          maxFrameSize: this.#maxFrameSize,
          auth: this.#users ? "scram-sha-256" : "none",
          protocols: this.#protocols,
          ...(features.length > 0 ? { features } : {}),
        }),
      );
      return;
    }
    switch (type) {
      case MessageType.Ping:
        this.stats.pings++;
        session.writer.push(MessageType.Pong, 0, sequence, message.payload);
        return;
      case MessageType.Request:
        this.#request(session, sequence, message.payload);
        return;
      case MessageType.Negotiate:
        this.#negotiate(session, sequence, message.payload);
        return;
      case MessageType.AuthStart:
      case MessageType.AuthFinal:
        this.#authenticate(session, message);
        return;
      case MessageType.Goodbye:
        session.channel.close();
        return;
      default:
        this.#sendError(
          session,
          sequence,
          RemoteErrorCode.BadRequest,
          false,
          `unexpected message type 0x${type.toString(16)}`,
        );
    }
  }

  #negotiate(session: Session, sequence: number, payload: Uint8Array): void {
    if (session.negotiated || session.auth !== "none") {
      throw new Error("NEGOTIATE comes at most once, before authentication");
    }
    session.negotiated = true;
    this.stats.negotiations++;
    const offer = decodeNegotiate(payload).protocols;
    const protocols = this.#protocols;
    const selected = selectProtocol(offer, protocols) ?? null;
    // The token admits this session's datagrams; it is tied to this TCP
    // connection (and its authentication, which follows) until it closes.
    const udpToken = selected === "udp" && this.#udp?.bound
      ? this.#udp.open(
        session,
        session.channel.remoteAddress?.hostname,
        session.features.includes("udp-batch"),
      )
      : undefined;
    session.writer.push(
      MessageType.NegotiateOk,
      0,
      sequence,
      encodeJson({
        protocols,
        selected,
        ...(protocols.includes("udp")
          ? { udpPort: this.#udp?.port ?? this.#udpPort ?? this.#port }
          : {}),
        ...(udpToken === undefined ? {} : { udpToken }),
      }),
    );
    if (
      selected === "tls" && this.#tls && !this.#tls.direct &&
      session.channel.acceptTls
    ) {
      this.#startTls(session, this.#tls);
    }
  }

  /** A REQUEST or PING that came as a datagram with `session`'s token. */
  #handleDatagram(
    session: Session,
    message: Message,
    reply: ReplyWriter,
  ): void {
    if (!this.#sessions.has(session)) return;
    const { type, sequence } = message;
    if (type === MessageType.Ping) {
      this.stats.pings++;
      reply.push(MessageType.Pong, 0, sequence, message.payload);
      return;
    }
    this.#request(session, sequence, message.payload, reply);
  }

  #authenticate(session: Session, message: Message): void {
    const store = this.#users;
    if (store === undefined) {
      return this.#closeWithError(
        session,
        RemoteErrorCode.Unsupported,
        "this node does not authenticate",
      );
    }
    const body = decodeJson(message.payload, "AUTH");
    const text = typeof body.message === "string" ? body.message : undefined;
    let step: Promise<void>;
    if (message.type === MessageType.AuthStart) {
      if (session.auth !== "none") {
        throw new Error("AUTH_START comes once per connection");
      }
      this.stats.authAttempts++;
      if (body.mechanism !== SCRAM_SHA_256) {
        return this.#authFailed(
          session,
          `unsupported mechanism ${String(body.mechanism)}`,
        );
      }
      const scram = new ScramServer(store);
      session.scram = scram;
      session.auth = "challenging";
      step = scram.serverFirstMessage(text ?? "").then((serverFirst) => {
        session.auth = "challenged";
        this.#pushJson(session, MessageType.AuthChallenge, message.sequence, {
          message: serverFirst,
        });
      });
    } else {
      if (session.auth !== "challenged") {
        throw new Error("AUTH_FINAL before AUTH_CHALLENGE");
      }
      session.auth = "finishing";
      step = session.scram!.serverFinalMessage(text ?? "").then(
        (serverFinal) => {
          session.auth = "done";
          session.scram = undefined;
          this.stats.authSuccesses++;
          this.#pushJson(session, MessageType.AuthOk, message.sequence, {
            message: serverFinal,
          });
        },
      );
    }
    step.catch((error) =>
      this.#authFailed(
        session,
        error instanceof AuthenticationError
          ? "authentication failed"
          : String(error),
      )
    );
  }

  #authFailed(session: Session, reason: string): void {
    this.stats.authFailures++;
    session.auth = "none";
    session.scram = undefined;
    // The whole connection is refused: sequence 0, then close.
    this.#closeWithError(session, RemoteErrorCode.AuthFailed, reason);
  }

  #pushJson(
    session: Session,
    type: number,
    sequence: number,
    value: object,
  ): void {
    if (!this.#sessions.has(session)) return;
    session.writer.push(type, 0, sequence, encodeJson(value));
  }

  #closeWithError(session: Session, code: number, message: string): void {
    if (!this.#sessions.has(session)) return;
    session.writer.push(
      MessageType.Error,
      0,
      0,
      encodeError({ code, retryable: false, message }),
    );
    session.writer.flush();
    session.channel.close();
  }

  #request(
    session: Session,
    sequence: number,
    payload: Uint8Array,
    out: ReplyWriter = session.writer,
  ): void {
    // One gate for both transports: a request, by TCP or by datagram, is
    // served only once its session has authenticated.
    if (this.#users && session.auth !== "done") {
      return this.#sendError(
        session,
        sequence,
        RemoteErrorCode.AuthRequired,
        false,
        "authentication required",
        out,
      );
    }
    const op = payload[0];
    const args = payload.subarray(1);
    switch (op) {
      case Op.Echo:
        return this.#reply(session, sequence, args, out);
      case Op.Get: {
        const value = this.#store.get(decoder.decode(args));
        if (value === undefined) {
          return this.#sendError(
            session,
            sequence,
            RemoteErrorCode.NotFound,
            false,
            "key not found",
            out,
          );
        }
        return this.#reply(session, sequence, value, out);
      }
      case Op.Put: {
        if (args.byteLength < 2) break;
        const keyLength = (args[0] << 8) | args[1];
        if (args.byteLength < 2 + keyLength) break;
        const key = decoder.decode(args.subarray(2, 2 + keyLength));
        // Copy: the payload is a view into a socket chunk.
        this.#store.set(key, args.slice(2 + keyLength));
        return this.#reply(session, sequence, new Uint8Array(0), out);
      }
      case Op.Delete: {
        const existed = this.#store.delete(decoder.decode(args));
        return this.#reply(
          session,
          sequence,
          new Uint8Array([existed ? 1 : 0]),
          out,
        );
      }
      case Op.Sleep: {
        if (args.byteLength < 4) break;
        const ms = new DataView(args.buffer, args.byteOffset, 4).getUint32(0);
        const data = args.slice(4);
        session.inFlight++;
        const timer = this.#clock.setTimeout(() => {
          this.#timers.delete(timer);
          session.inFlight--;
          this.#reply(session, sequence, data, out);
          // Over UDP the reply may still be on its way when the stream's
          // FIN arrives: the client, told GOODBYE, closes once it has it.
          if (
            !this.#listener && session.inFlight === 0 && out === session.writer
          ) {
            session.writer.flush();
            session.channel.close();
          }
        }, ms);
        this.#timers.add(timer);
        return;
      }
      case Op.Fail: {
        if (args.byteLength < 3) break;
        return this.#sendError(
          session,
          sequence,
          (args[0] << 8) | args[1],
          args[2] === 1,
          decoder.decode(args.subarray(3)),
          out,
        );
      }
    }
    this.#sendError(
      session,
      sequence,
      RemoteErrorCode.BadRequest,
      false,
      `malformed or unknown operation 0x${(op ?? 0).toString(16)}`,
      out,
    );
  }

  #reply(
    session: Session,
    sequence: number,
    data: Uint8Array,
    out: ReplyWriter = session.writer,
  ): void {
    this.stats.requests++;
    out.push(
      MessageType.Response,
      0,
      sequence,
      encodeReply(this.#nodeIdBytes, data),
    );
  }

  #sendError(
    session: Session,
    sequence: number,
    code: number,
    retryable: boolean,
    error: unknown,
    out: ReplyWriter = session.writer,
  ): void {
    this.stats.requests++;
    const message = error instanceof Error ? error.message : String(error);
    out.push(
      MessageType.Error,
      0,
      sequence,
      encodeError({ code, retryable, message }),
    );
  }
}

/**
 * Starts a reference node and resolves once it listens.
 *
 * @throws {ConfigError} for an unknown option.
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
  const read = checkOptions<TestNodeOptions>(
    "startTestNode options",
    options,
    TEST_NODE_OPTIONS,
  );
  // A revoked proxy is no store: readUsers says it could not be read.
  if (read.credentials !== undefined && !isStore(read.credentials)) {
    read.credentials = Object.fromEntries(readUsers(
      read.credentials,
      "startTestNode options.credentials",
      "expected user names to passwords or a CredentialStore",
    ));
  }
  if (read.tls !== undefined) {
    // Without both, every TLS handshake failed, far from the option.
    read.tls = checkOptions(
      "startTestNode options.tls",
      read.tls,
      TLS_OPTIONS,
      {
        needs: ["cert", "key"],
      },
    );
  }
  const adapter = await getAdapter(read.runtime);
  const node = new TestNode(adapter, checked(read));
  await node.start();
  return node;
}
