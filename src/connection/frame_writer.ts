/**
 * Batches outgoing frames: each frame is encoded straight into a slab, and
 * what is encoded in one tick goes to the socket in one write, or in a few
 * when the tick carries many (see write_parts.ts). A large
 * payload is not copied: its header ends the slab, which goes at once, and
 * the payload follows as a chunk of its own.
 *
 * @module
 */

import type { ByteChannel } from "../runtime/types.ts";
import { COPY_BELOW } from "../runtime/write_queue.ts";
import { lengthOf } from "../protocol/payload_length.ts";
import {
  readSequence,
  readU32,
  writeHeaderInto,
} from "../protocol/header_bytes.ts";
import { HEADER_SIZE } from "../protocol/frame.ts";
import { fixedView } from "./payload.ts";
import { reportThrow } from "./uncaught.ts";
import { MIN_PART_FRAMES, SMALL_PARTS_UP_TO } from "./write_parts.ts";
import {
  COPY_LOOP_BYTES,
  copySmall,
  isRequestAt,
  skipWithdrawn,
  WITHDRAW_LOOKS,
  WITHDRAWN,
} from "./slab_frames.ts";

// A slab starts small, so an idle connection costs next to nothing, and
// doubles each time one fills, up to the size where a tick's burst of frames
// fits in one write.
const FIRST_SLAB = 1024;
const MAX_SLAB = 64 * 1024;

/** A writer not told what is in flight never sends a tick in parts. */
const unknownInFlight = (): number => Infinity;

/**
 * Payloads at least this large are handed to the channel as they are,
 * after their header, instead of being copied into the slab. Below it a
 * copy is cheaper than a write of its own; above it the copy is the cost
 * (a 1 MiB payload would be copied whole to gain nothing). The write
 * queue's `COPY_BELOW`, so that it does not copy such a payload either.
 */
export const DIRECT_PAYLOAD_BYTES = COPY_BELOW;

/**
 * Encodes frames into a slab and flushes once per microtask (in parts, for
 * a tick of many frames). Bytes handed
 * to the channel are not written again while it may hold them: the slab
 * grows forward and is replaced when full, or starts over once a channel
 * that `releasesWrites` has none buffered. Until the flush, the slab's
 * unflushed part holds whole frames (header and payload; a large payload
 * is never in it), which is what lets a request that fails before the
 * flush be taken back.
 */
export class FrameWriter {
  readonly #channel: ByteChannel;
  readonly #onDrained: () => void;
  readonly #onBroken: (error: unknown) => void;
  #slab = new Uint8Array(FIRST_SLAB);
  // The slab's headers are written through this view (see writeHeaderInto):
  // replaced with the slab, every slab having a buffer of its own.
  #view = new DataView(this.#slab.buffer);
  #start = 0;
  #end = 0;
  #scheduled = false;
  #congested = false;
  // Set by hold(): congested for good, whatever the channel says.
  #held = false;
  // Frames taken back since the flush (marked, removed by the flush), and
  // where a search for the next one starts: before it all are taken back.
  #withdrawn = 0;
  #scanFrom = 0;
  // The channel lets go of written bytes once it has none buffered: the
  // slab then starts over instead of moving on to a fresh one, whose
  // allocation, first-touch page faults and collection cost more than
  // the frames it holds (Node, Bun: 7-25% of CPU per request).
  #reuse = false;
  // A channel that counts the writes it let go of (writes that complete
  // later, as Deno's do): the largest slab written before this one, and
  // how many writes there were once its last was; taken up again once the
  // channel let go of that many. Fresh 64 KiB slabs cost Deno 30% of its
  // throughput on batches of 1 KiB requests.
  #writes = 0;
  #slabWrites = 0;
  #spare: Uint8Array<ArrayBuffer> | undefined;
  #spareWrites = 0;
  // Frames pushed since the tick began, and how many make a part go out
  // before it ends (see MIN_PART_FRAMES), doubled after each part. None
  // before the first tick's end: nothing is known of the peer yet.
  readonly #inFlight: () => number;
  // The channel's `smallParts` (see SMALL_PARTS_UP_TO).
  #smallParts = false;
  #tickFrames = 0;
  #partAt = Infinity;
  // Set by discard(): the connection has ended, and nothing more goes to
  // the channel, whatever is pushed after (a batch run goes on pushing
  // once a write in its middle, a part, ended the connection under it).
  #ended = false;
  // Set while a large payload's header goes to the channel: until its
  // payload follows, nothing else may (a channel that hands a reply back
  // from inside that write runs a sink that may send, and a part or a
  // full slab went in between). What is pushed meanwhile waits for the
  // tick's end, a large payload among it copied.
  #splitting = false;

