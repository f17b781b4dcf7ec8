/**
 * The buffer of a frame split over reads: how large it is made, grown as
 * its bytes come rather than at the length its header claims, and the
 * failure to allocate it, which the decoder tells from its frame
 * handler's throw. Apart from codec.ts: the decoder's cold side, used
 * once per split frame, never per frame or per chunk.
 *
 * @module
 */

/**
 * The most of a split frame's buffer that its bytes have not yet filled
 * when it is made: a payload at most this much longer than what has come
 * gets its whole length at once (a 1 MiB reply, whatever its first read
 * held); a longer one gets what has come plus this, then doubles. With 64
 * KiB at most (9bf8f21), a 1 MiB reply went through five buffers, twice
 * the bytes allocated and copied: 27% fewer 1 MiB requests a second on
 * Node, 43% more CPU each (one process, alternating rounds). So a node
 * announcing frames it never sends makes a connection hold at most this
 * much it did not send, about what the kernel's receive buffer holds for
 * it anyway, not the 16 MiB it may claim.
 */
export const SPLIT_FRAME_FIRST_ROOM = 1024 * 1024;

/**
 * What {@linkcode splitBuffer} throws when the engine cannot allocate:
 * caught in decodeFrames, which tells it from the frame handler's throw.
 */
export class NoRoom {
  constructor(
    readonly size: number,
    readonly length: number,
    readonly cause: unknown,
  ) {}
}

/**
 * A split frame's buffer, sized by {@linkcode room}. Once per split frame
 * (never per frame or per chunk), and a try costs nothing unless it throws.
 */
export function splitBuffer(
  current: number,
  needed: number,
  length: number,
): Uint8Array {
  const size = room(current, needed, length);
  try {
    return new Uint8Array(size);
  } catch (cause) {
    throw new NoRoom(size, length, cause);
  }
}

/**
 * The size of a split frame's buffer, now `current` bytes, that must take
 * `needed` bytes of a payload of `length`: what has come plus
 * {@linkcode SPLIT_FRAME_FIRST_ROOM}, or double the buffer, never past
 * the length. A header's length is a claim: reserved at once, a node
 * announcing 16 MiB frames on many connections, and sending no more,
 * would make the client hold memory that never arrives. Grown as bytes
 * do, a buffer is at most twice what arrived or 1 MiB more, and the copies
 * as it grows add up to less than the payload.
 */
function room(current: number, needed: number, length: number): number {
  return Math.min(
    length,
    Math.max(current * 2, needed + SPLIT_FRAME_FIRST_ROOM),
  );
}
