/**
 * The raw batching client: what the wire and the runtime can carry on one
 * connection, the ceiling a batch API is measured against (issue #15).
 * No promise, no object and no resolver per request: one slab of
 * pre-encoded REQUEST frames; whenever a read completes k replies, k new
 * frames leave in one write. Replies are counted, not handed out: a
 * streaming parser only tracks where each frame ends.
 *
 * With `handOut`, the same client does what any batch API handing out one
 * result per request must do beyond that, and nothing more: each frame's
 * payload copied in from the caller's bytes (the slab is not pre-encoded),
 * each read's buffer kept (replies are views into it), and per reply one
 * view and one result object stored in a results array. Its rate is the
 * floor of `Client.requestMany`'s shape: what the wire and the runtime
 * carry once each reply is an object of its own (the bench's `floor`).
 *
 * With raw_client.ts (the promise-per-request baseline, with its
 * per-runtime raw_client_deno.ts, raw_client_bun.ts and raw_client_node.ts)
 * and the sockets under this one (`raw_socket.ts`), this is the one place
 * outside `src/runtime/` allowed to touch runtime sockets (`Deno.connect`,
 * `Bun.connect`, `node:net`): a baseline that went through the SDK would
 * measure the SDK against itself. One write is in flight at a time, so the
 * slab is only rewritten once the runtime is done with it; frames owed
 * meanwhile leave together in the next write.
 *
 * @example
 * ```ts ignore
 * import { connectBatching } from "./batching_client.ts";
 * const raw = await connectBatching("127.0.0.1", 7000);
 * const { requests, ms } = await raw.run(100_000, 256, new Uint8Array([1]), 2_000);
 * console.log(`${Math.round(requests / ms * 1000)} req/s`);
 * await raw.close();
 * ```
 *
 * @module
 */

import { openRawSocket, type RawSocket } from "./raw_socket.ts";

const HEADER = 16;
const TYPE_HELLO = 0x01;
const TYPE_HELLO_OK = 0x02;
const TYPE_REQUEST = 0x20;
const TYPE_RESPONSE = 0x21;
const TWO_32 = 0x1_0000_0000;
const HANDSHAKE_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 2_000;
/** A run with no reply for this long fails instead of hanging. */
const STALL_MS = 10_000;

/** What one `run` did. */
export interface BatchingRun {
  /** Replies received (RESPONSE or not). */
  requests: number;
  /** Replies that were not RESPONSE frames. */
  errors: number;
  /** Wall time from the first write to the last reply. */
  ms: number;
}

/** A connected batching client. */
export interface BatchingClient {
  /** Which socket API it runs on. */
  readonly runtime: "deno" | "bun" | "node";
  /**
   * Sends up to `count` REQUESTs carrying `payload`, keeping `inFlight`
   * outstanding, and resolves once every request sent has its reply. No
   * new request leaves after `deadlineMs` (from the start).
   */
  run(
    count: number,
    inFlight: number,
    payload: Uint8Array,
    deadlineMs: number,
  ): Promise<BatchingRun>;
  /** Half-closes, waits (bounded) for the node to close, then releases. */
  close(): Promise<void>;
}

/** A reply handed out in `handOut` mode, as a batch API's result is. */
class HandedOut {
  readonly ok = true as const;
  constructor(readonly value: Uint8Array) {}
}

class Batcher {
  /** See the module comment. */
  readonly handOut: boolean;
  /** `handOut`: the run's payload, copied into every frame sent. */
  #payload: Uint8Array = new Uint8Array(0);
  /** `handOut`: where replies are handed out to, one slot per in flight. */
  #results: HandedOut[] = [];
  #handed = 0;
  /** Set once the socket is open, before `hello`. */
  socket: RawSocket | undefined;
  closed = false;
  #onClosed: (() => void)[] = [];
  #sequence = 1;
  // The streaming parser: header bytes seen of the current frame, and
  // payload bytes still to skip.
  #header = new Uint8Array(HEADER);
  #headerHave = 0;
  #skip = 0;
  #type = 0;
  /** The current frame's payload length. */
  #length = 0;
  // The run.
  #slab = new Uint8Array(0);
  #frameSize = 0;
  #writing = false;
  #owed = 0;
  #issued = 0;
  #replies = 0;
  #errors = 0;
  #count = 0;
  #deadline = 0;
  #started = 0;
  #settle: ((error?: Error) => void) | undefined;
  #onFirst: ((type: number) => void) | undefined;

