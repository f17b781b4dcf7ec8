/**
 * The reference node's UDP side: one datagram socket for every client,
 * session tokens handed out at negotiation and revoked when their TCP
 * connection closes, and replies sent back as datagrams to whoever asked.
 * What a request does is up to the node; this file only checks that a
 * datagram belongs to a live session and carries valid frames: exactly
 * one, or, for a session that agreed `"udp-batch"` in HELLO / HELLO_OK,
 * one or more back to back. Such a session's replies are packed the same
 * way, those produced while handling one received datagram (and any
 * produced in the same microtask) sharing datagrams (udp_replies.ts).
 *
 * @module
 */

import {
  DATAGRAM_OVERHEAD,
  decodeDatagram,
  decodeDatagramFrames,
  encodeDatagram,
  formatUdpToken,
  MAX_DATAGRAM_SIZE,
  newUdpToken,
  UDP_TOKEN_SIZE,
} from "../src/protocol/datagram.ts";
import { type Clock, systemClock } from "../src/clock.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { encodeError, RemoteErrorCode } from "../src/protocol/messages.ts";
import { type DatagramChannel, unmapIPv4 } from "../src/runtime/datagram.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import {
  ConnectionError,
  formatAddress,
  NodewireError,
} from "../src/errors.ts";
import { foreignText, isInstance } from "../src/errors/base.ts";
import {
  checkDatagramChannel,
  closeQuietly,
} from "../src/handshake/udp_channel.ts";
import { toListenError } from "../src/runtime/errors.ts";
import { oversizedError, ReplyBatch, type ReplyWriter } from "./udp_replies.ts";

export type { ReplyWriter };

/**
 * Counters of a node's UDP side.
 *
 * @example
 * ```ts
 * import type { UdpServiceStats } from "@nodewire/client/testing";
 * const seen = (s: UdpServiceStats) => s.accepted + s.dropped + s.rejected;
 * ```
 */
export interface UdpServiceStats {
  /** REQUEST and PING frames handed to the node. */
  accepted: number;
  /** Valid datagrams thrown away on purpose (`dropEvery`). */
  dropped: number;
  /**
   * Refused: datagrams with an unknown token, from the wrong address, or
   * malformed (each dropped whole), and frames of a type a client may not
   * send by UDP.
   */
  rejected: number;
  /** Replies too large for a datagram, answered with ERROR 8 instead. */
  oversized: number;
  /**
   * Datagrams of a live session that decoded (whatever became of their
   * frames, `dropEvery` included).
   */
  datagramsReceived: number;
  /** Datagrams sent: replies, and ERROR 5 to unknown sessions. */
  datagramsSent: number;
}

/** Options for {@linkcode UdpService}. */
export interface UdpServiceOptions<S> {
  /** The adapter whose `datagram()` binds the socket. */
  adapter: RuntimeAdapter;
  /** Throw away every Nth valid datagram (1-based), to simulate loss. */
  dropEvery?: number;
  /**
   * Largest reply datagram, in bytes. Default 65507. A batching session's
   * replies are packed up to it.
   */
  maxDatagramSize?: number;
  /** Handles a REQUEST or PING of `session`; answers go to `reply`. */
  onMessage: (session: S, message: Message, reply: ReplyWriter) => void;
  /** Times the wait of `close()`. Default the system clock. */
  clock?: Clock;
}

/**
 * How long `close()` waits for the socket to report closing: a runtime's
 * does at once; a custom channel that never does must not hold the
 * node's close for ever.
 */
const CLOSE_WAIT_MS = 5000;

interface Binding<S> {
  session: S;
  token: Uint8Array;
  key: string;
  // The TCP peer's address: datagrams for this session must come from it.
  ip: string | undefined;
  // Whether the session agreed "udp-batch".
  batch: boolean;
  // The reply packer for the last address and port the session's
  // datagrams came from (batching sessions only).
  replies: ReplyBatch | undefined;
}

/** A node's UDP endpoint. */
export class UdpService<S> {
  /** Counters. */
  readonly stats: UdpServiceStats = {
    accepted: 0,
    dropped: 0,
    rejected: 0,
    oversized: 0,
    datagramsReceived: 0,
    datagramsSent: 0,
  };
  readonly #adapter: RuntimeAdapter;
  readonly #dropEvery: number;
  readonly #maxDatagramSize: number;
  readonly #onMessage: UdpServiceOptions<S>["onMessage"];
  readonly #byKey = new Map<string, Binding<S>>();
  readonly #bySession = new Map<S, Binding<S>>();
  readonly #clock: Clock;
  #channel: DatagramChannel | undefined;
  #valid = 0;

