/**
 * The client side of UDP (docs/PROTOCOL.md, "UDP"). When negotiation
 * chooses `"udp"`, {@linkcode udpTransport}'s upgrade opens a datagram
 * socket and routes the connection's requests and pings over it, each
 * datagram led by the session token from NEGOTIATE_OK, replies matched by
 * sequence number like on the stream. When HELLO_OK agreed `"udp-batch"`,
 * the frames submitted in one microtask go out together, as few datagrams
 * as fit `maxDatagramSize`, and a datagram received may carry several
 * replies; otherwise it is one frame per datagram. The TCP
 * connection stays open as the control channel: it carries the handshake
 * and authentication, GOODBYE, and its life is the session's life (the
 * node forgets the token when it closes).
 *
 * Nothing is retransmitted here. A lost request or reply surfaces as the
 * request's `RequestTimeoutError`, which the client retries by its retry
 * policy only for idempotent requests, since the request may have run.
 *
 * @module
 */

import type { Connection } from "../connection/connection.ts";
import type { RequestRoute } from "../connection/types.ts";
import { integer, methods, readOptions } from "../config/options.ts";
import {
  ConnectionError,
  ConnectionLostError,
  DatagramTooLargeError,
  NodewireError,
  ProtocolError,
} from "../errors.ts";
import { foreignText, textOf } from "../errors/base.ts";
import { closeQuietly, openDatagram } from "./udp_channel.ts";
import type { TransportUpgrade } from "./shapes.ts";
import {
  DATAGRAM_OVERHEAD,
  decodeDatagram,
  decodeDatagramFrames,
  DEFAULT_MAX_DATAGRAM_SIZE,
  encodeDatagramUnchecked,
  hasTokenUnchecked,
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
  parseUdpToken,
} from "../protocol/datagram.ts";
import { FramePacker } from "../protocol/datagram_packer.ts";
import type { Message } from "../protocol/frame.ts";
import {
  anyAddressFor,
  type DatagramChannel,
  unmapIPv4,
} from "../runtime/datagram.ts";
import { isIpLiteral } from "../runtime/tls.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";

/**
 * Counters of one connection's UDP route.
 *
 * @example
 * ```ts
 * import type { UdpStats } from "@nodewire/client/core";
 * const lost = (s: UdpStats) => s.sent - s.received;
 * ```
 */
export interface UdpStats {
  /** `host:port` the datagrams go to (the node's IP and UDP port). */
  address: string;
  /** The local port of the connection's UDP socket. */
  localPort: number;
  /**
   * Whether the node agreed `"udp-batch"` in HELLO_OK: several frames per
   * datagram, both ways.
   */
  batching: boolean;
  /** Frames (requests and pings) sent. */
  sent: number;
  /** Frames (replies) received with this session's token, valid. */
  received: number;
  /** Datagrams sent; fewer than `sent` when frames shared datagrams. */
  datagramsSent: number;
  /** Datagrams received with this session's token, valid. */
  datagramsReceived: number;
  /**
   * Dropped unread: datagrams not from the node's address and UDP port,
   * without the token or malformed (dropped whole), and frames of a type
   * a node may not send or that break the protocol on their own (a reply
   * of the wrong kind for its request, an ERROR that does not decode),
   * each on its own.
   */
  rejected: number;
}

/**
 * Options for {@linkcode udpTransport}.
 *
 * @example
 * ```ts
 * import type { UdpTransportOptions } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const options: UdpTransportOptions = { adapter: await getAdapter(), maxDatagramSize: 1400 };
 * ```
 */
export interface UdpTransportOptions {
  /** The adapter whose `datagram()` opens the sockets. */
  adapter: RuntimeAdapter;
  /**
   * The largest datagram sent, in bytes, token and header included.
   * Default 1200 (1168 bytes of payload); at most 65 507.
   */
  maxDatagramSize?: number;
}

