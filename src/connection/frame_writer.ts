/**
 * Batches outgoing frames: each frame is encoded straight into a slab, and
 * everything encoded in one tick goes to the socket in one write.
 *
 * @module
 */

import type { ByteChannel } from "../runtime/types.ts";
import { writeHeaderUnchecked } from "../protocol/codec.ts";
import { HEADER_SIZE } from "../protocol/frame.ts";

// A slab starts small, so an idle connection costs next to nothing, and
// doubles each time one fills, up to the size where a tick's burst of frames
// fits in one write.
const FIRST_SLAB = 1024;
const MAX_SLAB = 64 * 1024;

/**
 * Encodes frames into a slab and flushes once per microtask. Bytes handed
 * to the channel are never written again: the slab only grows forward and
 * is replaced when full.
 */
export class FrameWriter {
  readonly #channel: ByteChannel;
  readonly #onDrained: () => void;
  #slab = new Uint8Array(FIRST_SLAB);
  #start = 0;
  #end = 0;
  #scheduled = false;
  #congested = false;

  /**
   * Writes to `channel`; calls `onDrained` when a congested channel has
   * drained again.
   */
  constructor(channel: ByteChannel, onDrained: () => void = () => {}) {
    this.#channel = channel;
    this.#onDrained = onDrained;
  }

  /** Whether the channel asked us to stop writing until it drains. */
  get congested(): boolean {
    return this.#congested;
  }

  /** Bytes encoded but not yet handed to the channel. */
  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  /**
   * Encodes one frame for the next flush. The fields are not validated:
   * callers pass message-type constants and sequence numbers they made or
   * decoded (`MessageCodec.encode` is the validating path).
   */
  push(
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    const need = HEADER_SIZE + payload.byteLength;
    if (this.#end + need > this.#slab.byteLength) {
      this.flush();
      // The old slab now belongs to the channel; start a fresh one.
      const grown = Math.min(MAX_SLAB, this.#slab.byteLength * 2);
      this.#slab = new Uint8Array(Math.max(grown, need));
      this.#start = this.#end = 0;
    }
    writeHeaderUnchecked(
      this.#slab,
      this.#end,
      type,
      flags,
      sequence,
      payload.byteLength,
    );
    this.#slab.set(payload, this.#end + HEADER_SIZE);
    this.#end += need;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** Hands everything encoded so far to the channel now. */
  flush = (): void => {
    this.#scheduled = false;
    if (this.#end === this.#start) return;
    const bytes = this.#slab.subarray(this.#start, this.#end);
    this.#start = this.#end;
    if (!this.#channel.write(bytes) && !this.#congested) {
      this.#congested = true;
      this.#channel.drained().then(() => {
        this.#congested = false;
        this.#onDrained();
      });
    }
  };
}
