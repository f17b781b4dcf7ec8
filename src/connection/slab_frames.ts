/**
 * The frames in a frame writer's slab (frame_writer.ts): a small payload's
 * copy into it, and reading back the headers it wrote to find a frame to
 * take back. Apart from the writer, whose class is its slab's life cycle.
 *
 * @module
 */

import { readU32 } from "../protocol/header_bytes.ts";
import { HEADER_SIZE, MessageType } from "../protocol/frame.ts";

/**
 * Payloads up to this size are copied by a loop (four bytes a turn), not
 * `set()`, whose fixed cost is the larger one for them on JavaScriptCore
 * (6 against 12 ns for 17 bytes) and about the same on V8 (11-14 against
 * 10-13 ns), where a loop of one byte a turn costs 15-19.
 */
export const COPY_LOOP_BYTES = 32;

/** Copies `length` bytes of a small `payload` into `slab` at `at`. */
export function copySmall(
  payload: Uint8Array,
  length: number,
  slab: Uint8Array,
  at: number,
): void {
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    slab[at + i] = payload[i];
    slab[at + i + 1] = payload[i + 1];
    slab[at + i + 2] = payload[i + 2];
    slab[at + i + 3] = payload[i + 3];
  }
  for (; i < length; i++) slab[at + i] = payload[i];
}

// Reading back the headers writeHeaderUnchecked wrote (see
// docs/PROTOCOL.md): type at byte 1, payload length at 12.

/**
 * How many unflushed frames {@linkcode FrameWriter.withdraw} looks at, at
 * most, for the one to take back: a bound on its cost when many are taken
 * back out of order.
 */
export const WITHDRAW_LOOKS = 1024;

/** The type a frame taken back is marked with: no message has it. */
export const WITHDRAWN = 0;

/** Where the first frame from `at` on that is not taken back starts. */
export function skipWithdrawn(
  slab: Uint8Array,
  at: number,
  end: number,
): number {
  while (at < end && slab[at + 1] === WITHDRAWN) {
    at += HEADER_SIZE + readU32(slab, at + 12);
  }
  return at;
}

/** Whether the frame at `at` is one a request in flight waits on. */
export function isRequestAt(slab: Uint8Array, at: number): boolean {
  const type = slab[at + 1];
  return type === MessageType.Request || type === MessageType.Ping;
}
