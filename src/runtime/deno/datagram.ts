/**
 * Datagram sockets on Deno: `Deno.listenDatagram` when it exists, which is
 * only under `--unstable-net` (or `"unstable": ["net"]` in deno.json);
 * otherwise `node:dgram`, which Deno supports without a flag. The native
 * API is reached through `globalThis` with a local interface, so this
 * file type-checks without Deno's unstable typings.
 *
 * @module
 */

import { toConnectionError, toListenError } from "../errors.ts";
import {
  DatagramBase,
  type DatagramChannel,
  type DatagramOptions,
} from "../datagram.ts";
import { openNodeDatagram } from "../node/datagram.ts";

/** The part of `Deno.DatagramConn` used here. */
interface DenoDatagramConn {
  readonly addr: { hostname: string; port: number };
  receive(
    buffer?: Uint8Array,
  ): Promise<[Uint8Array, { hostname: string; port: number }]>;
  send(
    data: Uint8Array,
    addr: { transport: "udp"; hostname: string; port: number },
  ): Promise<number>;
  close(): void;
}

interface DenoDatagramApi {
  listenDatagram?(options: {
    transport: "udp";
    hostname?: string;
    port: number;
  }): DenoDatagramConn;
}

/** Room for the largest datagram; each one is copied out at its size. */
const RECEIVE_SIZE = 64 * 1024;

const ignore = () => {};

class DenoDatagram extends DatagramBase {
  readonly #conn: DenoDatagramConn;
  // The destination of the last send, reused: a client sends every
  // datagram to the same node.
  #to = { transport: "udp" as const, hostname: "", port: 0 };
  #closing = false;

  constructor(conn: DenoDatagramConn) {
    super({ hostname: conn.addr.hostname, port: conn.addr.port });
    this.#conn = conn;
    this.#receive();
  }

  send(bytes: Uint8Array, hostname: string, port: number): boolean {
    if (this.#closing) return false;
    let to = this.#to;
    if (to.hostname !== hostname || to.port !== port) {
      to = this.#to = { transport: "udp", hostname, port };
    }
    // Asynchronous: a refusal (EMSGSIZE, no route) arrives later and the
    // datagram is lost like one dropped on the wire.
    this.#conn.send(bytes, to).catch(ignore);
    return true;
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    try {
      this.#conn.close();
    } catch {
      // Deno throws BadResource on a second close.
    }
    // onClose follows when the pending receive has ended: only then is the
    // socket gone as far as Deno (and its op sanitizer) is concerned.
  }

  async #receive(): Promise<void> {
    // Without a buffer Deno allocates 1 KiB and truncates anything larger;
    // one reused 64 KiB buffer and a copy per datagram avoid both that and
    // pinning 64 KiB per reply.
    const buffer = new Uint8Array(RECEIVE_SIZE);
    for (;;) {
      let bytes: Uint8Array;
      let from: { hostname: string; port: number };
      try {
        [bytes, from] = await this.#conn.receive(buffer);
      } catch (error) {
        // Interrupted or BadResource after close(): the end of the loop.
        // Anything else broke the socket.
        const failed = !this.#closing;
        this.close();
        this.finish(
          failed
            ? toConnectionError(error, {
              hostname: this.hostname,
              port: this.port,
            })
            : undefined,
        );
        return;
      }
      if (!this.#closing) this.emit(bytes.slice(), from.hostname, from.port);
    }
  }
}

/**
 * Binds a UDP socket with `Deno.listenDatagram` when Deno runs with
 * `--unstable-net`, else with `node:dgram`.
 *
 * @throws {ConnectionError} with code `LISTEN_FAILED` when the address
 *   cannot be bound.
 */
export function openDenoDatagram(
  options: DatagramOptions,
): Promise<DatagramChannel> {
  if (!hasNativeDatagrams()) return openNodeDatagram(options);
  const deno = (globalThis as unknown as { Deno: DenoDatagramApi }).Deno;
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 0;
  try {
    const conn = deno.listenDatagram!({ transport: "udp", hostname, port });
    return Promise.resolve(new DenoDatagram(conn));
  } catch (error) {
    return Promise.reject(toListenError(error, { hostname, port }));
  }
}

/** Whether `Deno.listenDatagram` is available (Deno with `--unstable-net`). */
export function hasNativeDatagrams(): boolean {
  const deno = (globalThis as { Deno?: DenoDatagramApi }).Deno;
  return typeof deno?.listenDatagram === "function";
}
