/**
 * Packs frames into datagrams for a session that agreed `"udp-batch"`
 * (docs/PROTOCOL.md, "UDP"): frames go back to back after the session
 * token, in order, a new datagram starting only when the next frame would
 * push the current one past the sender's limit. Each send of a datagram
 * costs a system call and, on every runtime, a trip through its event
 * machinery, several microseconds that do not depend on the size: a tick's
 * worth of small frames in one datagram is where UDP's throughput comes
 * from.
 *
 * When to flush is the caller's choice (the client flushes once per
 * microtask, the reference node once per batch of received datagrams).
 *
 * @module
 */

import { lengthOf } from "./payload_length.ts";
import { readSequence, readU32, writeHeaderUnchecked } from "./header_bytes.ts";
import { InvalidArgumentError } from "../errors.ts";
import {
  checkFrame,
  DATAGRAM_OVERHEAD,
  MAX_DATAGRAM_SIZE,
  UDP_TOKEN_SIZE,
} from "./datagram.ts";
import { HEADER_SIZE, MAX_SEQUENCE } from "./frame.ts";

/**
 * Datagrams are cut from slabs of at least this many bytes, so a flush
 * that sends a few small frames does not allocate.
 */
const MIN_SLAB = 16 * 1024;

/** The public method a push's refusal names. */
const PUSH = "DatagramPacker.push";

/**
 * The packer of {@linkcode DatagramPacker}, without the checks of a
 * frame's header fields: for the UDP transport and the reference node,
 * which push message-type constants and sequence numbers they made, one
 * frame at a time on their send paths. Its payload checks stay: they
 * keep the slab whole.
 */
export class FramePacker {
  readonly #token: Uint8Array;
  readonly #limit: number;
  readonly #emit: (datagram: Uint8Array) => void;
  #slab: Uint8Array | undefined;
  // The datagram being built is #slab[#start, #end); its token is written
  // once its first frame arrives.
  #start = 0;
  #end = 0;
  #frames = 0;

  /**
   * Packs for the session of `token` (16 bytes) into datagrams of at most
   * `limit` bytes, token and headers included.
   *
   * @throws {InvalidArgumentError} for a token of another size, a limit
   * that is no integer from 32 to 65507, or an `emit` that is no function.
   */
  constructor(
    token: Uint8Array,
    limit: number,
    emit: (datagram: Uint8Array) => void,
  ) {
    // Checked before a slab of `limit` bytes (1e12?) is ever allocated.
    const refuse = (argument: string, value: unknown, expected: string) =>
      new InvalidArgumentError(argument, value, expected, {
        method: "DatagramPacker",
      });
    // isView refuses a proxy; lengthOf reads no getter of the token's.
    if (
      !ArrayBuffer.isView(token) || !(token instanceof Uint8Array) ||
      lengthOf(token) !== UDP_TOKEN_SIZE
    ) {
      throw refuse("token", token, `expected ${UDP_TOKEN_SIZE} bytes`);
    }
    if (
      !Number.isInteger(limit) || limit < DATAGRAM_OVERHEAD ||
      limit > MAX_DATAGRAM_SIZE
    ) {
      throw refuse(
        "limit",
        limit,
        `expected an integer from ${DATAGRAM_OVERHEAD} to ${MAX_DATAGRAM_SIZE}`,
      );
    }
    if (typeof emit !== "function") {
      throw refuse("emit", emit, "expected a function");
    }
    // A copy: the caller's array may change, the session's token not.
    this.#token = new Uint8Array(token);
    this.#limit = limit;
    this.#emit = emit;
  }

  /** Frames waiting for the next flush. */
  get pending(): number {
    return this.#frames;
  }

