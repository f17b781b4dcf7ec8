/**
 * How a reference node answers a REQUEST, by TCP or by datagram: the op
 * set of ops.ts run against the node's key-value store (which outlives a
 * stop and a restart, as a real node's data would), SLEEP's timers, and
 * the RESPONSE and ERROR frames that count as requests answered.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../src/clock.ts";
import type { FrameWriter } from "../src/connection/frame_writer.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError, RemoteErrorCode } from "../src/protocol/messages.ts";
import type { TestNodeStats } from "./node_stats.ts";
import { encodeReply, Op } from "./ops.ts";
import type { ReplyWriter } from "./udp_service.ts";

const decoder = new TextDecoder();

/** What the requests use of their node. */
export interface RequestHost {
  /** Where the answers are counted. */
  readonly stats: Pick<TestNodeStats, "requests">;
  /** The node's id, encoded: every RESPONSE starts with it. */
  nodeIdBytes(): Uint8Array;
  /** For SLEEP. */
  readonly clock: Clock;
}

/** What a request uses of the session that sent it. */
export interface RequestSession {
  /** SLEEPs under way: a graceful stop closes the stream after them. */
  inFlight: number;
  /** The session's stream, read when a SLEEP ends (TLS may replace it). */
  readonly writer: FrameWriter;
  /**
   * After a graceful stop's window, closes the stream once idle (after
   * one more window when the last reply went by datagram).
   */
  closeIfDrained(byDatagram: boolean): void;
}

/** A node's requests: its store, and the SLEEPs under way. */
export class RequestServer {
  readonly #host: RequestHost;
  readonly #store = new Map<string, Uint8Array>();
  readonly #timers = new Set<TimerHandle>();

  /** Serves with `host`'s id, clock and counters. */
  constructor(host: RequestHost) {
    this.#host = host;
  }

  /**
   * Runs the op `payload` holds for `session` and answers on `out`: its
   * stream, or the UDP client that sent it. An unknown or truncated op is
   * ERROR 1 (BadRequest).
   */
  serve(
    session: RequestSession,
    sequence: number,
    payload: Uint8Array,
    out: ReplyWriter,
  ): void {
    const op = payload[0];
    const args = payload.subarray(1);
    switch (op) {
      case Op.Echo:
        return this.reply(sequence, args, out);
      case Op.Get: {
        const value = this.#store.get(decoder.decode(args));
        if (value === undefined) {
          return this.sendError(
            sequence,
            RemoteErrorCode.NotFound,
            false,
            "key not found",
            out,
          );
        }
        return this.reply(sequence, value, out);
      }
      case Op.Put: {
        if (args.byteLength < 2) break;
        const keyLength = (args[0] << 8) | args[1];
        if (args.byteLength < 2 + keyLength) break;
        const key = decoder.decode(args.subarray(2, 2 + keyLength));
        // Copy: the payload is a view into a socket chunk.
        this.#store.set(key, args.slice(2 + keyLength));
        return this.reply(sequence, new Uint8Array(0), out);
      }
      case Op.Delete: {
        const existed = this.#store.delete(decoder.decode(args));
        return this.reply(
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
        const timer = this.#host.clock.setTimeout(() => {
          this.#timers.delete(timer);
          session.inFlight--;
          this.reply(sequence, data, out);
          session.closeIfDrained(out !== session.writer);
        }, ms);
        this.#timers.add(timer);
        return;
      }
      case Op.Fail: {
        if (args.byteLength < 3) break;
        return this.sendError(
          sequence,
          (args[0] << 8) | args[1],
          args[2] === 1,
          decoder.decode(args.subarray(3)),
          out,
        );
      }
    }
    this.sendError(
      sequence,
      RemoteErrorCode.BadRequest,
      false,
      `malformed or unknown operation 0x${(op ?? 0).toString(16)}`,
      out,
    );
  }

  /** Drops every SLEEP under way, unanswered, as a crash would. */
  cancel(): void {
    for (const t of this.#timers) this.#host.clock.clearTimeout(t);
    this.#timers.clear();
  }

  /** Answers `sequence` with `data`, after the node's id. */
  reply(sequence: number, data: Uint8Array, out: ReplyWriter): void {
    this.#host.stats.requests++;
    out.push(
      MessageType.Response,
      0,
      sequence,
      encodeReply(this.#host.nodeIdBytes(), data),
    );
  }

  /**
   * Answers request `sequence` with an ERROR: `error`'s message, or
   * `error`; counted as a request answered.
   */
  sendError(
    sequence: number,
    code: number,
    retryable: boolean,
    error: unknown,
    out: ReplyWriter,
  ): void {
    this.#host.stats.requests++;
    pushError(out, sequence, { code, retryable, error });
  }
}

/**
 * Writes an ERROR for `sequence` to `out`: `error`'s message, or `error`.
 * Alone, for an ERROR that answers no request (a message the node cannot
 * read, or of a type a client may not send), which `stats.requests` does
 * not count.
 */
export function pushError(
  out: ReplyWriter,
  sequence: number,
  what: { code: number; retryable: boolean; error: unknown },
): void {
  const { code, retryable, error } = what;
  const message = error instanceof Error ? error.message : String(error);
  out.push(
    MessageType.Error,
    0,
    sequence,
    encodeError({ code, retryable, message }),
  );
}
