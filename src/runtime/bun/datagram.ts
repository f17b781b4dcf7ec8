/**
 * Datagram sockets on Bun's native `Bun.udpSocket`, reached through
 * `globalThis` with small local interfaces so the package type-checks
 * without Bun's typings. (`node:dgram` works on Bun too; the native socket
 * hands over each datagram without Node's event emitter in between.)
 *
 * @module
 */

import { toConnectionError, toListenError } from "../errors.ts";
import {
  DatagramBase,
  type DatagramChannel,
  type DatagramOptions,
} from "../datagram.ts";

/** The part of Bun's `UDPSocket` used here. */
interface BunUdpSocket {
  readonly hostname: string;
  readonly port: number;
  readonly closed: boolean;
  /** True when sent; false under backpressure (wait for `drain`). */
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
}

interface BunUdpHandlers {
  data(
    socket: BunUdpSocket,
    data: Uint8Array,
    port: number,
    address: string,
  ): void;
  drain(socket: BunUdpSocket): void;
  error(socket: BunUdpSocket, error: Error | undefined): void;
}

interface BunUdpApi {
  udpSocket(options: {
    hostname?: string;
    port?: number;
    binaryType?: "uint8array";
    socket: BunUdpHandlers;
  }): Promise<BunUdpSocket>;
}

/**
 * Datagrams held while the socket reports backpressure, at most. Past it
 * they are dropped, as a full socket buffer would drop them.
 */
const MAX_HELD = 1024;

interface Held {
  bytes: Uint8Array;
  hostname: string;
  port: number;
}

class BunDatagram extends DatagramBase {
  #socket: BunUdpSocket | undefined;
  #held: Held[] = [];

  constructor(hostname: string, port: number) {
    super({ hostname, port });
  }

  /** @internal Takes over the bound socket. */
  attach(socket: BunUdpSocket): void {
    this.#socket = socket;
  }

  /** @internal Called from Bun's `data` handler. */
  receive(bytes: Uint8Array, hostname: string, port: number): void {
    this.emit(bytes, hostname, port);
  }

  /**
   * @internal Called from Bun's `drain` handler: sends what was held. One
   * the socket now refuses is lost, as in `send`: kept, it would be tried
   * first at every drain, and everything behind it held until dropped.
   */
  drain(): void {
    const held = this.#held;
    this.#held = [];
    for (let i = 0; i < held.length; i++) {
      const h = held[i];
      if (this.#trySend(h.bytes, h.hostname, h.port) === false) {
        // Still full: keep the rest, in order, for the next drain.
        this.#held = held.slice(i).concat(this.#held);
        return;
      }
    }
  }

  /**
   * @internal Called from Bun's `error` handler. Bun also calls it, with
   * no error and the socket still open, when the kernel reports that an
   * earlier datagram bounced (ICMP port unreachable): that concerns one
   * datagram, not the socket, so only an error that closed it counts.
   */
  fail(socket: BunUdpSocket, error: Error | undefined): void {
    if (!socket.closed) return;
    this.#held = [];
    this.finish(
      toConnectionError(error ?? new Error("the UDP socket failed"), {
        hostname: this.hostname,
        port: this.port,
      }),
    );
    this.#socket?.close();
  }

  send(bytes: Uint8Array, hostname: string, port: number): boolean {
    if (this.closed || this.#socket === undefined) return false;
    if (this.#held.length === 0) {
      const sent = this.#trySend(bytes, hostname, port);
      if (sent !== false) return sent === true;
    }
    if (this.#held.length >= MAX_HELD) return false;
    this.#held.push({ bytes, hostname, port });
    return true;
  }

  close(): void {
    if (!this.finish()) return;
    this.#held = [];
    this.#socket?.close();
  }

  /** True sent, false backpressure, undefined refused (dropped). */
  #trySend(
    bytes: Uint8Array,
    hostname: string,
    port: number,
  ): boolean | undefined {
    try {
      return this.#socket!.send(bytes, port, hostname);
    } catch {
      // EMSGSIZE and the like throw at once; the datagram is lost.
      return undefined;
    }
  }
}

/**
 * Binds a UDP socket with `Bun.udpSocket`.
 *
 * @throws {ConnectionError} with code `LISTEN_FAILED` when the address
 *   cannot be bound.
 */
export async function openBunDatagram(
  options: DatagramOptions,
): Promise<DatagramChannel> {
  const bun = (globalThis as unknown as { Bun: BunUdpApi }).Bun;
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 0;
  // Bun calls the handlers with its socket; the channel is found through
  // this closure, since the socket exists only after the await.
  const ref: { channel?: BunDatagram } = {};
  let socket: BunUdpSocket;
  try {
    socket = await bun.udpSocket({
      hostname,
      port,
      binaryType: "uint8array",
      socket: {
        data: (_socket, data, fromPort, fromAddress) =>
          ref.channel?.receive(data, fromAddress, fromPort),
        drain: () => ref.channel?.drain(),
        error: (socket, error) => ref.channel?.fail(socket, error),
      },
    });
  } catch (error) {
    throw toListenError(error, { hostname, port });
  }
  const channel = new BunDatagram(socket.hostname, socket.port);
  channel.attach(socket);
  ref.channel = channel;
  return channel;
}
