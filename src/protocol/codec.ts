/**
 * Frame encoding and incremental decoding. The header's bytes, read and
 * written, are header_bytes.ts's; the checks of the codec's settings,
 * codec_limits.ts's; a payload's real length, payload_length.ts's; the
 * buffer of a frame split over reads, split_frame.ts's.
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError } from "../errors.ts";
import { clipped, messageOf } from "../errors/base.ts";
import { fieldsOf, MESSAGE_FIELDS } from "./messages.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  HEADER_SIZE,
  isKnownTypeNumber,
  KNOWN_FLAGS,
  MAX_FRAME_SIZE_LIMIT,
  type Message,
  PROTOCOL_VERSION,
} from "./frame.ts";
import {
  headerFault,
  readSequence,
  readU32,
  TWO_32,
  writeHeader,
} from "./header_bytes.ts";
import { checkCopyBelow, integerIn } from "./codec_limits.ts";
import { lengthOf } from "./payload_length.ts";
import { NoRoom, splitBuffer } from "./split_frame.ts";

/**
 * Takes one decoded frame's fields; `payload` is a view into the chunk
 * when the frame arrived whole in it.
 *
 * @example
 * ```ts
 * import type { FrameHandler } from "@nodewire/client/protocol";
 * const log: FrameHandler = (type, _flags, sequence, payload) =>
 *   console.log(type, sequence, payload.byteLength);
 * ```
 */
export type FrameHandler = (
  type: number,
  flags: number,
  sequence: number,
  payload: Uint8Array,
) => void;

/**
 * Encodes frames and decodes a byte stream into frames. One instance per
 * connection: decoding is stateful, so frames may be split or coalesced
 * across chunks in any way.
 *
 * Frames that arrive whole inside one chunk are handed out as views into
 * that chunk (a payload shorter than {@linkcode MessageCodec.copyBelow} as
 * a copy); only a frame split across chunks is copied, into a buffer of
 * its length when that is at most 1 MiB more than what has come, else
 * into one that grows as its bytes arrive (at most twice what arrived, or
 * 1 MiB more), never one of the length its header claims before the
 * bytes come.
 *
 * @example Round trip
 * ```ts
 * import { MessageCodec, MessageType } from "@nodewire/client/protocol";
 * const codec = new MessageCodec();
 * const bytes = codec.encode({
 *   type: MessageType.Request,
 *   flags: 0,
 *   sequence: 1,
 *   payload: new TextEncoder().encode("hi"),
 * });
 * codec.decode(bytes, (message) => console.log(message.sequence)); // 1
 * ```
 */
export class MessageCodec {
  /** Largest payload accepted or produced, in bytes. */
  readonly maxFrameSize: number;
  #copyBelow = 0;

  #failure: ProtocolError | undefined;
  // Partial frame state, used only while a frame spans chunks.
  #header = new Uint8Array(HEADER_SIZE);
  #headerFill = 0;
  // The payload so far, in a buffer that grows as its bytes arrive (see
  // room()), with the length its header announced.
  #pending: Uint8Array | undefined;
  #payloadFill = 0;
  #payloadLength = 0;
  // The header most recently parsed, or of the frame pending.
  #type = 0;
  #flags = 0;
  #sequence = 0;

  /**
   * Creates a codec accepting payloads up to `maxFrameSize` bytes.
   *
   * @throws {InvalidArgumentError} unless it is an integer from 0 to
   * {@linkcode MAX_FRAME_SIZE_LIMIT}.
   */
  constructor(maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = integerIn(
      "maxFrameSize",
      maxFrameSize,
      MAX_FRAME_SIZE_LIMIT,
      "MessageCodec",
    );
  }

  /**
   * Payloads shorter than this many bytes are copied out of their chunk
   * instead of handed out as views into it: an integer from 0 (the
   * default: never) to 1024. A connection sets it
   * from its channel: on Bun a small fresh array costs less than a view,
   * and a copy does not keep the whole chunk alive for as long as the
   * caller keeps the payload.
   *
   * @throws {InvalidArgumentError} when set to anything else.
   */
  get copyBelow(): number {
    return this.#copyBelow;
  }

  set copyBelow(value: number) {
    this.#copyBelow = checkCopyBelow(value);
  }

  /**
   * Encodes one message into a new buffer.
   *
   * @throws {ProtocolError} when the payload exceeds `maxFrameSize` or a
   * header field is invalid.
   * @throws {InvalidArgumentError} for a message that is no object or
   * whose payload is no Uint8Array.
   */
  encode(message: Message): Uint8Array {
    const method = "MessageCodec.encode";
    const { type, flags, sequence, payload } = fieldsOf<Message>(
      method,
      "message",
      message,
      MESSAGE_FIELDS,
    );
    if (!(payload instanceof Uint8Array)) {
      throw new InvalidArgumentError(
        "message.payload",
        payload,
        "expected a Uint8Array",
        { method },
      );
    }
    const length = lengthOf(payload);
    this.checkLength(length);
    const out = new Uint8Array(HEADER_SIZE + length);
    writeHeader(out, 0, type, flags, sequence, length);
    out.set(payload, HEADER_SIZE);
    return out;
  }