  /**
   * Writes to `channel`; calls `onDrained` when a congested channel has
   * drained again, and `onBroken` with what a custom channel's `write` or
   * `drained` threw or rejected with (the connection then ends: it
   * cannot know what reached the socket). Without `onBroken`, that is
   * reported as uncaught. `inFlight` tells how many requests the peer
   * has yet to answer, read once a tick to size its parts; without it,
   * a tick's frames go out in one write (slab permitting).
   */
  constructor(
    channel: ByteChannel,
    onDrained: () => void = () => {},
    onBroken: (error: unknown) => void = reportThrow,
    inFlight: () => number = unknownInFlight,
  ) {
    this.#inFlight = inFlight;
    this.#channel = channel;
    this.#onDrained = onDrained;
    this.#onBroken = onBroken;
    try {
      this.#reuse = channel.releasesWrites === true;
    } catch {
      // A custom channel's getter that throws: it keeps its writes.
    }
    try {
      this.#smallParts = channel.smallParts === true;
    } catch {
      // As above: a hint that cannot be read is not given.
    }
  }

  /** Whether the channel asked us to stop writing until it drains. */
  get congested(): boolean {
    return this.#congested;
  }

  /**
   * Holds back every request from now on, as a congested channel does
   * (the request path keeps their frames in the connection's queue), and
   * for good: the channel is being replaced (a TLS switch), and the next
   * writer sends them.
   */
  hold(): void {
    this.#held = true;
    this.#congested = true;
  }

  /**
   * Whether a large payload's header is being written, its payload not
   * yet (see #splitting): whoever ends the stream from inside that write
   * must wait for the payload, which follows in the same call.
   */
  get splitting(): boolean {
    return this.#splitting;
  }

