/**
 * The requests in flight on one connection, found by sequence number.
 *
 * @module
 */

/** What a {@linkcode PendingTable} holds: anything with a sequence number. */
export interface Sequenced {
  /** Unique on its connection, handed out in increasing order. */
  readonly sequence: number;
}

// Small enough that an idle connection pays little for its table.
const INITIAL_CAPACITY = 16;

/**
 * Pending entries by sequence number.
 *
 * A connection hands out sequence numbers in order, so what is in flight
 * is nearly always a run of consecutive numbers. A ring indexed by the low
 * bits of the sequence then holds each entry in one array slot, where a
 * `Map` costs about 37 bytes an entry on V8, and a lookup is one index and
 * one comparison. An entry still pending when the ring comes round to its
 * slot again (one long timeout among many short requests) moves to an
 * overflow map, and the ring doubles only while it is at least half full,
 * so its size follows the number in flight (at most four times it), not
 * the distance between the oldest and the newest sequence.
 *
 * It shrinks only when it empties after a busy period that used less than
 * a quarter of it, and then to fit that period. Under load, replies often
 * empty a connection's table for a moment before the next requests go out;
 * shrinking at every such moment would regrow the ring slot-doubling by
 * slot-doubling each time. A burst's ring stays until the next, quieter
 * period (a heartbeat ping is enough) ends.
 */
export class PendingTable<E extends Sequenced> {
  #slots: Array<E | undefined> = new Array(INITIAL_CAPACITY).fill(undefined);
  #mask = INITIAL_CAPACITY - 1;
  // Entries displaced from the ring by a newer one; rarely more than none.
  #overflow: Map<number, E> | undefined;
  #size = 0;
  // Most entries held at once since the table was last empty.
  #peak = 0;

  /** How many entries are held. */
  get size(): number {
    return this.#size;
  }

  /** The entry with this sequence number, if held. */
  get(sequence: number): E | undefined {
    const entry = this.#slots[sequence & this.#mask];
    if (entry !== undefined && entry.sequence === sequence) return entry;
    return this.#overflow?.get(sequence);
  }

  /**
   * Adds `entry`; its sequence number must not be held already. Its slot
   * free, the common case, in a few bytes of bytecode so that the request
   * path inlines it; the rest is apart.
   */
  add(entry: E): void {
    const index = entry.sequence & this.#mask;
    if (this.#slots[index] !== undefined) return this.#addAside(entry);
    this.#slots[index] = entry;
    if (++this.#size > this.#peak) this.#peak = this.#size;
  }

  /** `entry`'s slot is taken: the occupant moves aside, or the ring grows. */
  #addAside(entry: E): void {
    for (;;) {
      const index = entry.sequence & this.#mask;
      const occupant = this.#slots[index];
      if (occupant === undefined) {
        this.#slots[index] = entry;
        break;
      }
      if (this.#size < this.#slots.length >>> 1) {
        // A long-pending entry in the way: it moves aside, the ring stays.
        (this.#overflow ??= new Map()).set(occupant.sequence, occupant);
        this.#slots[index] = entry;
        break;
      }
      this.#resize(this.#slots.length * 2);
    }
    if (++this.#size > this.#peak) this.#peak = this.#size;
  }

  /**
   * Removes `entry`; false when it was not held (already removed). The
   * common case (in its slot, others still held) is kept to a few bytes of
   * bytecode so that the reply path inlines it; the rest is apart.
   */
  delete(entry: E): boolean {
    const index = entry.sequence & this.#mask;
    if (this.#slots[index] !== entry) return this.#deleteAside(entry);
    this.#slots[index] = undefined;
    if (--this.#size === 0) this.#emptied();
    return true;
  }

  /** `entry` is not in its slot: moved aside, or not held. */
  #deleteAside(entry: E): boolean {
    if (this.#overflow?.get(entry.sequence) !== entry) return false;
    this.#overflow.delete(entry.sequence);
    if (this.#overflow.size === 0) this.#overflow = undefined;
    if (--this.#size === 0) this.#emptied();
    return true;
  }

  /** The last entry left: a ring grown for a burst shrinks to fit. */
  #emptied(): void {
    const peak = this.#peak;
    this.#peak = 0;
    if (this.#slots.length > Math.max(INITIAL_CAPACITY, 4 * peak)) {
      let fit = INITIAL_CAPACITY;
      while (fit < 2 * peak) fit *= 2;
      this.#resize(fit);
    }
  }

  /**
   * Calls `visit` for every entry held, in no particular order, without
   * allocating; `visit` must not add or remove entries.
   */
  forEach(visit: (entry: E) => void): void {
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i++) {
      const entry = slots[i];
      if (entry !== undefined) visit(entry);
    }
    this.#overflow?.forEach(visit);
  }

  /** Every entry held, in sequence order. */
  values(): E[] {
    const entries: E[] = [];
    for (const entry of this.#slots) {
      if (entry !== undefined) entries.push(entry);
    }
    if (this.#overflow) entries.push(...this.#overflow.values());
    return entries.sort((a, b) => a.sequence - b.sequence);
  }

  /** The ring's length (for tests of how it grows and shrinks). */
  get capacity(): number {
    return this.#slots.length;
  }

  #resize(capacity: number): void {
    const old = this.#slots;
    this.#slots = new Array(capacity).fill(undefined);
    this.#mask = capacity - 1;
    // Distinct slots modulo n stay distinct modulo 2n, so growing never
    // collides; shrinking only happens when the ring is empty.
    for (const entry of old) {
      if (entry !== undefined) this.#slots[entry.sequence & this.#mask] = entry;
    }
  }
}