  /**
   * Throws when a payload of `length` bytes may not be sent.
   *
   * @throws {ProtocolError} for a length over `maxFrameSize`.
   * @throws {InvalidArgumentError} for one that is no integer ≥ 0.
   */
  checkLength(length: number): void {
    if (!Number.isInteger(length) || length < 0) {
      throw new InvalidArgumentError(
        "length",
        length,
        "expected an integer ≥ 0",
        {
          method: "MessageCodec.checkLength",
        },
      );
    }
    if (length > this.maxFrameSize) {
      throw new ProtocolError(
        `payload of ${length} bytes exceeds the maximum frame size of ${this.maxFrameSize} bytes`,
      );
    }
  }

  /**
   * Feeds a chunk of the stream and calls `onMessage` for every frame it
   * completes, in order. After a {@linkcode ProtocolError} the stream is
   * unusable and every later call throws the same error; so it is after
   * `onMessage` throws (its error goes to the caller), since the rest of
   * the chunk was left unread.
   *
   * @throws {ProtocolError} for a bad version, an unknown type, reserved
   * flags, an out-of-range sequence or an oversized length. The length is
   * checked before anything of that size is allocated.
   * @throws {InvalidArgumentError} for a chunk that is no Uint8Array or
   * an `onMessage` that is no function.
   */
  decode(chunk: Uint8Array, onMessage: (message: Message) => void): void {
    if (typeof onMessage !== "function") {
      throw new InvalidArgumentError(
        "onMessage",
        onMessage,
        "expected a function",
        {
          method: "MessageCodec.decode",
        },
      );
    }
    // Set while onMessage runs: a throw there is the caller's, and it
    // leaves the rest of the chunk unread. Read on, the next chunk would be
    // taken as starting a frame, a payload's bytes as a header.
    let inHandler = false;
    try {
      this.decodeFrames(chunk, (type, flags, sequence, payload) => {
        inHandler = true;
        onMessage({ type, flags, sequence, payload });
        inHandler = false;
      });
    } catch (error) {
      // Said in onMessage's name (decodeFrames said it in onFrame's).
      if (inHandler) {
        this.#fail(
          "onMessage threw, leaving the rest of a chunk unread: the " +
            `stream's place is lost (${clipped(messageOf(error), 120)})`,
        );
      }
      throw error;
    }
  }

  /**
   * {@linkcode MessageCodec.decode} without a message object per frame:
   * `onFrame` gets the fields, which spares a connection an allocation
   * per reply. After `onFrame` throws (its error goes to the caller), the
   * stream is unusable, as after a {@linkcode ProtocolError}: the rest of
   * the chunk was left unread.
   *
   * @throws {ProtocolError} as {@linkcode MessageCodec.decode} does.
   * @throws {InvalidArgumentError} for a chunk that is no Uint8Array or an
   *   `onFrame` that is no function.
   *
   * @example
   * ```ts
   * import { MessageCodec, MessageType } from "@nodewire/client/protocol";
   * const codec = new MessageCodec();
   * const bytes = codec.encode({
   *   type: MessageType.Ping,
   *   flags: 0,
   *   sequence: 7,
   *   payload: new Uint8Array(0),
   * });
   * codec.decodeFrames(bytes, (type, _flags, sequence) => console.log(type, sequence)); // 16 7
   * ```
   */
  decodeFrames(chunk: Uint8Array, onFrame: FrameHandler): void {
    if (this.#failure) throw this.#failure;
    if (!(chunk instanceof Uint8Array)) {
      throw new InvalidArgumentError("chunk", chunk, "expected a Uint8Array");
    }
    // Once a chunk: one that is no function threw raw at the first frame.
    if (typeof onFrame !== "function") {
      throw new InvalidArgumentError("onFrame", onFrame, "expected a function");
    }
    // A throw from onFrame leaves the rest of the chunk unread: the next
    // chunk would be taken as starting a frame, a payload's bytes as a
    // header. Caught only to say so: nothing is saved per frame.
    try {
      let offset = 0;
      const end = chunk.length; // byteLength is slower on Node 20's V8
      // What a previous chunk left unfinished comes first.
      while (offset < end && (this.#headerFill > 0 || this.#pending)) {
        offset = this.#continuePartial(chunk, offset, onFrame);
      }
      // Then whole headers, parsed into locals: the hot loop of every read.
      const max = this.maxFrameSize;
      // Views are made with the constructor, not subarray(), which looks up
      // the species constructor first: 30-50 ns a reply on V8. The chunk's
      // buffer is read only for a view: on Bun a read's chunk has no buffer
      // object until one is asked for, and making it cost 3 µs a read.
      let buffer: ArrayBufferLike | undefined;
      const base = chunk.byteOffset;
      const copyBelow = this.#copyBelow;
      while (end - offset >= HEADER_SIZE) {
        const type = chunk[offset + 1];
        const flags = (chunk[offset + 2] << 8) | chunk[offset + 3];
        const hi = readU32(chunk, offset + 4);
        const length = readU32(chunk, offset + 12);
        if (
          chunk[offset] !== PROTOCOL_VERSION || !isKnownTypeNumber(type) ||
          (flags & ~KNOWN_FLAGS) !== 0 || hi > 0x1f_ffff || length > max
        ) {
          // The full check, which throws the error that names the fault.
          this.#readHeader(chunk, offset);
        }
        const sequence = hi * TWO_32 + readU32(chunk, offset + 8);
        const start = offset + HEADER_SIZE;
        if (end - start < length) {
          this.#type = type;
          this.#flags = flags;
          this.#sequence = sequence;
          const pending = splitBuffer(0, end - start, length);
          pending.set(chunk.subarray(start, end), 0);
          this.#pending = pending;
          this.#payloadFill = end - start;
          this.#payloadLength = length;
          return;
        }
        offset = start + length;
        if (length < copyBelow) {
          const copy = new Uint8Array(length);
          for (let i = 0; i < length; i++) copy[i] = chunk[start + i];
          onFrame(type, flags, sequence, copy);
        } else {
          onFrame(
            type,
            flags,
            sequence,
            new Uint8Array(buffer ??= chunk.buffer, base + start, length),
          );
        }
      }
      if (offset < end) {
        this.#header.set(chunk.subarray(offset, end), 0);
        this.#headerFill = end - offset;
      }
    } catch (error) {
      // Not the handler's: a buffer for a split frame could not be made
      // (reported as "the frame handler threw" before).
      if (error instanceof NoRoom) {
        throw this.#fail(
          `could not allocate ${error.size} bytes for a ${error.length}-byte ` +
            "frame split over reads: the stream's place is lost " +
            `(${clipped(messageOf(error.cause), 120)})`,
          error.cause,
        );
      }
      if (this.#failure === undefined) {
        this.#fail(
          "the frame handler threw, leaving the rest of a chunk unread: " +
            `the stream's place is lost (${clipped(messageOf(error), 120)})`,
        );
      }
      throw error;
    }
  }

  /** Bytes of an incomplete frame held between chunks. */
  get bufferedBytes(): number {
    return this.#headerFill + this.#payloadFill;
  }

  /**
   * Declares the end of the stream.
   *
   * @throws {ProtocolError} when the stream ended inside a frame.
   */
  end(): void {
    if (this.#failure) throw this.#failure;
    if (this.#headerFill > 0 && !this.#pending) {
      throw this.#fail(
        `stream ended inside a frame header (${this.#headerFill} of ${HEADER_SIZE} bytes)`,
      );
    }
    if (this.#pending) {
      throw this.#fail(
        `stream ended inside a frame payload (${this.#payloadFill} of ${this.#payloadLength} bytes)`,
      );
    }
  }

  #continuePartial(
    chunk: Uint8Array,
    offset: number,
    onFrame: FrameHandler,
  ): number {
    const end = chunk.byteLength;
    if (!this.#pending) {
      const take = Math.min(HEADER_SIZE - this.#headerFill, end - offset);
      this.#header.set(chunk.subarray(offset, offset + take), this.#headerFill);
      this.#headerFill += take;
      offset += take;
      if (this.#headerFill < HEADER_SIZE) return offset;
      const length = this.#readHeader(this.#header, 0);
      this.#headerFill = 0;
      if (length === 0) {
        onFrame(this.#type, this.#flags, this.#sequence, EMPTY);
        return offset;
      }
      // Stay in partial mode; the payload arrives below or in later chunks.
      this.#pending = splitBuffer(0, 0, length);
      this.#payloadFill = 0;
      this.#payloadLength = length;
    }
    let pending = this.#pending;
    const fill = this.#payloadFill;
    const length = this.#payloadLength;
    const take = Math.min(length - fill, end - offset);
    if (fill + take > pending.length) {
      const grown = splitBuffer(pending.length, fill + take, length);
      grown.set(pending.subarray(0, fill), 0);
      this.#pending = pending = grown;
    }
    pending.set(chunk.subarray(offset, offset + take), fill);
    this.#payloadFill = fill + take;
    offset += take;
    if (fill + take === length) {
      // room() never goes past the length: the buffer is the payload.
      this.#pending = undefined;
      this.#payloadFill = 0;
      onFrame(this.#type, this.#flags, this.#sequence, pending);
    }
    return offset;
  }

  /** Parses and validates a header into the fields below; returns the payload length. */
  #readHeader(bytes: Uint8Array, at: number): number {
    const fault = headerFault(bytes, at, this.maxFrameSize);
    if (fault !== undefined) throw this.#fail(fault);
    this.#type = bytes[at + 1];
    this.#flags = (bytes[at + 2] << 8) | bytes[at + 3];
    this.#sequence = readSequence(bytes, at);
    return readU32(bytes, at + 12);
  }

  #fail(message: string, cause?: unknown): ProtocolError {
    this.#failure = new ProtocolError(message, { cause });
    this.#pending = undefined;
    this.#headerFill = 0;
    this.#payloadFill = 0;
    return this.#failure;
  }
}

const EMPTY = new Uint8Array(0);
