/**
 * One connection to a reference node, and what the node answers on it:
 * HELLO first, then PING, REQUEST, NEGOTIATE (which may switch the stream
 * to TLS or hand out a UDP token), AUTH_START and AUTH_FINAL, GOODBYE; and
 * the REQUESTs and PINGs the session sends by datagram with its token. A
 * client that breaks the protocol is told why, then dropped.
 *
 * @module
 */

import { FrameWriter } from "../src/connection/frame_writer.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import {
  agreeFeatures,
  decodeHello,
  encodeJson,
  type ProtocolFeature,
  RemoteErrorCode,
} from "../src/protocol/messages.ts";
import {
  decodeNegotiate,
  selectProtocol,
} from "../src/protocol/negotiation.ts";
import type { TimerHandle } from "../src/clock.ts";
import type { ProtocolType } from "../src/protocol_type.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { type AuthHost, SessionAuth } from "./node_auth.ts";
import type { TestNodeOptions } from "./node_options.ts";
import { pushError, type RequestServer } from "./node_requests.ts";
import type { TestNodeStats } from "./node_stats.ts";
import { startTls, type TlsHost } from "./node_tls.ts";
import type { NodeUdp } from "./node_udp.ts";
import type { ReplyWriter } from "./udp_service.ts";

/** What a session uses of its node (a `TestNode`). */
export interface SessionHost extends AuthHost, TlsHost {
  /** The id HELLO_OK gives. */
  nodeId(): string;
  /** The largest payload a message may carry. */
  readonly maxFrameSize: number;
  /** What HELLO_OK and NEGOTIATE_OK advertise, in order of preference. */
  readonly protocols: ProtocolType[];
  /** The features the node agrees to when offered. */
  readonly features: readonly ProtocolFeature[];
  /** The certificate and key, when the node serves TLS. */
  readonly tls: TestNodeOptions["tls"];
  /** Where the session's messages are counted. */
  readonly stats: TestNodeStats;
  /** What answers REQUESTs. */
  readonly requests: RequestServer;
  /** The UDP side, when the node serves UDP. */
  readonly udp: Pick<NodeUdp<NodeSession>, "bound" | "open"> | undefined;
  /** The UDP port NEGOTIATE_OK advertises. */
  udpPort(): number;
  /** Whether `session` is still the node's: not closed, nor stopped. */
  holds(session: NodeSession): boolean;
  /** `session`'s connection closed (once per session). */
  drop(session: NodeSession): void;
}

/** One connection and where it is in the protocol. */
export class NodeSession {
  /** The stream: the accepted one, then its TLS one. */
  channel: ByteChannel;
  /** Frames to the stream. */
  writer: FrameWriter;
  /** Messages from the stream. */
  readonly codec: MessageCodec;
  /** SLEEPs under way: a graceful stop closes the stream after them. */
  inFlight = 0;
  readonly #host: SessionHost;
  // Set by a graceful stop's GOODBYE: the window for the requests the
  // client sent before it read the GOODBYE, then whether it has passed.
  #goodbyeWindow: TimerHandle | undefined;
  #windowOver = false;
  #windowMs = 0;
  /** GOODBYE went out: a stream carries one, however often the node stops. */
  #saidGoodbye = false;
  // REQUESTs wait for it when the node requires authentication.
  readonly #auth: SessionAuth;
  #greeted = false;
  // What HELLO / HELLO_OK agreed.
  #features: readonly ProtocolFeature[] = [];
  #negotiated = false;
  // From NEGOTIATE_OK choosing TLS until the TLS channel takes over: a
  // frame read then came in plaintext behind NEGOTIATE (the same write).
  #switching = false;

  /** A session of `host` on the accepted `channel`; attach reads it. */
  constructor(host: SessionHost, channel: ByteChannel) {
    this.#host = host;
    this.channel = channel;
    this.writer = new FrameWriter(channel);
    this.codec = new MessageCodec(host.maxFrameSize);
    this.#auth = new SessionAuth(this, host);
  }

  /** Whether the node still holds the session. */
  get live(): boolean {
    return this.#host.holds(this);
  }

  /** Reads `channel` for the session: the accepted one, then its TLS one. */
  attach(channel: ByteChannel): void {
    channel.onData((chunk) => {
      try {
        this.codec.decode(chunk, (message) => this.#handle(message));
      } catch (error) {
        // A client that breaks the protocol gets told why, then dropped.
        pushError(this.writer, 0, {
          code: RemoteErrorCode.BadRequest,
          retryable: false,
          error,
        });
        this.writer.flush();
        channel.close();
      }
    });
    channel.onClose(() => this.drop());
  }

  /** Goes on over the TLS channel `secure`, once the switch succeeded. */
  secured(secure: ByteChannel): void {
    this.#switching = false;
    this.channel = secure;
    this.writer = new FrameWriter(secure);
    this.attach(secure);
  }

  /** Tells the node the session's connection closed. */
  drop(): void {
    if (this.#goodbyeWindow !== undefined) {
      this.#host.clock.clearTimeout(this.#goodbyeWindow);
      this.#goodbyeWindow = undefined;
    }
    // A SLEEP still running ends later (closeIfDrained): a window it
    // opened then would outlive the session, and close its stream again.
    this.#windowOver = false;
    this.#host.drop(this);
  }

  /**
   * A graceful stop: GOODBYE, then the stream stays open for the client
   * to close once its replies came (docs/PROTOCOL.md). What it sent before
   * it read the GOODBYE is on its way and is answered: closing at once
   * would lose it, and the client could not tell whether it ran. After
   * `windowMs` (a client that ignores GOODBYE) the stream closes once
   * nothing is in flight. Said once: a second graceful stop, with the
   * session still open, sent the client a second GOODBYE.
   */
  sayGoodbye(windowMs: number): void {
    if (this.#saidGoodbye) return;
    this.#saidGoodbye = true;
    this.writer.push(MessageType.Goodbye, 0, 0, new Uint8Array(0));
    this.writer.flush();
    this.#windowMs = windowMs;
    this.#openWindow();
  }

  #openWindow(): void {
    this.#goodbyeWindow = this.#host.clock.setTimeout(() => {
      this.#goodbyeWindow = undefined;
      this.#windowOver = true;
      this.closeIfDrained(false);
    }, this.#windowMs);
  }

