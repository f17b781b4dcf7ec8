/**
 * Frame boundaries in a proxied byte stream, followed without decoding it:
 * how the fault proxy knows where "the middle of a frame" is, for
 * `closeMidFrame`. Apart from the pipes because it reads only the wire
 * format's header, not the proxy's faults or clock.
 *
 * @module
 */

import { readU32 } from "../src/protocol/header_bytes.ts";
import { HEADER_SIZE } from "../src/protocol/frame.ts";

/**
 * Follows frame boundaries in a byte stream without decoding it, so the
 * proxy knows where "the middle of a frame" is.
 */
export class FrameTracker {
  /** Absolute offset of the next byte. */
  offset = 0;
  #header = new Uint8Array(HEADER_SIZE);
  #headerFill = 0;
  #payloadLeft = 0;

  /**
   * Walks `chunk`; for each frame that starts in it, calls `onStart` with
   * the frame's absolute start offset and its payload length when the
   * whole header is inside this chunk (else `undefined`).
   */
  walk(
    chunk: Uint8Array,
    onStart: (start: number, length: number | undefined) => void,
  ): void {
    const base = this.offset;
    let i = 0;
    while (i < chunk.byteLength) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, chunk.byteLength - i);
        this.#payloadLeft -= take;
        i += take;
        continue;
      }
      if (this.#headerFill === 0) {
        const whole = chunk.byteLength - i >= HEADER_SIZE;
        onStart(base + i, whole ? readU32(chunk, i + 12) : undefined);
      }
      const take = Math.min(
        HEADER_SIZE - this.#headerFill,
        chunk.byteLength - i,
      );
      this.#header.set(chunk.subarray(i, i + take), this.#headerFill);
      this.#headerFill += take;
      i += take;
      if (this.#headerFill === HEADER_SIZE) {
        this.#headerFill = 0;
        this.#payloadLeft = readU32(this.#header, 12);
      }
    }
    this.offset = base + chunk.byteLength;
  }
}