  /** Bytes encoded but not yet handed to the channel. */
  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  /**
   * Encodes one frame for the next flush. The fields are not validated:
   * callers pass message-type constants and sequence numbers they made or
   * decoded (`MessageCodec.encode` is the validating path). `length` is
   * the payload's real one (see `lengthOf`), which a request path read
   * already for its checks: read once a request, not twice.
   */
  push(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
    length: number = lengthOf(payload),
  ): void {
    // The small frame, every request of a pipelined caller, in a few
    // bytes of bytecode so that the request path inlines it whole; the
    // rest is apart (#copyLarge, #firstOfTick, #part).
    if (length > COPY_LOOP_BYTES) {
      if (this.#copyLarge(type, flags, sequence, payload, length)) return;
    } else {
      const at = this.#header(type, flags, sequence, length, length);
      copySmall(payload, length, this.#slab, at);
      this.#end = at + length;
    }
    if (this.#scheduled) {
      if (++this.#tickFrames >= this.#partAt) this.#part();
    } else this.#firstOfTick();
  }

  /**
   * A payload copied with `set`, to be counted in the tick as any frame;
   * or true when it went to the channel as it is (see #pushDirect), which
   * counts nothing.
   */
  #copyLarge(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
    length: number,
  ): boolean {
    if (length >= DIRECT_PAYLOAD_BYTES && !this.#splitting) {
      this.#pushDirect(type, flags, sequence, payload);
      return true;
    }
    const at = this.#header(type, flags, sequence, length, length);
    this.#slab.set(payload, at);
    this.#end = at + length;
    return false;
  }

  /** The tick's first frame: its end is when the rest goes. */
  #firstOfTick(): void {
    this.#scheduled = true;
    this.#tickFrames = 1;
    queueMicrotask(this.#endTick);
  }

  /** A part goes now; the tick's end still flushes the rest. */
  #part(): void {
    this.#partAt *= 2;
    this.#handOver();
  }

  /**
   * No parts while a batch run is pushed (RUN_WRITE_FRAMES); `sendRun`
   * restores what it gives back (the tick's end, if the run throws).
   */
  holdParts(): number {
    const partAt = this.#partAt;
    this.#partAt = Infinity;
    return partAt;
  }

  /**
   * The run is encoded: what the tick holds goes now, in one write, and
   * its parts count afresh from here, at `partAt` again.
   */
  sendRun(partAt: number): void {
    this.#partAt = partAt;
    if (!this.#scheduled) return;
    this.#tickFrames = 0;
    this.#handOver();
  }

  /**
   * Hands everything encoded so far to the channel now; from inside the
   * write of a large payload's header, at the tick's end instead (see
   * #splitting).
   */
  flush = (): void => {
    this.#scheduled = false;
    this.#handOver();
  };

  // The tick's end: what is left goes, and the next tick's parts are
  // sized by what is in flight now (this tick's requests included).
  readonly #endTick = (): void => {
    const inFlight = this.#inFlight();
    this.#partAt = this.#smallParts && inFlight <= SMALL_PARTS_UP_TO
      ? MIN_PART_FRAMES
      : Math.max(MIN_PART_FRAMES, Math.floor(inFlight / 2));
    this.flush();
  };

  // `header`: what is handed over ends with a large payload's header,
  // whose payload the caller writes next (see #splitting).
  #handOver(header = false): void {
    if (this.#splitting) return;
    if (this.#withdrawn > 0) this.#compact();
    this.#scanFrom = this.#end;
    if (this.#end === this.#start) return;
    const bytes = this.#slab.subarray(this.#start, this.#end);
    this.#start = this.#end;
    // Counted before the write: a push from inside it that fills the slab
    // may make this slab the spare, which must then wait for this write,
    // too, to be let go of.
    this.#slabWrites = this.#writes + 1;
    this.#splitting = header;
    this.#write(bytes);
    this.#splitting = false;
    // Not over frames pushed from inside the write (a channel that hands a
    // reply over synchronously, whose sink sent the next request): they
    // wait for the next flush, which starting over would lose.
    if (this.#reuse && this.#end === this.#start && this.#idle()) {
      this.#start = this.#end = this.#scanFrom = 0;
    }
  }

  /** Whether the channel holds none of the bytes written to it. */
  #idle(): boolean {
    try {
      return this.#channel.bufferedAmount === 0;
    } catch {
      // A custom channel's getter that throws: as if it kept its writes,
      // from now on (it is not asked again).
      this.#reuse = false;
      return false;
    }
  }

  /**
   * Takes the REQUEST or PING frame with `sequence` back out of what is
   * not yet handed to the channel, so that it is never written: its request
   * failed first (a timeout, an abort). False when it is not there: already
   * handed to the channel, held back by congestion, never pushed, or not
   * among the first {@linkcode WITHDRAW_LOOKS} frames still in (then it
   * goes out, and its request counts as sent: the cautious answer). The
   * frame is marked and the flush removes it, so that thousands taken
   * back in one tick (a signal many requests share) cost a pass each, not
   * a move of the slab each.
   */
  withdraw(sequence: number): boolean {
    const slab = this.#slab;
    const end = this.#end;
    let at = this.#scanFrom;
    for (let looks = 0; at < end && looks < WITHDRAW_LOOKS; looks++) {
      const next = at + HEADER_SIZE + readU32(slab, at + 12);
      if (isRequestAt(slab, at) && readSequence(slab, at) === sequence) {
        slab[at + 1] = WITHDRAWN;
        this.#withdrawn++;
        if (at === this.#scanFrom) {
          this.#scanFrom = skipWithdrawn(slab, at, end);
        }
        return true;
      }
      at = next;
    }
    return false;
  }

  /** Removes the frames taken back from the unflushed part of the slab. */
  #compact(): void {
    const slab = this.#slab;
    let to = this.#start;
    for (let at = this.#start; at < this.#end;) {
      const next = at + HEADER_SIZE + readU32(slab, at + 12);
      if (slab[at + 1] !== WITHDRAWN) {
        if (to !== at) slab.copyWithin(to, at, next);
        to += next - at;
      }
      at = next;
    }
    this.#end = to;
    this.#withdrawn = 0;
  }

  /**
   * Drops every frame not yet handed to the channel, so that none is ever
   * written, nor any pushed from now on: the connection has ended. Returns
   * the sequence numbers of the REQUEST and PING frames dropped (their
   * requests never left), or undefined when there were none.
   */
  discard(): Set<number> | undefined {
    const slab = this.#slab;
    let dropped: Set<number> | undefined;
    for (let at = this.#start; at < this.#end;) {
      if (isRequestAt(slab, at)) {
        (dropped ??= new Set()).add(readSequence(slab, at));
      }
      at += HEADER_SIZE + readU32(slab, at + 12);
    }
    this.#start = this.#scanFrom = this.#end;
    this.#withdrawn = 0;
    this.#ended = true;
    return dropped;
  }

  /**
   * A large payload: the header goes into the slab, the slab to the
   * channel at once (keeping the frames' order), and the payload after it
   * as the caller's own bytes, which is why a caller must not change a
   * payload until its request settles.
   */
  #pushDirect(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    // The header states the length the bytes written after it really
    // have, whatever the payload's getters say now or said before.
    payload = fixedView(payload);
    // Frames taken back go first: the compaction walks frames by the
    // length their headers state, and this header's payload is not here.
    if (this.#withdrawn > 0) this.#compact();
    this.#end = this.#header(type, flags, sequence, payload.length, 0);
    this.#scheduled = false;
    this.#handOver(true);
    this.#write(payload);
  }

  /**
   * Writes a frame's header at the slab's end, with room for `room` bytes
   * of payload after it (a fresh slab when there is not), and returns
   * where the payload goes; the caller then moves the end past it.
   */
  #header(
    type: number,
    flags: number,
    sequence: number,
    length: number,
    room: number,
  ): number {
    const need = HEADER_SIZE + room;
    if (this.#end + need > this.#slab.length) this.#renew(need);
    const at = this.#end;
    writeHeaderInto(this.#view, at, type, flags, sequence, length);
    return at + HEADER_SIZE;
  }

  /**
   * The slab has no room for `need` more bytes: what it holds goes to the
   * channel, which now owns it, and a fresh one (grown, up to the largest
   * size) takes its place.
   */
  #renew(need: number): void {
    this.flush();
    const grown = Math.min(MAX_SLAB, this.#slab.length * 2);
    // Frames pushed from inside that flush's write (a reply handed back at
    // once, whose sink sent again) are not handed over: a fresh slab that
    // started empty left them behind, never written nor reported.
    if (this.#end !== this.#start) return this.#carryOver(grown, need);
    // At the largest size, a slab the channel let go of is taken up again
    // (this one, if the flush started it over, or the spare): a fresh one
    // would only cost an allocation (at 1 KiB requests, every 64 of them).
    if (
      grown === this.#slab.length &&
      (this.#end + need <= grown || this.#takeSpare())
    ) return;
    this.#use(new Uint8Array(Math.max(grown, need)));
  }

  /**
   * Takes up the spare slab if the channel let go of it, the slab in use
   * becoming the spare (for a channel that counts released writes).
   */
  #takeSpare(): boolean {
    let released = -1;
    try {
      released = this.#channel.releasedWrites ?? -1;
    } catch {
      // A getter that throws: nothing is known to be let go of.
    }
    if (released < 0) return false;
    const spare = this.#spare;
    const free = spare !== undefined && this.#spareWrites <= released;
    this.#spare = this.#slab;
    this.#spareWrites = this.#slabWrites;
    if (free) this.#use(spare);
    return free;
  }

  /**
   * Moves the frames not handed over yet to the start of a fresh slab
   * (`grown` bytes, or more to fit them and `need` after them). The slab
   * they leave may be the channel's still: it is not taken up again.
   */
  #carryOver(grown: number, need: number): void {
    const from = this.#start;
    const rest = this.#end - from;
    const scanFrom = this.#scanFrom - from;
    const slab = new Uint8Array(Math.max(grown, rest + need));
    slab.set(this.#slab.subarray(from, this.#end));
    this.#use(slab);
    this.#end = rest;
    this.#scanFrom = scanFrom;
  }

  /** Writes from now on go into `slab`, from its start. */
  #use(slab: Uint8Array<ArrayBuffer>): void {
    this.#slab = slab;
    this.#view = new DataView(slab.buffer);
    this.#start = this.#end = this.#scanFrom = 0;
  }

  #write(bytes: Uint8Array): void {
    // Ended: a request pushed since was failed as never sent, and must
    // not reach the node after all (a retry may run it elsewhere).
    if (this.#ended) return;
    this.#writes++;
    let accepted: boolean;
    try {
      accepted = this.#channel.write(bytes);
    } catch (error) {
      return this.#onBroken(error);
    }
    // One comparison, as `!accepted` was: anything but true is looked at
    // off the common path.
    if (accepted !== true) this.#notAccepted(accepted);
  }

  /**
   * A write the channel did not answer `true`: congested (`false`, or
   * another falsy answer, as before), or, from a custom channel, an async
   * write's promise: taken as accepted, its rejection ends the connection
   * as a throw does (it was an unhandled rejection, and the requests it
   * carried waited out their timeouts).
   */
  #notAccepted(accepted: unknown): void {
    if (!accepted) {
      if (!this.#congested) this.#waitForDrain();
    } else if (typeof accepted === "object" || typeof accepted === "function") {
      Promise.resolve(accepted).then(undefined, this.#onBroken);
    }
  }

  /** Holds frames back until the congested channel drains. */
  #waitForDrain(): void {
    this.#congested = true;
    let drained: Promise<void>;
    try {
      // Promise.resolve: a custom channel may answer with no promise.
      drained = Promise.resolve(this.#channel.drained());
    } catch (error) {
      return this.#onBroken(error);
    }
    drained.then(() => {
      // Held since (see hold): the next writer sends what waits.
      if (this.#held) return;
      this.#congested = false;
      this.#onDrained();
    }, this.#onBroken);
  }
}
