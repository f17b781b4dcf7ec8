/**
 * Where the reference node's answers go by UDP: the {@linkcode ReplyWriter}
 * a handler writes to, a batching session's replies packed into datagrams
 * once per microtask, and the ERROR 8 that stands in for a reply too large
 * for a datagram.
 *
 * @module
 */

import { DATAGRAM_OVERHEAD } from "../src/protocol/datagram.ts";
import { FramePacker } from "../src/protocol/datagram_packer.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError, RemoteErrorCode } from "../src/protocol/messages.ts";

/**
 * Where a node's answers go: the TCP stream's frame writer, or one UDP
 * client for the answers to a datagram.
 *
 * @example
 * ```ts
 * import type { ReplyWriter } from "@nodewire/client/testing";
 * const sent: number[] = [];
 * const writer: ReplyWriter = { push: (_type, _flags, sequence) => void sent.push(sequence) };
 * ```
 */
export interface ReplyWriter {
  /** Sends one frame. */
  push(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void;
}

/**
 * The replies of one batching session to one address and port: packed
 * into datagrams, sent once per microtask (so the replies to one received
 * datagram, produced while it is handled, travel together).
 */
export class ReplyBatch implements ReplyWriter {
  /** Where the replies go. */
  readonly ip: string;
  /** The port they go to. */
  readonly port: number;
  readonly #limit: number;
  readonly #packer: FramePacker;
  readonly #oversized: (size: number) => Uint8Array;
  #scheduled = false;

  /**
   * Replies to `ip`:`port` in `token`'s datagrams of at most `limit`
   * bytes, handed to `send`; `oversized` stands in for a reply too large.
   */
  constructor(
    token: Uint8Array,
    limit: number,
    ip: string,
    port: number,
    send: (datagram: Uint8Array, ip: string, port: number) => void,
    oversized: (size: number) => Uint8Array,
  ) {
    this.ip = ip;
    this.port = port;
    this.#limit = limit;
    this.#oversized = oversized;
    this.#packer = new FramePacker(
      token,
      limit,
      (datagram) => send(datagram, ip, port),
    );
  }

  /** Packs one reply; the datagrams go out once the microtask ends. */
  push(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    if (DATAGRAM_OVERHEAD + payload.byteLength > this.#limit) {
      type = MessageType.Error;
      flags = 0;
      payload = this.#oversized(payload.byteLength);
    }
    this.#packer.push(type, flags, sequence, payload);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** Sends what is packed now. */
  flush = (): void => {
    this.#scheduled = false;
    this.#packer.flush();
  };
}

/**
 * ERROR 8 (Unsupported) for a reply of `size` bytes over `limit`, in words
 * that fit a datagram of `limit` themselves: the sentence did not at the
 * smallest, and a batching node's packer threw on it (the reply was never
 * sent, the request timed out), one that does not batch sent it over its
 * own limit.
 */
export function oversizedError(size: number, limit: number): Uint8Array {
  const room = limit - DATAGRAM_OVERHEAD - ERROR_HEADER_SIZE;
  const full = `the reply of ${size} bytes does not fit in ` +
    `a ${limit}-byte datagram; use TCP`;
  return encodeError({
    code: RemoteErrorCode.Unsupported,
    retryable: false,
    // ASCII: its length is its size in bytes.
    message: full.length <= room ? full : "reply too large: use TCP",
  });
}

/** The bytes of an ERROR payload before its text (flags, code). */
const ERROR_HEADER_SIZE = 3;