  constructor(handOut: boolean) {
    this.handOut = handOut;
  }

  /** Sends HELLO and resolves once any reply came; fails unless HELLO_OK. */
  async hello(): Promise<void> {
    const body = new TextEncoder().encode(
      JSON.stringify({
        version: 1,
        client: "raw-batching",
        maxFrameSize: 16777216,
      }),
    );
    const frame = new Uint8Array(HEADER + body.length);
    encodeHeader(frame, 0, TYPE_HELLO, this.#sequence++, body.length);
    frame.set(body, HEADER);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const type = await new Promise<number>((resolve, reject) => {
      this.#onFirst = resolve;
      timer = setTimeout(
        () => reject(new Error("no HELLO_OK within 5 s")),
        HANDSHAKE_TIMEOUT_MS,
      );
      this.#onClosed.push(() => reject(new Error("closed during HELLO")));
      this.socket!.write(frame);
    }).finally(() => clearTimeout(timer));
    if (type !== TYPE_HELLO_OK) {
      throw new Error(`expected HELLO_OK, got type ${type}`);
    }
  }

  run(
    count: number,
    inFlight: number,
    payload: Uint8Array,
    deadlineMs: number,
  ): Promise<BatchingRun> {
    if (this.closed) return Promise.reject(new Error("batching client closed"));
    if (this.#settle !== undefined) {
      return Promise.reject(new Error("one run at a time"));
    }
    const width = Math.max(1, Math.min(inFlight, count));
    this.#frameSize = HEADER + payload.length;
    const size = width * this.#frameSize;
    if (this.#slab.length < size) this.#slab = new Uint8Array(size);
    for (let i = 0; i < width; i++) {
      const o = i * this.#frameSize;
      encodeHeader(this.#slab, o, TYPE_REQUEST, 0, payload.length);
      this.#slab.set(payload, o + HEADER);
    }
    this.#payload = payload;
    this.#results = new Array<HandedOut>(width);
    this.#handed = 0;
    this.#issued =
      this.#replies =
      this.#errors =
      this.#owed =
        0;
    this.#count = count;
    this.#started = performance.now();
    this.#deadline = this.#started + deadlineMs;
    return new Promise<BatchingRun>((resolve, reject) => {
      let last = -1;
      // No timer per request: one watchdog per run.
      const watchdog = setInterval(() => {
        if (this.#replies === last) {
          this.#settle?.(new Error(`no reply for ${STALL_MS} ms`));
        }
        last = this.#replies;
      }, STALL_MS);
      this.#settle = (error) => {
        clearInterval(watchdog);
        this.#settle = undefined;
        if (error) reject(error);
        else {
          resolve({
            requests: this.#replies,
            errors: this.#errors,
            ms: performance.now() - this.#started,
          });
        }
      };
      this.#issue(width);
    });
  }

  #issue(k: number): void {
    this.#owed += k;
    this.#issued += k;
    if (!this.#writing) this.#pump();
  }

  #pump = (): void => {
    this.#writing = false;
    const k = this.#owed;
    if (k === 0 || this.closed) return;
    this.#owed = 0;
    const b = this.#slab;
    const step = this.#frameSize;
    if (this.handOut) return this.#pumpCopying(k);
    for (let i = 0, o = 0; i < k; i++, o += step) {
      const sequence = this.#sequence++;
      const hi = sequence >= TWO_32 ? Math.floor(sequence / TWO_32) : 0;
      b[o + 4] = hi >>> 24;
      b[o + 5] = hi >>> 16;
      b[o + 6] = hi >>> 8;
      b[o + 7] = hi;
      b[o + 8] = sequence >>> 24;
      b[o + 9] = sequence >>> 16;
      b[o + 10] = sequence >>> 8;
      b[o + 11] = sequence;
    }
    this.#writing = true;
    this.socket!.write(b.subarray(0, k * step), this.#pump);
  };

  /** `#pump` in `handOut` mode: every frame encoded whole, payload copied. */
  #pumpCopying(k: number): void {
    const b = this.#slab;
    const step = this.#frameSize;
    const payload = this.#payload;
    const length = payload.length;
    for (let i = 0, o = 0; i < k; i++, o += step) {
      encodeHeader(b, o, TYPE_REQUEST, this.#sequence++, length);
      // As the client's frame writer copies: set() past 32 bytes.
      if (length > 32) b.set(payload, o + HEADER);
      else for (let j = 0; j < length; j++) b[o + HEADER + j] = payload[j];
    }
    this.#writing = true;
    this.socket!.write(b.subarray(0, k * step), this.#pump);
  }

  /**
   * `handOut`: a reply whose payload starts at `at` in `chunk` (all of it,
   * or only its start when a read split it: then a buffer of its length,
   * as joining its pieces would need) becomes a result.
   */
  #handOut(chunk: Uint8Array, at: number, length: number): void {
    const value = at + length <= chunk.length
      ? new Uint8Array(chunk.buffer, chunk.byteOffset + at, length)
      : new Uint8Array(length);
    const results = this.#results;
    results[this.#handed++ % results.length] = new HandedOut(value);
  }

  /** Counts the replies completed in `chunk`, which may split frames anywhere. */
  feed(chunk: Uint8Array): void {
    const end = chunk.length;
    let off = 0;
    let replies = 0;
    while (off < end) {
      if (this.#headerHave < HEADER) {
        let b = chunk;
        let at = off;
        if (this.#headerHave === 0 && end - off >= HEADER) {
          off += HEADER;
        } else {
          const take = Math.min(HEADER - this.#headerHave, end - off);
          this.#header.set(chunk.subarray(off, off + take), this.#headerHave);
          this.#headerHave += take;
          off += take;
          if (this.#headerHave < HEADER) break;
          b = this.#header;
          at = 0;
        }
        this.#headerHave = HEADER;
        this.#type = b[at + 1];
        this.#skip = this.#length = ((b[at + 12] << 24) | (b[at + 13] << 16) |
          (b[at + 14] << 8) | b[at + 15]) >>> 0;
      }
      if (
        this.handOut && this.#skip === this.#length &&
        this.#onFirst === undefined
      ) this.#handOut(chunk, off, this.#skip);
      const n = Math.min(this.#skip, end - off);
      this.#skip -= n;
      off += n;
      if (this.#skip > 0) break;
      this.#headerHave = 0;
      if (this.#onFirst !== undefined) {
        const first = this.#onFirst;
        this.#onFirst = undefined;
        first(this.#type);
        continue;
      }
      if (this.#type !== TYPE_RESPONSE) this.#errors++;
      replies++;
    }
    if (replies > 0 && this.#settle !== undefined) this.#replied(replies);
  }

  #replied(k: number): void {
    this.#replies += k;
    const left = this.#count - this.#issued;
    if (left > 0 && performance.now() < this.#deadline) {
      this.#issue(Math.min(k, left));
    } else if (this.#replies >= this.#issued) {
      this.#settle!();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#settle?.(new Error("batching client connection closed"));
    for (const fn of this.#onClosed.splice(0)) fn();
  }

  whenClosed(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#onClosed.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function encodeHeader(
  b: Uint8Array,
  o: number,
  type: number,
  sequence: number,
  length: number,
): void {
  const hi = Math.floor(sequence / TWO_32);
  b[o] = 1;
  b[o + 1] = type;
  b[o + 2] = 0;
  b[o + 3] = 0;
  b[o + 4] = hi >>> 24;
  b[o + 5] = hi >>> 16;
  b[o + 6] = hi >>> 8;
  b[o + 7] = hi;
  b[o + 8] = sequence >>> 24;
  b[o + 9] = sequence >>> 16;
  b[o + 10] = sequence >>> 8;
  b[o + 11] = sequence;
  b[o + 12] = length >>> 24;
  b[o + 13] = length >>> 16;
  b[o + 14] = length >>> 8;
  b[o + 15] = length;
}

/**
 * Connects to a node with the current runtime's native socket API and
 * completes the HELLO handshake.
 */
export async function connectBatching(
  hostname: string,
  port: number,
  options: { handOut?: boolean } = {},
): Promise<BatchingClient> {
  const batcher = new Batcher(options.handOut === true);
  // Replies only counted can share one read buffer; handed out, they
  // keep theirs.
  const socket = await openRawSocket(
    hostname,
    port,
    batcher,
    batcher.handOut ? "kept" : "borrowed",
  );
  batcher.socket = socket;
  await batcher.hello();
  return {
    runtime: socket.runtime,
    run: (count, inFlight, payload, deadlineMs) =>
      batcher.run(count, inFlight, payload, deadlineMs),
    async close() {
      if (!batcher.closed) {
        await socket.end();
        await batcher.whenClosed(CLOSE_TIMEOUT_MS);
      }
      batcher.close();
      socket.release();
    },
  };
}
