/**
 * The send queue shared by the adapters whose runtime does not buffer
 * writes for us (Deno's async partial `write`, Bun's short `write`) and by
 * the in-memory pipe.
 *
 * @module
 */

/**
 * Queued bytes above which `write` returns false. 1 MiB holds many
 * pipelined frames, so normal traffic never pauses, while a runaway writer
 * is stopped before it eats memory.
 */
export const HIGH_WATER_MARK = 1024 * 1024;

/**
 * Queued bytes below which `drained()` resolves. A quarter of the high mark
 * leaves the socket enough queued to stay busy while the writer wakes up.
 */
export const LOW_WATER_MARK = 256 * 1024;

/**
 * Largest buffer {@linkcode WriteQueue.peek} builds by copying small chunks
 * together: big enough to turn a tick's frames into one syscall, small
 * enough that a backlog is not copied wholesale.
 */
export const COALESCE_LIMIT = 128 * 1024;

/**
 * Chunks at least this large are never copied by
 * {@linkcode WriteQueue.peek}: they leave in a write of their own. Copying
 * pays for itself only by turning many small writes into one syscall; a
 * large payload the connection handed over as its own chunk (see
 * `FrameWriter`) would be copied for nothing.
 */
export const COPY_BELOW = 16 * 1024;

/**
 * Why a channel gives up when `peek()` hands it an empty chunk: a queued
 * payload's buffer was detached.
 */
export const DETACHED = "a payload's buffer was detached (transferred) " +
  "while queued to be sent: its frame cannot be completed";

/**
 * A FIFO of byte chunks with a byte count, high and low water marks and
 * waiters for the low mark.
 */
export class WriteQueue {
  /** Bytes above which `push` returns false. */
  readonly highWaterMark: number;
  /** Bytes below which `drained()` resolves. */
  readonly lowWaterMark: number;
  #chunks: Uint8Array[] = [];
  // Index of the first live chunk: shifting a long array is O(n).
  #head = 0;
  #size = 0;
  #waiters: (() => void)[] = [];

  /** Creates an empty queue with the given marks. */
  constructor(
    highWaterMark: number = HIGH_WATER_MARK,
    lowWaterMark: number = LOW_WATER_MARK,
  ) {
    this.highWaterMark = highWaterMark;
    this.lowWaterMark = Math.min(lowWaterMark, highWaterMark);
  }

  /** Bytes queued. */
  get size(): number {
    return this.#size;
  }

  /** Appends `bytes` (kept, not copied). Returns false above the high mark. */
  push(bytes: Uint8Array): boolean {
    if (bytes.length > 0) {
      this.#chunks.push(bytes);
      this.#size += bytes.length;
    }
    return this.#size < this.highWaterMark;
  }

  /** Removes and returns the first chunk, as pushed. */
  shift(): Uint8Array | undefined {
    if (this.#head === this.#chunks.length) return undefined;
    const chunk = this.#chunks[this.#head++];
    this.#size -= chunk.length;
    this.#compact();
    this.#wake();
    return chunk;
  }

  /**
   * The bytes to send next, without removing them. Small leading chunks
   * (each under {@linkcode COPY_BELOW} bytes) are copied into one buffer of
   * at most `limit` bytes, which replaces them in the queue, so a partial
   * write can resume from it; a large chunk is returned as it was pushed.
   * Empty while `size` is not 0: the next chunk's buffer was detached
   * after it was pushed, and the stream cannot be completed.
   */
  peek(limit: number = COALESCE_LIMIT): Uint8Array {
    const chunks = this.#chunks;
    const head = this.#head;
    if (head === chunks.length) return new Uint8Array(0);
    const first = chunks[head];
    // Empty, though only non-empty chunks are kept: its buffer was
    // detached (transferred) since, and its bytes are gone. Handed over
    // as it is, never merged away, so that the writer sees the stream
    // cannot be completed (its frame's header already left).
    if (first.length >= COPY_BELOW || first.length === 0) return first;
    let end = head + 1;
    let total = first.length;
    while (
      end < chunks.length && chunks[end].length !== 0 &&
      chunks[end].length < COPY_BELOW && total + chunks[end].length <= limit
    ) {
      total += chunks[end].length;
      end++;
    }
    if (end === head + 1) return first;
    const merged = new Uint8Array(total);
    let offset = 0;
    for (let i = head; i < end; i++) {
      merged.set(chunks[i], offset);
      offset += chunks[i].length;
    }
    chunks.splice(head, end - head, merged);
    return merged;
  }

  /** Drops the first `count` bytes, which were sent. */
  consume(count: number): void {
    let left = Math.min(count, this.#size);
    this.#size -= left;
    const chunks = this.#chunks;
    while (left > 0) {
      const chunk = chunks[this.#head];
      if (chunk.length <= left) {
        left -= chunk.length;
        this.#head++;
      } else {
        chunks[this.#head] = chunk.subarray(left);
        left = 0;
      }
    }
    this.#compact();
    this.#wake();
  }

  /** Resolves once fewer than `lowWaterMark` bytes are queued. */
  drained(): Promise<void> {
    if (this.#size < this.lowWaterMark) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Drops everything queued and releases every `drained()` waiter. */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#size = 0;
    this.#wake();
  }

  #compact(): void {
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }

  #wake(): void {
    if (this.#waiters.length === 0 || this.#size >= this.lowWaterMark) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