  /** Creates the endpoint; {@linkcode UdpService.bind} opens the socket. */
  constructor(options: UdpServiceOptions<S>) {
    this.#adapter = options.adapter;
    this.#dropEvery = options.dropEvery ?? 0;
    this.#maxDatagramSize = options.maxDatagramSize ?? MAX_DATAGRAM_SIZE;
    this.#onMessage = options.onMessage;
    this.#clock = options.clock ?? systemClock;
  }

  /** Whether the socket is bound. */
  get bound(): boolean {
    return this.#channel !== undefined;
  }

  /** The bound port, once bound. */
  get port(): number | undefined {
    return this.#channel?.port;
  }

  /** Sessions holding a token. */
  get sessions(): number {
    return this.#bySession.size;
  }

  /**
   * Binds the socket; a no-op when already bound.
   *
   * @throws {ConnectionError} `LISTEN_FAILED` (rejects) when the address
   *   cannot be bound, when a custom adapter fails with what is no SDK
   *   error (quoted), or when its channel throws from `onMessage` or
   *   `onClose`: that channel is closed again.
   * @throws {InvalidArgumentError} (rejects) when a custom adapter resolved
   *   with what is no DatagramChannel (closed, if it can be).
   */
  async bind(hostname: string, port: number): Promise<void> {
    if (this.#channel) return;
    const endpoint = { hostname, port };
    let channel: DatagramChannel;
    try {
      channel = await this.#adapter.datagram!(endpoint);
    } catch (error) {
      // The runtimes' adapters say LISTEN_FAILED already; a custom one's
      // raw error would reach the node's start as it was.
      if (isInstance(error, NodewireError)) throw error;
      throw toListenError(error, endpoint);
    }
    checkDatagramChannel(channel);
    try {
      channel.onMessage(this.#onDatagram);
      channel.onClose(() => {
        if (this.#channel === channel) this.#channel = undefined;
      });
    } catch (cause) {
      // Unheld, the socket would stay open and keep the process alive;
      // unsaid, the node's start would fail with the channel's raw error.
      closeQuietly(channel);
      throw new ConnectionError(
        "LISTEN_FAILED",
        `cannot serve UDP on ${formatAddress(endpoint)}: the runtime ` +
          `adapter's datagram channel refused its receivers: ` +
          foreignText(cause),
        endpoint,
        { cause, retryable: false },
      );
    }
    this.#channel = channel;
  }

  /**
   * Issues `session` its token (32 hex digits), replacing any it had.
   * Datagrams with it are accepted from `ip` only, when given. With
   * `batch` (the session agreed `"udp-batch"`) its datagrams may carry
   * several frames, and so may the replies.
   */
  open(session: S, ip: string | undefined, batch = false): string {
    this.revoke(session);
    const token = newUdpToken();
    const key = keyOf(token);
    const binding: Binding<S> = {
      session,
      token,
      key,
      ip: ip === undefined ? undefined : unmapIPv4(ip),
      batch,
      replies: undefined,
    };
    this.#byKey.set(key, binding);
    this.#bySession.set(session, binding);
    return formatUdpToken(token);
  }

  /** Forgets `session`'s token; later datagrams with it are refused. */
  revoke(session: S): void {
    const binding = this.#bySession.get(session);
    if (binding === undefined) return;
    this.#bySession.delete(session);
    this.#byKey.delete(binding.key);
  }

  /**
   * Closes the socket and forgets every token. Resolves once the runtime
   * reports the socket closed, so the port can be bound again, or after
   * 5 s when it never does (a custom adapter's channel), or at once when
   * the channel's `close` throws or its promise rejects.
   */
  close(): Promise<void> {
    this.#byKey.clear();
    this.#bySession.clear();
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel === undefined) return Promise.resolve();
    const clock = this.#clock;
    return new Promise((resolve) => {
      const timer = clock.setTimeout(resolve, CLOSE_WAIT_MS);
      const done = () => {
        clock.clearTimeout(timer);
        resolve();
      };
      try {
        channel.onClose(done);
        // A custom channel's async close: its rejection ends the wait as
        // a throw does (dropped, it went unhandled).
        const closing: unknown = channel.close();
        if (closing !== undefined) Promise.resolve(closing).then(null, done);
      } catch {
        // A custom channel's: nothing more can be done for it, and a
        // node's graceful drain closes it unawaited (a rejection would go
        // unhandled).
        done();
      }
    });
  }

  #onDatagram = (bytes: Uint8Array, ip: string, port: number): void => {
    if (bytes.byteLength < UDP_TOKEN_SIZE) {
      this.stats.rejected++;
      return;
    }
    const binding = this.#byKey.get(keyOf(bytes));
    if (binding === undefined) {
      this.stats.rejected++;
      // A client whose session ended (the node restarted, its TCP
      // connection dropped) learns it at once, not at its timeout. The
      // token is echoed: the client drops datagrams without its own. Only
      // requests and pings are answered, so two endpoints can never keep
      // answering each other's errors; and only well-formed ones, or 18
      // forged bytes would draw a 54-byte answer at whoever they name.
      let first: Message;
      try {
        first = decodeDatagramFrames(bytes).messages[0];
      } catch {
        return;
      }
      if (!isRequest(first.type)) return;
      this.#send(
        bytes.subarray(0, UDP_TOKEN_SIZE),
        MessageType.Error,
        0,
        encodeError({
          code: RemoteErrorCode.Unavailable,
          retryable: true,
          message: "unknown UDP session",
        }),
        ip,
        port,
      );
      return;
    }
    // A token seen from another host is a copy, not the client: answering
    // would let anyone aim our replies at a third party.
    if (binding.ip !== undefined && unmapIPv4(ip) !== binding.ip) {
      this.stats.rejected++;
      return;
    }
    if (binding.batch) return this.#onBatch(binding, bytes, ip, port);
    let message: Message;
    try {
      message = decodeDatagram(bytes).message;
    } catch {
      this.stats.rejected++;
      return;
    }
    this.stats.datagramsReceived++;
    if (!isRequest(message.type)) {
      this.stats.rejected++;
      return;
    }
    if (this.#dropNow()) return;
    this.stats.accepted++;
    const token = binding.token;
    this.#onMessage(binding.session, message, {
      push: (type, flags, sequence, payload) =>
        this.#reply(token, type, flags, sequence, payload, ip, port),
    });
  };

  /** A datagram of a session that agreed "udp-batch". */
  #onBatch(binding: Binding<S>, bytes: Uint8Array, ip: string, port: number) {
    // Every frame is checked before any is served: one bad or truncated
    // frame drops the datagram whole.
    let messages: Message[];
    try {
      messages = decodeDatagramFrames(bytes).messages;
    } catch {
      this.stats.rejected++;
      return;
    }
    this.stats.datagramsReceived++;
    if (this.#dropNow()) return;
    let replies = binding.replies;
    if (replies === undefined || replies.ip !== ip || replies.port !== port) {
      // Replies go where the datagram came from; those already packed for
      // an earlier address still go there.
      replies?.flush();
      replies = binding.replies = new ReplyBatch(
        binding.token,
        this.#maxDatagramSize,
        ip,
        port,
        this.#sendPacked,
        this.#oversized,
      );
    }
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i];
      // A frame a client may not send is skipped on its own; the others
      // are served.
      if (!isRequest(message.type)) {
        this.stats.rejected++;
        continue;
      }
      this.stats.accepted++;
      this.#onMessage(binding.session, message, replies);
    }
  }

  /** Whether `dropEvery` throws this valid datagram away. */
  #dropNow(): boolean {
    this.#valid++;
    if (this.#dropEvery > 0 && this.#valid % this.#dropEvery === 0) {
      this.stats.dropped++;
      return true;
    }
    return false;
  }

  #sendPacked = (datagram: Uint8Array, ip: string, port: number): void => {
    this.stats.datagramsSent++;
    this.#channel?.send(datagram, ip, port);
  };

  /** The ERROR 8 that replaces a reply too large for any datagram. */
  #oversized = (size: number): Uint8Array => {
    this.stats.oversized++;
    return oversizedError(size, this.#maxDatagramSize);
  };

  #reply(
    token: Uint8Array,
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
    ip: string,
    port: number,
  ): void {
    if (DATAGRAM_OVERHEAD + payload.byteLength > this.#maxDatagramSize) {
      type = MessageType.Error;
      flags = 0;
      payload = this.#oversized(payload.byteLength);
    }
    this.#send(token, type, flags, payload, ip, port, sequence);
  }

  #send(
    token: Uint8Array,
    type: number,
    flags: number,
    payload: Uint8Array,
    ip: string,
    port: number,
    sequence = 0,
  ): void {
    this.stats.datagramsSent++;
    this.#channel?.send(
      encodeDatagram(token, type, flags, sequence, payload),
      ip,
      port,
    );
  }
}

/** Whether a client may send `type` by UDP: REQUEST or PING. */
function isRequest(type: number): boolean {
  return type === MessageType.Request || type === MessageType.Ping;
}

/** A map key for the token at the start of `bytes`. */
function keyOf(bytes: Uint8Array): string {
  return String.fromCharCode.apply(
    null,
    bytes.subarray(0, UDP_TOKEN_SIZE) as unknown as number[],
  );
}
