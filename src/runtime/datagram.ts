/**
 * The datagram half of the runtime adapter: a bound UDP socket that sends
 * and receives whole datagrams. The client opens one per connection that
 * negotiated UDP; the reference node opens one for all its clients.
 *
 * Implementations: `deno/datagram.ts` (`Deno.listenDatagram`, which needs
 * `--unstable-net`; without the flag Deno falls back to `node:dgram`),
 * `bun/datagram.ts` (`Bun.udpSocket`) and `node/datagram.ts`
 * (`node:dgram`). {@linkcode getAdapter} attaches the right one as
 * {@linkcode RuntimeAdapter.datagram}.
 *
 * @module
 */

import type { Endpoint } from "../errors.ts";
import { checkReceiver } from "./arguments.ts";

/**
 * Options for {@linkcode RuntimeAdapter.datagram}: the local address to
 * bind.
 *
 * @example
 * ```ts
 * import type { DatagramOptions } from "@nodewire/client/runtime";
 * const options: DatagramOptions = { hostname: "127.0.0.1", port: 0 };
 * ```
 */
export interface DatagramOptions {
  /**
   * Local address to bind, an IP literal. Its family (IPv4 or IPv6) is the
   * family of every address the socket can send to. Default `"0.0.0.0"`.
   */
  hostname?: string;
  /** Local port; 0 (the default) picks a free one. */
  port?: number;
}

/**
 * Receives one datagram: its bytes (owned by the receiver, never reused by
 * the adapter) and the sender's IP address and port.
 *
 * @example
 * ```ts
 * import type { DatagramReceiver } from "@nodewire/client/runtime";
 * const log: DatagramReceiver = (bytes, hostname, port) =>
 *   console.log(`${bytes.byteLength} bytes from ${hostname}:${port}`);
 * ```
 */
export type DatagramReceiver = (
  bytes: Uint8Array,
  hostname: string,
  port: number,
) => void;

/**
 * A bound UDP socket. Datagrams are whole: one `send` is one datagram, one
 * receiver call is one datagram. Delivery is not guaranteed: a datagram
 * can be lost, duplicated or reordered, and nothing here retries.
 *
 * Contract:
 * - datagrams that arrive before {@linkcode DatagramChannel.onMessage} is
 *   set are dropped (register before sending anything);
 * - `onClose` fires exactly once, with an SDK error when the socket
 *   failed, without one after {@linkcode DatagramChannel.close};
 * - `send` never throws: a datagram the operating system refuses is lost,
 *   like one lost on the network.
 *
 * @example
 * ```ts
 * import { getAdapter } from "@nodewire/client/runtime";
 * const adapter = await getAdapter();
 * const socket = await adapter.datagram!({ hostname: "127.0.0.1" });
 * socket.onMessage((bytes, hostname, port) => console.log(bytes, hostname, port));
 * socket.send(new Uint8Array([1, 2, 3]), "127.0.0.1", 7001);
 * socket.close();
 * ```
 */
export interface DatagramChannel {
  /** The bound local address. */
  readonly hostname: string;
  /** The bound local port (the real one when 0 was asked for). */
  readonly port: number;
  /** Whether the socket is closed. */
  readonly closed: boolean;
  /** Sets the receiver of incoming datagrams (one receiver). */
  onMessage(fn: DatagramReceiver): void;
  /** Sets the receiver of the close notification (one receiver). */
  onClose(fn: (error?: Error) => void): void;
  /**
   * Sends `bytes` as one datagram to an IP address (not a host name: a
   * name would be resolved again for every datagram, and could resolve to
   * another machine). The caller must not modify `bytes` later. Returns
   * false when the datagram was not handed to the operating system
   * (closed socket, refused at once).
   */
  send(bytes: Uint8Array, hostname: string, port: number): boolean;
  /** Closes the socket. Idempotent. */
  close(): void;
}

/**
 * Opens a datagram socket; the shape of {@linkcode RuntimeAdapter.datagram}.
 *
 * @example
 * ```ts
 * import type { DatagramOpener } from "@nodewire/client/runtime";
 * declare const open: DatagramOpener;
 * const socket = await open({ hostname: "127.0.0.1", port: 0 });
 * ```
 */
export type DatagramOpener = (
  options: DatagramOptions,
) => Promise<DatagramChannel>;

/**
 * The bookkeeping every datagram socket needs: one receiver, one close
 * receiver told exactly once, in a microtask so it never re-enters the
 * code that closed the socket.
 */
export abstract class DatagramBase implements DatagramChannel {
  /** The bound local address. */
  readonly hostname: string;
  /** The bound local port. */
  readonly port: number;
  #onMessage: DatagramReceiver | undefined;
  #onClose: ((error?: Error) => void) | undefined;
  #closed = false;
  #closeError: Error | undefined;
  #closeDelivered = false;

  /** Records the bound address. */
  constructor(local: Endpoint) {
    this.hostname = local.hostname;
    this.port = local.port;
  }

  /** Whether the socket is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sets the datagram receiver. */
  onMessage(fn: DatagramReceiver): void {
    checkReceiver("onMessage()", fn);
    this.#onMessage = fn;
  }

  /** Sets the close receiver; a close that already happened is delivered. */
  onClose(fn: (error?: Error) => void): void {
    checkReceiver("onClose()", fn);
    this.#onClose = fn;
    if (this.#closed) this.#scheduleClose();
  }

  /** Sends one datagram; false when it was not handed to the OS. */
  abstract send(bytes: Uint8Array, hostname: string, port: number): boolean;
  /** Closes the socket. */
  abstract close(): void;

  /**
   * Hands a datagram to the receiver. A receiver that throws is a bug in
   * the receiver; the datagram is dropped rather than letting the error
   * reach the runtime's event loop and kill the process.
   */
  protected emit(bytes: Uint8Array, hostname: string, port: number): void {
    const fn = this.#onMessage;
    if (this.#closed || fn === undefined) return;
    try {
      fn(bytes, hostname, port);
    } catch {
      // Dropped, like any datagram nobody could use.
    }
  }

  /** Marks the socket closed; false when it already was. */
  protected finish(error?: Error): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#closeError = error;
    this.#scheduleClose();
    return true;
  }

  #scheduleClose(): void {
    if (this.#onClose === undefined || this.#closeDelivered) return;
    this.#closeDelivered = true;
    const fn = this.#onClose;
    const error = this.#closeError;
    queueMicrotask(() => fn(error));
  }
}

/**
 * The unspecified address of `ip`'s family, for binding a socket that
 * sends to `ip`: `"::"` for IPv6, `"0.0.0.0"` otherwise. An IPv4-mapped
 * IPv6 address (`::ffff:127.0.0.1`) counts as IPv4.
 */
export function anyAddressFor(ip: string): string {
  return isIPv6(unmapIPv4(ip)) ? "::" : "0.0.0.0";
}

/**
 * `ip` without the IPv4-mapped prefix some runtimes report for IPv4 peers
 * of a dual-stack socket (`::ffff:127.0.0.1` becomes `127.0.0.1`).
 */
export function unmapIPv4(ip: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip;
}

/** Whether `hostname` is an IPv6 literal (brackets allowed). */
export function isIPv6(hostname: string): boolean {
  return hostname.includes(":");
}