  /**
   * Closes the stream when a graceful stop's window has passed and
   * nothing is in flight (called as each SLEEP ends). `byDatagram`: the
   * last reply went by UDP, and may still be on its way when the stream's
   * close arrives, which would fail its request: the stream gets one more
   * window, for the client to close it once it has the reply.
   */
  closeIfDrained(byDatagram: boolean): void {
    if (!this.#windowOver || this.inFlight !== 0) return;
    if (byDatagram) {
      this.#windowOver = false;
      this.#openWindow();
      return;
    }
    this.writer.flush();
    this.channel.close();
  }

  /** A REQUEST or PING that came as a datagram with the session's token. */
  handleDatagram(message: Message, reply: ReplyWriter): void {
    if (!this.live) return;
    const { type, sequence } = message;
    if (type === MessageType.Ping) {
      this.#host.stats.pings++;
      reply.push(MessageType.Pong, 0, sequence, message.payload);
      return;
    }
    this.#request(sequence, message.payload, reply);
  }

  #handle(message: Message): void {
    // Served, it would be answered in the clear before the TLS handshake
    // (a STARTTLS injection); the client is dropped instead.
    if (this.#switching) {
      throw new Error(
        "a message came in plaintext after NEGOTIATE chose TLS, before the " +
          "TLS handshake",
      );
    }
    const { type, sequence } = message;
    if (!this.#greeted) {
      if (type !== MessageType.Hello) {
        throw new Error("the first message must be HELLO");
      }
      this.#greeted = true;
      // Only what the client offered, so a client from before a feature
      // gets the HELLO_OK it always got.
      const features = agreeFeatures(
        decodeHello(message.payload).features,
        this.#host.features,
      );
      this.#features = features;
      this.writer.push(
        MessageType.HelloOk,
        0,
        sequence,
        encodeJson({
          nodeId: this.#host.nodeId(),
          maxFrameSize: this.#host.maxFrameSize,
          auth: this.#host.users() ? "scram-sha-256" : "none",
          protocols: this.#host.protocols,
          ...(features.length > 0 ? { features } : {}),
        }),
      );
      return;
    }
    switch (type) {
      case MessageType.Ping:
        this.#host.stats.pings++;
        this.writer.push(MessageType.Pong, 0, sequence, message.payload);
        return;
      case MessageType.Request:
        this.#request(sequence, message.payload);
        return;
      case MessageType.Negotiate:
        this.#negotiate(sequence, message.payload);
        return;
      case MessageType.AuthStart:
      case MessageType.AuthFinal:
        this.#auth.handle(message);
        return;
      case MessageType.Goodbye:
        this.channel.close();
        return;
      case MessageType.Hello:
        throw new Error("HELLO comes once, as the first message");
      default:
        // A type only a node sends: a protocol violation, which ends the
        // session as every other does (docs/PROTOCOL.md).
        throw new Error(
          `unexpected message type 0x${type.toString(16)} from a client`,
        );
    }
  }

  #negotiate(sequence: number, payload: Uint8Array): void {
    if (this.#negotiated || this.#auth.started) {
      throw new Error("NEGOTIATE comes at most once, before authentication");
    }
    this.#negotiated = true;
    this.#host.stats.negotiations++;
    const offer = decodeNegotiate(payload).protocols;
    const protocols = this.#host.protocols;
    const selected = selectProtocol(offer, protocols) ?? null;
    // The token admits this session's datagrams; it is tied to this TCP
    // connection (and its authentication, which follows) until it closes.
    const udp = this.#host.udp;
    const udpToken = selected === "udp" && udp?.bound
      ? udp.open(
        this,
        this.channel.remoteAddress?.hostname,
        this.#features.includes("udp-batch"),
      )
      : undefined;
    this.writer.push(
      MessageType.NegotiateOk,
      0,
      sequence,
      encodeJson({
        protocols,
        selected,
        ...(protocols.includes("udp") ? { udpPort: this.#host.udpPort() } : {}),
        ...(udpToken === undefined ? {} : { udpToken }),
      }),
    );
    const tls = this.#host.tls;
    if (selected === "tls" && tls && !tls.direct && this.channel.acceptTls) {
      this.#switching = true;
      startTls(this, tls, this.#host);
    }
  }

  #request(
    sequence: number,
    payload: Uint8Array,
    out: ReplyWriter = this.writer,
  ): void {
    // One gate for both transports: a request, by TCP or by datagram, is
    // served only once its session has authenticated.
    if (this.#host.users() && !this.#auth.done) {
      return this.#host.requests.sendError(
        sequence,
        RemoteErrorCode.AuthRequired,
        false,
        "authentication required",
        out,
      );
    }
    this.#host.requests.serve(this, sequence, payload, out);
  }
}