const stats = new WeakMap<Connection, UdpStats>();

/**
 * The UDP counters of a connection whose requests go over UDP, else
 * `undefined`.
 *
 * @example
 * ```ts
 * import { type Connection, udpStats } from "@nodewire/client/core";
 * declare const connection: Connection;
 * console.log(udpStats(connection)?.sent);
 * ```
 */
export function udpStats(connection: Connection): UdpStats | undefined {
  return stats.get(connection);
}

/**
 * The UDP transport for {@linkcode createHandshake}, or `undefined` when
 * the adapter cannot open datagram sockets (then the client never offers
 * UDP). The upgrade sends datagrams to the node's `udpPort` at the IP
 * address the TCP connection reached, not to the configured host name: a
 * name could resolve to another machine, and would be resolved again for
 * every datagram. A channel that does not report that address (a custom
 * adapter's) needs a node configured by IP address; for a name the upgrade
 * fails with a ConnectionError saying so.
 *
 * @example
 * ```ts
 * import { Connection, createHandshake, udpTransport } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const adapter = await getAdapter();
 * const connection = await Connection.connect({
 *   adapter,
 *   hostname: "127.0.0.1",
 *   port: 7000,
 *   handshake: createHandshake({ protocols: ["udp"], transports: { udp: udpTransport({ adapter }) } }),
 * });
 * await connection.sendRequest(new Uint8Array([1, 104, 105]), { idempotent: true });
 * ```
 */
export function udpTransport(
  options: UdpTransportOptions,
): TransportUpgrade | undefined {
  // Read once and checked: a missing adapter was a raw TypeError.
  const { adapter, maxDatagramSize = DEFAULT_MAX_DATAGRAM_SIZE } = readOptions<
    UdpTransportOptions
  >("udpTransport", options, {
    adapter: methods("connect"),
    maxDatagramSize: integer(MIN_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE),
  }, ["adapter"]);
  if (typeof adapter.datagram !== "function") return undefined;
  return async (connection, negotiated, signal) => {
    const port = negotiated.udpPort;
    if (port === undefined) {
      throw new ProtocolError("NEGOTIATE_OK chose udp but gave no udpPort");
    }
    if (negotiated.udpToken === undefined) {
      throw new ProtocolError("NEGOTIATE_OK chose udp but gave no udpToken");
    }
    const token = parseUdpToken(negotiated.udpToken);
    const ip = unmapIPv4(reportedIp(connection) ?? ipOf(connection));
    signal.throwIfAborted();
    const channel = await openDatagram(
      adapter,
      bindAddressFor(ip),
      connection,
    );
    if (signal.aborted) {
      closeQuietly(channel);
      throw signal.reason;
    }
    let route: UdpRoute;
    try {
      route = new UdpRoute(connection, channel, {
        ip,
        port,
        token,
        maxDatagramSize,
        batching: connection.hello?.features?.includes("udp-batch") ?? false,
      });
    } catch (cause) {
      closeQuietly(channel);
      if (cause instanceof NodewireError) throw cause;
      // A custom channel whose port, onMessage or onClose threw.
      throw new ConnectionError(
        "CONNECTION_FAILED",
        `UDP to ${connection.address} failed: the runtime adapter's ` +
          `datagram channel threw: ${foreignText(cause)}`,
        connection,
        { cause, retryable: false },
      );
    }
    stats.set(connection, route.stats);
  };
}

/**
 * The node's IP address as the connection's channel reports it, if it
 * does. `Connection.remoteAddress` reads what a custom channel cannot say
 * as undefined; what is handed in as the connection (a subclass, a
 * wrapper) may still throw or give no text hostname: refused saying so,
 * not a raw error or a TypeError from the address checks.
 */