  /**
   * Adds one frame; a frame that would overflow the datagram being built
   * finishes it first (handed to `emit` once this frame is in the next
   * one: a push from inside `emit` is held to the limit too). The
   * header's fields are not validated.
   *
   * @throws {InvalidArgumentError} for a payload that is no Uint8Array, or
   *   too large for a datagram on its own (`DATAGRAM_OVERHEAD` + its length
   *   over the limit).
   */
  push(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    // Named as DatagramPacker.push, the only door these refusals are met
    // at (the UDP route and the node check the size before), as the
    // constructor's are named as DatagramPacker's.
    if (!ArrayBuffer.isView(payload) || !(payload instanceof Uint8Array)) {
      throw new InvalidArgumentError(
        "payload",
        payload,
        "expected a Uint8Array",
        { method: PUSH },
      );
    }
    const length = lengthOf(payload); // the real one: see codec.ts
    if (DATAGRAM_OVERHEAD + length > this.#limit) {
      throw new InvalidArgumentError(
        "payload",
        `${length} bytes`,
        `expected at most ${
          this.#limit - DATAGRAM_OVERHEAD
        } (a datagram of ${this.#limit})`,
        { method: PUSH },
      );
    }
    const need = HEADER_SIZE + length;
    // The datagram it would overflow is finished now but emitted only once
    // this frame is in: a push from inside `emit` then finds the packer
    // whole, and is held to the limit with this frame counted (emitted
    // first, it was written after that frame's check, and the two went
    // out together over the limit).
    let finished: Uint8Array | undefined;
    if (this.#frames > 0 && this.#end + need - this.#start > this.#limit) {
      finished = this.#slab!.subarray(this.#start, this.#end);
      this.#start = this.#end;
      this.#frames = 0;
    }
    if (this.#frames === 0) this.#begin(need);
    else if (this.#end + need > this.#slab!.byteLength) this.#move(need);
    const slab = this.#slab!;
    writeHeaderUnchecked(
      slab,
      this.#end,
      type,
      flags,
      sequence,
      length,
    );
    slab.set(payload, this.#end + HEADER_SIZE);
    this.#end += need;
    this.#frames++;
    if (finished !== undefined) this.#emit(finished);
  }

  /** Hands the datagram being built, if it has a frame, to `emit`. */
  flush(): void {
    if (this.#frames === 0) return;
    const datagram = this.#slab!.subarray(this.#start, this.#end);
    this.#start = this.#end;
    this.#frames = 0;
    this.#emit(datagram);
  }

  /**
   * Takes the frame with `sequence` back out of the datagram being built,
   * so that it is never sent (its request was aborted before the flush);
   * false when it is not there (already emitted, or never pushed). A
   * datagram left with no frame is not emitted.
   */
  withdraw(sequence: number): boolean {
    if (this.#frames === 0) return false;
    const slab = this.#slab!;
    for (let at = this.#start + UDP_TOKEN_SIZE; at < this.#end;) {
      const next = at + HEADER_SIZE + readU32(slab, at + 12);
      if (readSequence(slab, at) === sequence) {
        slab.copyWithin(at, next, this.#end);
        this.#end -= next - at;
        // Without a frame, the token goes too: the next push starts over.
        if (--this.#frames === 0) this.#end = this.#start;
        return true;
      }
      at = next;
    }
    return false;
  }

  /**
   * Drops the datagram being built, which is then never emitted, and
   * returns its frames' sequence numbers (undefined when it is empty).
   */
  discard(): Set<number> | undefined {
    if (this.#frames === 0) return undefined;
    const slab = this.#slab!;
    const sequences = new Set<number>();
    for (let at = this.#start + UDP_TOKEN_SIZE; at < this.#end;) {
      sequences.add(readSequence(slab, at));
      at += HEADER_SIZE + readU32(slab, at + 12);
    }
    this.#start = this.#end;
    this.#frames = 0;
    return sequences;
  }

  /** Starts a datagram whose first frame takes `need` bytes. */
  #begin(need: number): void {
    const size = UDP_TOKEN_SIZE + need;
    let slab = this.#slab;
    if (slab === undefined || this.#end + size > slab.byteLength) {
      // The old slab, if any, now belongs to the datagrams cut from it.
      slab = this.#slab = this.#newSlab(size);
      this.#start = this.#end = 0;
    }
    slab.set(this.#token, this.#end);
    this.#end += UDP_TOKEN_SIZE;
  }

  /**
   * The slab ends before the datagram being built would: carries it over
   * to a new slab (at most one datagram's bytes, and rare: a slab holds
   * many datagrams).
   */
  #move(need: number): void {
    const built = this.#slab!.subarray(this.#start, this.#end);
    const slab = this.#newSlab(built.byteLength + need);
    slab.set(built, 0);
    this.#slab = slab;
    this.#start = 0;
    this.#end = built.byteLength;
  }

  #newSlab(size: number): Uint8Array {
    return new Uint8Array(Math.max(MIN_SLAB, this.#limit, size));
  }
}

/**
 * Builds datagrams of several frames each and hands every finished one to
 * `emit`. The bytes handed over are never written again (the slab only
 * grows forward and is replaced when full), so a runtime may send them
 * asynchronously. Each frame's fields are checked as `encodeDatagram`
 * checks them: to fit the header, not to follow the protocol. A frame of
 * an unknown type or with a reserved flag bit set is packed (a tool that
 * tests a receiver needs it), and makes a receiver (the client's UDP
 * route, the reference node) drop the whole datagram it went in, the
 * other frames included: see "Several frames per datagram" in
 * docs/PROTOCOL.md.
 *
 * @example
 * ```ts
 * import { DatagramPacker, MessageType } from "@nodewire/client/protocol";
 * const sent: Uint8Array[] = [];
 * const packer = new DatagramPacker(new Uint8Array(16), 1200, (d) => sent.push(d));
 * packer.push(MessageType.Ping, 0, 1, new Uint8Array(0));
 * packer.push(MessageType.Ping, 0, 2, new Uint8Array(0));
 * packer.flush();
 * console.log(sent.length, sent[0].byteLength); // 1 48
 * ```
 */
export class DatagramPacker {
  readonly #packer: FramePacker;

  /**
   * Packs for the session of `token` (16 bytes) into datagrams of at most
   * `limit` bytes, token and headers included.
   *
   * @throws {InvalidArgumentError} for a token of another size, a limit
   * that is no integer from 32 to 65507, or an `emit` that is no function.
   */
  constructor(
    token: Uint8Array,
    limit: number,
    emit: (datagram: Uint8Array) => void,
  ) {
    this.#packer = new FramePacker(token, limit, emit);
  }

  /** Frames waiting for the next flush. */
  get pending(): number {
    return this.#packer.pending;
  }

  /**
   * Adds one frame; a frame that would overflow the datagram being built
   * finishes it first (handed to `emit` once this frame is in the next
   * one: a push from inside `emit` is held to the limit too). An unknown
   * `type` or a reserved bit in `flags` is packed as given, and the
   * receiver then drops the whole datagram, every frame in it.
   *
   * @throws {InvalidArgumentError} naming the field, for a type, flags or
   *   sequence that does not fit its field of the header (written
   *   unchecked, they put another frame on the wire than the one given), a
   *   payload that is no Uint8Array, or one too large for a datagram on
   *   its own (`DATAGRAM_OVERHEAD` + its length over the limit). Nothing
   *   is packed then.
   */
  push(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    checkFrame(PUSH, "", type, flags, sequence, payload);
    this.#packer.push(type, flags, sequence, payload);
  }

  /** Hands the datagram being built, if it has a frame, to `emit`. */
  flush(): void {
    this.#packer.flush();
  }

  /**
   * Takes the frame with `sequence` back out of the datagram being built,
   * so that it is never sent (its request was aborted before the flush);
   * false when it is not there (already emitted, or never pushed). A
   * datagram left with no frame is not emitted.
   *
   * @throws {InvalidArgumentError} for a sequence that is no integer from
   *   0 to `MAX_SEQUENCE`, as `push` refuses it: `"1"` or `1.5` answered
   *   false with the frame still there, taken for sent already.
   */
  withdraw(sequence: number): boolean {
    if (
      !Number.isInteger(sequence) || !(sequence >= 0) ||
      sequence > MAX_SEQUENCE
    ) {
      throw new InvalidArgumentError(
        "sequence",
        sequence,
        `expected an integer in 0–${MAX_SEQUENCE}`,
        { method: "DatagramPacker.withdraw" },
      );
    }
    return this.#packer.withdraw(sequence);
  }

  /**
   * Drops the datagram being built, which is then never emitted, and
   * returns its frames' sequence numbers (undefined when it is empty).
   */
  discard(): Set<number> | undefined {
    return this.#packer.discard();
  }
}
