/**
 * Datagram sockets on `node:dgram`: Node's, and Deno's fallback when
 * `Deno.listenDatagram` is missing (no `--unstable-net`). It runs on Bun
 * too, but Bun uses its native `Bun.udpSocket`.
 *
 * `node:dgram` is loaded on first use, so programs that never open a
 * datagram socket never load it.
 *
 * @module
 */

import type * as Dgram from "node:dgram";
import { toConnectionError, toListenError } from "../errors.ts";
import {
  DatagramBase,
  type DatagramChannel,
  type DatagramOptions,
  isIPv6,
} from "../datagram.ts";

let dgramLoading: Promise<typeof Dgram> | undefined;

function loadDgram(): Promise<typeof Dgram> {
  dgramLoading ??= import("node:dgram");
  return dgramLoading;
}

// A send with a callback reports its error there; without one Node emits
// 'error' on the socket, and a refused datagram is no reason to close it.
const ignoreSendError = () => {};

class NodeDatagram extends DatagramBase {
  readonly #socket: Dgram.Socket;
  #error: Error | undefined;

  constructor(socket: Dgram.Socket) {
    const address = socket.address();
    super({ hostname: address.address, port: address.port });
    this.#socket = socket;
    socket.on("message", (message: Uint8Array, info: Dgram.RemoteInfo) => {
      // A fresh Buffer per datagram; the plain view keeps Uint8Array
      // semantics (Buffer's slice() is a view, not a copy).
      this.emit(
        new Uint8Array(message.buffer, message.byteOffset, message.byteLength),
        info.address,
        info.port,
      );
    });
    socket.on("error", (error: Error) => {
      this.#error ??= toConnectionError(error, {
        hostname: this.hostname,
        port: this.port,
      });
      this.#close();
    });
    socket.on("close", () => this.finish(this.#error));
  }

  send(bytes: Uint8Array, hostname: string, port: number): boolean {
    if (this.closed) return false;
    try {
      this.#socket.send(bytes, port, hostname, ignoreSendError);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.#close();
  }

  #close(): void {
    try {
      this.#socket.close();
    } catch {
      // Already closing: Node throws ERR_SOCKET_DGRAM_NOT_RUNNING.
    }
  }
}

/**
 * Binds a UDP socket with `node:dgram`.
 *
 * @throws {ConnectionError} with code `LISTEN_FAILED` when the address
 *   cannot be bound.
 */
export async function openNodeDatagram(
  options: DatagramOptions,
): Promise<DatagramChannel> {
  const dgram = await loadDgram();
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 0;
  const socket = dgram.createSocket({
    type: isIPv6(hostname) ? "udp6" : "udp4",
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      try {
        socket.close();
      } catch {
        // Never bound.
      }
      reject(toListenError(error, { hostname, port }));
    };
    socket.once("error", onError);
    socket.bind({ address: hostname, port }, () => {
      socket.off("error", onError);
      resolve();
    });
  });
  return new NodeDatagram(socket);
}
