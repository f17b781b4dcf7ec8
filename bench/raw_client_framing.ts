/**
 * The runtime-neutral half of the minimal raw client (`raw_client.ts`):
 * sequence numbers, waiters in a fixed ring, frames encoded into a slab
 * flushed once per tick, replies parsed out of reads, the HELLO handshake
 * and the plaintext TLS negotiation. Apart from the three runtimes' socket
 * code, which each hand it bytes and take its writes, so that all three
 * run the very same per-request code. It touches no socket.
 *
 * Framing (docs/PROTOCOL.md): a 16-byte header — version 1, type, flags
 * (u16 BE), sequence (u64 BE), payload length (u32 BE) — then the payload.
 *
 * @module
 */

import { concatBytes } from "../testing/bytes.ts";

const HEADER = 16;
const SLAB_SIZE = 64 * 1024;
const TYPE_HELLO = 0x01;
const TYPE_HELLO_OK = 0x02;
const TYPE_NEGOTIATE = 0x03;
const TYPE_NEGOTIATE_OK = 0x04;
const TYPE_REQUEST = 0x20;
const TYPE_ERROR = 0x30;
const TWO_32 = 0x1_0000_0000;
const HANDSHAKE_TIMEOUT_MS = 5_000;
/** Longest a close waits for the node to close its side. */
export const CLOSE_TIMEOUT_MS = 2_000;

/** A connected raw client. */
export interface RawClient {
  /** Which socket API it runs on. */
  readonly runtime: "deno" | "bun" | "node";
  /** Sends a REQUEST and resolves with the RESPONSE payload (a view). */
  request(payload: Uint8Array): Promise<Uint8Array>;
  /** Half-closes, waits (bounded) for the node to close, then releases. */
  close(): Promise<void>;
}

/** TLS for `connectRaw`: negotiated after HELLO, then upgraded. */
export interface RawTls {
  /** The CA that signed the node's certificate (PEM). */
  ca: string;
  /** The name the certificate is checked against. */
  serverName: string;
}

interface Waiter {
  resolve(payload: Uint8Array): void;
  reject(error: Error): void;
}

/**
 * Waiters by sequence number in a fixed ring: at most RING_SIZE in flight
 * per connection, far above any benchmark's. A `Map` keyed by increasing
 * sequence numbers measured much slower on V8 (on Node at 256 in flight,
 * about 2 MB of each young-generation collection survived, against 0.14 MB
 * with the ring, and throughput was a third lower), and the baseline should
 * be the fastest simple client, not a slow one.
 */
const RING_SIZE = 1 << 16;
class WaiterRing {
  #waiters = new Array<Waiter | undefined>(RING_SIZE).fill(undefined);
  #sequences = new Array<number>(RING_SIZE).fill(0);

  add(sequence: number, waiter: Waiter): void {
    const i = sequence & (RING_SIZE - 1);
    if (this.#waiters[i] !== undefined) {
      throw new Error(`raw client: more than ${RING_SIZE} requests in flight`);
    }
    this.#waiters[i] = waiter;
    this.#sequences[i] = sequence;
  }

  /** Removes and returns the waiter for `sequence`, if there is one. */
  take(sequence: number): Waiter | undefined {
    const i = sequence & (RING_SIZE - 1);
    const waiter = this.#waiters[i];
    if (waiter === undefined || this.#sequences[i] !== sequence) {
      return undefined;
    }
    this.#waiters[i] = undefined;
    return waiter;
  }

  /** Removes and returns every waiter. */
  takeAll(): Waiter[] {
    const all = this.#waiters.filter((w) => w !== undefined) as Waiter[];
    this.#waiters.fill(undefined);
    return all;
  }
}

/**
 * The runtime-neutral part: sequence numbers, the resolver map, encoding
 * into a slab flushed once per microtask, and parsing replies.
 */
export class Framing {
  #send: (bytes: Uint8Array) => void;
  #slab = new Uint8Array(SLAB_SIZE);
  #start = 0;
  #end = 0;
  #scheduled = false;
  #sequence = 1;
  #waiters = new WaiterRing();
  #rest: Uint8Array | undefined;
  #lastType = 0;
  #closed = false;
  #onClosed: (() => void)[] = [];