function reportedIp(connection: Connection): string | undefined {
  let hostname: unknown;
  try {
    hostname = connection.remoteAddress?.hostname;
  } catch (cause) {
    throw badRemoteAddress(connection, "could not be read", cause);
  }
  if (hostname === undefined || hostname === null) return undefined;
  if (typeof hostname !== "string" || hostname === "") {
    throw badRemoteAddress(
      connection,
      `has a hostname that is no IP address text (${textOf(hostname)})`,
    );
  }
  return hostname;
}

/** The refusal of a channel's remoteAddress that is not as promised. */
function badRemoteAddress(
  connection: Connection,
  wrong: string,
  cause?: unknown,
): ConnectionError {
  return new ConnectionError(
    "CONNECTION_FAILED",
    `UDP to ${connection.address} needs the node's IP address, and the ` +
      `runtime adapter's channel's remoteAddress ${wrong}`,
    connection,
    { cause, retryable: false },
  );
}

/**
 * The node's IP address when the channel does not say it (a custom
 * adapter's): the configured host, if it is one. A name would do for
 * sending, but not for telling the node's replies by where they come
 * from: every reply would be dropped and every request time out.
 */
function ipOf(connection: Connection): string {
  if (isIpLiteral(connection.hostname)) return connection.hostname;
  throw new ConnectionError(
    "CONNECTION_FAILED",
    `UDP to ${connection.address} needs the node's IP address, and this ` +
      "adapter's channel gives no remoteAddress: configure the node by its " +
      "IP address",
    connection,
    { retryable: false },
  );
}

/**
 * The local address for a socket talking to `ip`: loopback stays on
 * loopback, anything else binds every interface of the family.
 */
function bindAddressFor(ip: string): string {
  if (ip.startsWith("127.")) return "127.0.0.1";
  if (ip === "::1") return "::1";
  return anyAddressFor(ip);
}

/** A connection's requests over one datagram socket. */
class UdpRoute implements RequestRoute {
  readonly maxPayload: number;
  readonly stats: UdpStats;
  readonly #channel: DatagramChannel;
  readonly #connection: Connection;
  readonly #deliver: (message: Message) => boolean;
  readonly #ip: string;
  readonly #port: number;
  readonly #token: Uint8Array;
  readonly #maxDatagramSize: number;
  // Set when the session agreed "udp-batch": frames wait here for the
  // microtask that sends them.
  readonly #packer: FramePacker | undefined;
  #scheduled = false;
  #closed = false;

  constructor(
    connection: Connection,
    channel: DatagramChannel,
    options: {
      ip: string;
      port: number;
      token: Uint8Array;
      maxDatagramSize: number;
      batching: boolean;
    },
  ) {
    this.#connection = connection;
    this.#channel = channel;
    this.#ip = options.ip;
    this.#port = options.port;
    this.#token = options.token;
    this.#maxDatagramSize = options.maxDatagramSize;
    this.maxPayload = options.maxDatagramSize - DATAGRAM_OVERHEAD;
    if (options.batching) {
      this.#packer = new FramePacker(
        options.token,
        options.maxDatagramSize,
        this.#sendDatagram,
      );
    }
    this.stats = {
      address: options.ip.includes(":")
        ? `[${options.ip}]:${options.port}`
        : `${options.ip}:${options.port}`,
      localPort: channel.port,
      batching: options.batching,
      sent: 0,
      received: 0,
      datagramsSent: 0,
      datagramsReceived: 0,
      rejected: 0,
    };
    channel.onMessage(
      options.batching ? this.#onBatchDatagram : this.#onDatagram,
    );
    channel.onClose(this.#onChannelClose);
    // Last: a connection already closed closes this route at once.
    this.#deliver = connection.routeRequests(this);
  }

  tooLarge(length: number): Error {
    return new DatagramTooLargeError(
      this.stats.address,
      length,
      this.#maxDatagramSize,
      this.maxPayload,
    );
  }

