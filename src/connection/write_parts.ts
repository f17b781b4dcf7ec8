/**
 * How a tick's frames are cut into parts: the sizes the frame writer
 * (frame_writer.ts) hands its first part at, with the measurements that
 * chose them. Apart from the writer because they are tuning, read by its
 * tests, not its mechanics.
 *
 * @module
 */

/**
 * A tick's frames go to the channel in parts: the first once the tick has
 * as many as half the requests the peer had yet to answer at the last
 * tick's end (never fewer than this), the next at twice that count, then
 * four times, and the rest at the tick's end. Many callers awaiting a
 * request each, or a batch, otherwise settle into a lockstep: the whole
 * window goes out in one write at the tick's end, the node answers it in
 * one write while the client waits, and the client reads it whole while
 * the node waits, so neither side works while the other does. Sent in
 * two parts, the node starts on the first while the client encodes the
 * second: on loopback with the node in its own process, 256 callers went
 * from 1.5-2.0M to 2.1-2.7M requests a second on each runtime, and 64
 * callers from 0.74-0.77M to 0.97-1.08M. A burst after a quiet spell
 * starts with small parts that double, so it costs a handful of writes,
 * not one per few frames.
 *
 * Why 16: a part costs one more write and one more read on each side,
 * which pays only when the frames after it take long enough to encode.
 * The runs that measured it (callers awaiting a request each, native node
 * out of process, paired rounds, every runtime) are bistable: the same
 * code reads 2x apart from one process to the next. Against parts of at
 * least 8, sending a tick of 16 frames whole won by 40-85% in 7 runs of
 * 18 and lost by 1-20% in the others (geometric mean +19%); at 32
 * callers, whole ticks won by 11-62% in 7 runs of 21 and lost by 4-25% in
 * the others (geometric mean +1%, median -8%). So 16 callers or fewer
 * send each tick in one write, 32 callers in two parts of 16, and from 64
 * callers on the first part is half the window (on a channel that asks
 * for small parts, from 65: see SMALL_PARTS_UP_TO). Internal: read by the
 * tests, re-exported by no entry point.
 */
export const MIN_PART_FRAMES = 16;

/**
 * Up to this many requests in flight, a channel that asks for
 * `smallParts` gets its first part at {@linkcode MIN_PART_FRAMES}, not
 * half the window. Measured against halves (2026-12-07, paired, both
 * orders, native node out of process): at 48 and 64 callers Bun read
 * 1.1-1.3x (TLS 1.3-1.5x, `requestMany` 1.3-1.4x) and Deno 1.0-1.16x; at 128
 * and 256 such parts read 0.85-1.0x on both, so from 65 in flight on the
 * first part is half the window again. Node read 0.86-0.87x at 64, and its
 * channel does not ask. Internal, as MIN_PART_FRAMES.
 */
export const SMALL_PARTS_UP_TO = 64;

/**
 * A batch run (`Connection.submitBatch`, and so each chunk of
 * `Client.requestMany`) of at least this many frames is not cut into parts
 * while it is encoded, and goes to the channel in one write as soon as it
 * is encoded, not at the tick's end. Its frames are encoded in one loop,
 * tens of nanoseconds each, so a part inside it buys the node no time and
 * costs a write; held for the tick's end, it waited behind whatever else
 * the tick ran (the callers' handling of the batches just settled) while
 * the node had nothing to do. Measured 2026-12-07 (packed, native node
 * out of process, 4 callers each awaiting batches of a quarter of the
 * window, paired, both orders) against waiting for the tick's end: 256 in
 * flight, Deno 1.18-1.23x, Bun 1.28-1.38x, Node 1.16-1.25x; 64 in flight,
 * Deno 0.99x, Bun 1.09-1.12x, Node 1.33-1.44x. Holding the parts without
 * the write at the run's end read 0.89x on Deno at 256: the gain is the
 * early write. Smaller runs (a caller's handful of items among many such
 * callers) keep the tick's rules, so that they still share writes.
 * Internal, as MIN_PART_FRAMES.
 */
export const RUN_WRITE_FRAMES = MIN_PART_FRAMES;
