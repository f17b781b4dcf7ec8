/**
 * The client side of UDP (docs/PROTOCOL.md, "UDP"). When negotiation
 * chooses `"udp"`, {@linkcode udpTransport}'s upgrade opens a datagram
 * socket and routes the connection's requests and pings over it: one
 * message per datagram, each led by the session token from NEGOTIATE_OK,
 * replies matched by sequence number like on the stream. The TCP
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
import { integerIn } from "../config/validate.ts";
import {
  ConnectionLostError,
  DatagramTooLargeError,
  ProtocolError,
} from "../errors.ts";
import type { TransportUpgrade } from "./handshake.ts";
import {
  DATAGRAM_OVERHEAD,
  decodeDatagram,
  DEFAULT_MAX_DATAGRAM_SIZE,
  encodeDatagram,
  hasToken,
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
  parseUdpToken,
} from "../protocol/datagram.ts";
import { type Message, MessageType } from "../protocol/frame.ts";
import {
  anyAddressFor,
  type DatagramChannel,
  unmapIPv4,
} from "../runtime/datagram.ts";
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
  /** Datagrams sent. */
  sent: number;
  /** Datagrams received with this session's token and a valid frame. */
  received: number;
  /** Datagrams dropped unread: wrong token, malformed, or an unexpected type. */
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
 * every datagram.
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
  const { adapter } = options;
  if (typeof adapter.datagram !== "function") return undefined;
  const maxDatagramSize = integerIn(
    "maxDatagramSize",
    options.maxDatagramSize ?? DEFAULT_MAX_DATAGRAM_SIZE,
    MIN_DATAGRAM_SIZE,
    MAX_DATAGRAM_SIZE,
  );
  return async (connection, negotiated, signal) => {
    const port = negotiated.udpPort;
    if (port === undefined) {
      throw new ProtocolError("NEGOTIATE_OK chose udp but gave no udpPort");
    }
    if (negotiated.udpToken === undefined) {
      throw new ProtocolError("NEGOTIATE_OK chose udp but gave no udpToken");
    }
    const token = parseUdpToken(negotiated.udpToken);
    const ip = unmapIPv4(
      connection.remoteAddress?.hostname ?? connection.hostname,
    );
    signal.throwIfAborted();
    const channel = await adapter.datagram!({ hostname: bindAddressFor(ip) });
    if (signal.aborted) {
      channel.close();
      throw signal.reason;
    }
    const route = new UdpRoute(connection, channel, {
      ip,
      port,
      token,
      maxDatagramSize,
    });
    stats.set(connection, route.stats);
  };
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
  readonly #deliver: (message: Message) => void;
  readonly #ip: string;
  readonly #port: number;
  readonly #token: Uint8Array;
  readonly #maxDatagramSize: number;
  #closed = false;

  constructor(
    connection: Connection,
    channel: DatagramChannel,
    options: {
      ip: string;
      port: number;
      token: Uint8Array;
      maxDatagramSize: number;
    },
  ) {
    this.#connection = connection;
    this.#channel = channel;
    this.#ip = options.ip;
    this.#port = options.port;
    this.#token = options.token;
    this.#maxDatagramSize = options.maxDatagramSize;
    this.maxPayload = options.maxDatagramSize - DATAGRAM_OVERHEAD;
    this.stats = {
      address: options.ip.includes(":")
        ? `[${options.ip}]:${options.port}`
        : `${options.ip}:${options.port}`,
      localPort: channel.port,
      sent: 0,
      received: 0,
      rejected: 0,
    };
    channel.onMessage(this.#onDatagram);
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
    this.#channel.send(
      encodeDatagram(this.#token, type, flags, sequence, payload),
      this.#ip,
      this.#port,
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.close();
  }

  #onDatagram = (bytes: Uint8Array): void => {
    // Anyone can send to this port: a datagram without the session's
    // token, or one that does not parse, is dropped, never allowed to
    // break the connection.
    if (!hasToken(bytes, this.#token)) {
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
    const type = message.type;
    if (
      type !== MessageType.Response && type !== MessageType.Pong &&
      type !== MessageType.Error
    ) {
      this.stats.rejected++;
      return;
    }
    this.stats.received++;
    this.#deliver(message);
  };

  #onChannelClose = (error?: Error): void => {
    if (this.#closed) return;
    this.#closed = true;
    // The socket failed under a live connection: without it no request
    // can travel, so the connection goes too.
    this.#connection.destroy(
      new ConnectionLostError(
        this.#connection,
        `its UDP socket closed${error ? `: ${error.message}` : ""}`,
        { cause: error },
      ),
    );
  };
}