  constructor(send: (bytes: Uint8Array) => void) {
    this.#send = send;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Type of the frame that settled the last waiter (for the handshake). */
  get lastType(): number {
    return this.#lastType;
  }

  call(type: number, payload: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new Error("raw client closed"));
    const sequence = this.#sequence++;
    const length = payload.length;
    const need = HEADER + length;
    if (this.#end + need > this.#slab.length) {
      this.flush();
      // Bytes already handed to the socket are never overwritten.
      this.#slab = new Uint8Array(Math.max(SLAB_SIZE, need));
      this.#start = this.#end = 0;
    }
    const b = this.#slab;
    const o = this.#end;
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
    b.set(payload, o + HEADER);
    this.#end = o + need;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.flush);
    }
    return new Promise((resolve, reject) => {
      this.#waiters.add(sequence, { resolve, reject });
    });
  }

  flush = (): void => {
    this.#scheduled = false;
    if (this.#end === this.#start || this.#closed) return;
    const bytes = this.#slab.subarray(this.#start, this.#end);
    this.#start = this.#end;
    this.#send(bytes);
  };

  /** Parses replies out of `chunk`, which the caller will not reuse. */
  feed(chunk: Uint8Array): void {
    let off = 0;
    // A frame split across reads: copy only that frame together, never the
    // whole new chunk (a fresh buffer per read would keep the GC busy).
    while (this.#rest !== undefined && off < chunk.length) {
      const rest = this.#rest;
      const take = Math.min(
        frameSize(rest) - rest.length,
        chunk.length - off,
      );
      const joined = new Uint8Array(rest.length + take);
      joined.set(rest, 0);
      joined.set(chunk.subarray(off, off + take), rest.length);
      off += take;
      this.#rest = joined;
      if (joined.length === frameSize(joined)) {
        this.#rest = undefined;
        this.#parse(joined, 0);
      }
    }
    if (this.#rest === undefined) this.#parse(chunk, off);
  }

  /** Settles the replies of whole frames from `off`; keeps a partial one. */
  #parse(buf: Uint8Array, off: number): void {
    const end = buf.length;
    while (end - off >= HEADER) {
      const length = ((buf[off + 12] << 24) | (buf[off + 13] << 16) |
        (buf[off + 14] << 8) | buf[off + 15]) >>> 0;
      const stop = off + HEADER + length;
      if (stop > end) break;
      const hi = ((buf[off + 4] << 24) | (buf[off + 5] << 16) |
        (buf[off + 6] << 8) | buf[off + 7]) >>> 0;
      const lo = ((buf[off + 8] << 24) | (buf[off + 9] << 16) |
        (buf[off + 10] << 8) | buf[off + 11]) >>> 0;
      const sequence = hi * TWO_32 + lo;
      const waiter = this.#waiters.take(sequence);
      if (waiter !== undefined) {
        const type = buf[off + 1];
        this.#lastType = type;
        if (type === TYPE_ERROR) waiter.reject(new Error("node error reply"));
        // The constructor, not subarray() (which looks up the species
        // first): the baseline takes the same shortcut as the client.
        else {
          waiter.resolve(
            new Uint8Array(buf.buffer, buf.byteOffset + off + HEADER, length),
          );
        }
      }
      off = stop;
    }
    if (off < end) this.#rest = buf.subarray(off);
  }

  /** The socket is gone: fail everything still waiting. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new Error("raw client connection closed");
    for (const waiter of this.#waiters.takeAll()) waiter.reject(error);
    for (const fn of this.#onClosed.splice(0)) fn();
  }

  /** Resolves once `close()` ran, or after `ms`. */
  whenClosed(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#onClosed.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Bytes of the frame starting `bytes`: the header until its length is in. */
function frameSize(bytes: Uint8Array): number {
  if (bytes.length < HEADER) return HEADER;
  return HEADER + (((bytes[12] << 24) | (bytes[13] << 16) |
    (bytes[14] << 8) | bytes[15]) >>> 0);
}

/** Sends HELLO and waits (bounded) for HELLO_OK. */
export async function handshake(framing: Framing): Promise<void> {
  const hello = new TextEncoder().encode(
    JSON.stringify({ version: 1, client: "raw", maxFrameSize: 16777216 }),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      framing.call(TYPE_HELLO, hello),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("no HELLO_OK within 5 s")),
          HANDSHAKE_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  if (framing.lastType !== TYPE_HELLO_OK) {
    throw new Error(`expected HELLO_OK, got type ${framing.lastType}`);
  }
}

/** The `request` of a {@linkcode RawClient} over `framing`. */
export function request(framing: Framing) {
  return (payload: Uint8Array) => framing.call(TYPE_REQUEST, payload);
}

/**
 * HELLO, then NEGOTIATE for TLS, in plaintext, one frame at a time; reads
 * nothing past NEGOTIATE_OK (the node sends nothing more until the
 * ClientHello), so the TLS upgrade can take the socket after it.
 */
export async function negotiateTls(
  write: (bytes: Uint8Array) => Promise<void>,
  read: () => Promise<Uint8Array>,
): Promise<void> {
  const encode = (value: unknown) =>
    new TextEncoder().encode(JSON.stringify(value));
  let pending: Uint8Array = new Uint8Array(0);
  const nextType = async (): Promise<number> => {
    while (
      pending.length < HEADER || pending.length < frameSize(pending)
    ) {
      pending = concatBytes([pending, await read()]);
    }
    const type = pending[1];
    pending = pending.subarray(frameSize(pending));
    return type;
  };
  const frame = (type: number, sequence: number, payload: Uint8Array) => {
    const bytes = new Uint8Array(HEADER + payload.length);
    const view = new DataView(bytes.buffer);
    bytes[0] = 1;
    bytes[1] = type;
    view.setUint32(8, sequence);
    view.setUint32(12, payload.length);
    bytes.set(payload, HEADER);
    return bytes;
  };
  await write(frame(
    TYPE_HELLO,
    1,
    encode({
      version: 1,
      client: "raw",
      maxFrameSize: 16777216,
    }),
  ));
  const hello = await nextType();
  if (hello !== TYPE_HELLO_OK) {
    throw new Error(`expected HELLO_OK, got ${hello}`);
  }
  await write(frame(TYPE_NEGOTIATE, 2, encode({ protocols: ["tls"] })));
  const negotiated = await nextType();
  if (negotiated !== TYPE_NEGOTIATE_OK) {
    throw new Error(`expected NEGOTIATE_OK, got ${negotiated}`);
  }
}