  send(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    this.stats.sent++;
    const packer = this.#packer;
    if (packer === undefined) {
      this.#sendDatagram(
        encodeDatagramUnchecked(this.#token, type, flags, sequence, payload),
      );
      return;
    }
    // The connection checked the payload against maxPayload: the frame
    // fits a datagram on its own.
    packer.push(type, flags, sequence, payload);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  withdraw(sequence: number): boolean {
    if (this.#packer?.withdraw(sequence) !== true) return false;
    this.stats.sent--;
    return true;
  }

  close(): ReadonlySet<number> | undefined {
    if (this.#closed) return;
    this.#closed = true;
    // The datagram being built never goes out: its requests were not sent.
    const unsent = this.#packer?.discard();
    closeQuietly(this.#channel);
    return unsent;
  }

  #flush = (): void => {
    this.#scheduled = false;
    this.#packer!.flush();
  };

  #sendDatagram = (datagram: Uint8Array): void => {
    this.stats.datagramsSent++;
    try {
      this.#channel.send(datagram, this.#ip, this.#port);
    } catch (error) {
      // A custom channel's send that throws: no request can travel.
      this.#connection.destroy(
        new ConnectionLostError(
          this.#connection,
          `its UDP socket failed to send: ${foreignText(error)}`,
          { cause: error },
        ),
      );
    }
  };

  /**
   * Whether a datagram is the node's: from where ours go, with the token.
   * Anyone can send to this port, and a token is seen by whoever reads one
   * datagram; the node answers from the port it was sent to.
   */
  #fromNode(bytes: Uint8Array, hostname: string, port: number): boolean {
    if (port !== this.#port || !hasTokenUnchecked(bytes, this.#token)) {
      return false;
    }
    if (hostname === this.#ip) return true;
    const from = unmapIPv4(hostname);
    // A node bound to 0.0.0.0 answers 127.0.0.1 from 127.0.0.1, whichever
    // 127.x.y.z it was sent to.
    return from === this.#ip ||
      (from.startsWith("127.") && this.#ip.startsWith("127."));
  }

  #onDatagram = (bytes: Uint8Array, hostname: string, port: number): void => {
    // A datagram that is not the node's, or does not parse, is dropped,
    // never allowed to break the connection.
    if (!this.#fromNode(bytes, hostname, port)) {
      this.stats.rejected++;
      return;
    }
    let message: Message;
    try {
      message = decodeDatagram(bytes).message;
    } catch {
      this.stats.rejected++;
      return;
    }
    // A type a node may not send, or a reply that breaks the protocol, is
    // dropped: the request it names waits for its own reply.
    if (!this.#deliver(message)) {
      this.stats.rejected++;
      return;
    }
    this.stats.datagramsReceived++;
    this.stats.received++;
  };

  #onBatchDatagram = (
    bytes: Uint8Array,
    hostname: string,
    port: number,
  ): void => {
    if (!this.#fromNode(bytes, hostname, port)) {
      this.stats.rejected++;
      return;
    }
    // Every frame is checked before any is delivered: a datagram with a
    // bad or truncated frame is dropped whole.
    let messages: Message[];
    try {
      messages = decodeDatagramFrames(bytes).messages;
    } catch {
      this.stats.rejected++;
      return;
    }
    this.stats.datagramsReceived++;
    for (let i = 0; i < messages.length; i++) {
      // A type a node may not send, or a reply that breaks the protocol,
      // is skipped on its own, as the node skips a frame it may not
      // receive.
      if (this.#deliver(messages[i])) this.stats.received++;
      else this.stats.rejected++;
    }
  };

  #onChannelClose = (error?: Error): void => {
    if (this.#closed) return;
    this.#closed = true;
    // The socket failed under a live connection: without it no request
    // can travel, so the connection goes too.
    this.#connection.destroy(
      new ConnectionLostError(
        this.#connection,
        `its UDP socket closed${
          error === undefined || error === null ? "" : `: ${foreignText(error)}`
        }`,
        { cause: error },
      ),
    );
  };
}
