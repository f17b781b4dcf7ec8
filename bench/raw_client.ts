/**
 * A minimal client for the wire protocol, written straight on each
 * runtime's native socket API: the honest baseline that
 * `connection.bench.ts` measures the SDK's `Connection` against.
 *
 * This file is the one place outside `src/runtime/` allowed to touch
 * runtime sockets (`Deno.connect`, `Bun.connect`, `node:net`): a baseline
 * that went through the SDK's adapters or `Connection` would measure them
 * against themselves. It is deliberately bare: no validation, no timers on
 * the request path, no error classes, resolvers in a fixed ring indexed
 * by sequence number, and frames encoded into a slab that is written once
 * per tick. Deno and Bun are reached through `globalThis` with small local
 * interfaces so `deno check` passes without Bun's typings; `node:net` is
 * imported only when running on Node. Lengths are read with `length`,
 * not `byteLength`, as the client reads them: Node 20's V8 is slower with
 * `byteLength`, and a baseline must not pay what the client does not.
 *
 * Framing (docs/PROTOCOL.md): a 16-byte header — version 1, type, flags
 * (u16 BE), sequence (u64 BE), payload length (u32 BE) — then the payload.
 *
 * @example
 * ```ts ignore
 * import { connectRaw } from "./raw_client.ts";
 * const raw = await connectRaw("127.0.0.1", 7000);
 * const reply = await raw.request(new Uint8Array([1, 104, 105])); // ECHO "hi"
 * await raw.close();
 * ```
 *
 * @module
 */

import { concatBytes } from "../testing/bytes.ts";
import { isIpLiteral } from "../src/runtime/tls.ts";

const HEADER = 16;
const SLAB_SIZE = 64 * 1024;
const TYPE_HELLO = 0x01;
const TYPE_HELLO_OK = 0x02;
const TYPE_NEGOTIATE = 0x03;
const TYPE_NEGOTIATE_OK = 0x04;
const TYPE_REQUEST = 0x20;
const TYPE_ERROR = 0x30;
const TWO_32 = 0x1_0000_0000;
/** Reads at least this large keep their buffer; smaller ones are copied. */
const KEEP_BUFFER_AT = 16 * 1024;
const HANDSHAKE_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 2_000;

/** A connected raw client. */
export interface RawClient {
  /** Which socket API it runs on. */
  readonly runtime: "deno" | "bun" | "node";
  /** Sends a REQUEST and resolves with the RESPONSE payload (a view). */
  request(payload: Uint8Array): Promise<Uint8Array>;
  /** Half-closes, waits (bounded) for the node to close, then releases. */
  close(): Promise<void>;
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
class Framing {
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

async function handshake(framing: Framing): Promise<void> {
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

function request(framing: Framing) {
  return (payload: Uint8Array) => framing.call(TYPE_REQUEST, payload);
}

// --- Deno: pull reads into a reused buffer, a write pump for partial writes.

interface DenoConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  setNoDelay(noDelay?: boolean): void;
  closeWrite(): Promise<void>;
  close(): void;
}

interface DenoNet {
  connect(options: {
    hostname: string;
    port: number;
    transport: "tcp";
  }): Promise<DenoConn>;
  startTls(
    conn: DenoConn,
    options: { hostname: string; caCerts: string[] },
  ): Promise<Omit<DenoConn, "setNoDelay"> & { handshake(): Promise<unknown> }>;
}

async function connectDeno(
  deno: DenoNet,
  hostname: string,
  port: number,
  tls: RawTls | undefined,
): Promise<RawClient> {
  const tcp = await deno.connect({ hostname, port, transport: "tcp" });
  tcp.setNoDelay(true);
  let conn: Omit<DenoConn, "setNoDelay"> = tcp;
  if (tls) {
    // Reads one at a time, so none is pending when TLS takes the conn.
    const buffer = new Uint8Array(4096);
    await negotiateTls(
      async (bytes) => {
        while (bytes.length > 0) {
          bytes = bytes.subarray(await tcp.write(bytes));
        }
      },
      async () => {
        const n = await tcp.read(buffer);
        if (n === null) throw new Error("closed during negotiation");
        return buffer.slice(0, n);
      },
    );
    const secure = await deno.startTls(tcp, {
      hostname: tls.serverName,
      caCerts: [tls.ca],
    });
    await secure.handshake();
    conn = secure;
  }
  const out: Uint8Array[] = [];
  let pumping = false;
  const release = () => {
    try {
      conn.close();
    } catch {
      // Already closed: Deno throws BadResource on a second close.
    }
  };
  // One tick's frames arrive as one send(); bytes that pile up while a
  // write is in flight leave together in the next one.
  const pump = async () => {
    try {
      while (out.length > 0) {
        let bytes = concatBytes(out);
        out.length = 0;
        while (bytes.length > 0) {
          bytes = bytes.subarray(await conn.write(bytes));
        }
      }
    } catch {
      framing.close();
      release();
    } finally {
      pumping = false;
    }
  };
  const framing = new Framing((bytes) => {
    out.push(bytes);
    if (!pumping) {
      pumping = true;
      void pump();
    }
  });
  void (async () => {
    let buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        let chunk: Uint8Array;
        if (n >= KEEP_BUFFER_AT) {
          chunk = buffer.subarray(0, n);
          buffer = new Uint8Array(64 * 1024);
        } else {
          // Replies are views, so the read buffer cannot be reused under
          // them; one copy per read is cheaper than one per reply.
          chunk = buffer.slice(0, n);
        }
        framing.feed(chunk);
      }
    } catch {
      // Reset, or our own close() ended the pending read.
    }
    framing.close();
    release();
  })();
  if (!tls) await handshake(framing);
  return {
    runtime: "deno",
    request: request(framing),
    async close() {
      framing.flush();
      if (!framing.closed) {
        try {
          await conn.closeWrite();
        } catch {
          // Already gone.
        }
        await framing.whenClosed(CLOSE_TIMEOUT_MS);
      }
      framing.close();
      release();
    },
  };
}

// --- Bun: push handlers; a short write keeps the rest until `drain`.

interface BunSocket {
  write(bytes: Uint8Array): number;
  upgradeTLS(options: {
    tls: { ca: string[]; serverName: string };
    socket: Record<string, unknown>;
  }): [BunSocket, BunSocket];
  end(): void;
  terminate(): void;
  setNoDelay?(noDelay?: boolean): boolean;
}

interface BunNet {
  connect(options: {
    hostname: string;
    port: number;
    socket: {
      data(socket: BunSocket, data: Uint8Array): void;
      drain(socket: BunSocket): void;
      close(socket: BunSocket, error?: Error): void;
      error(socket: BunSocket, error: Error): void;
      connectError(socket: BunSocket, error: Error): void;
      handshake?(socket: BunSocket, ok: boolean, error: Error | null): void;
    };
  }): Promise<BunSocket>;
}

async function connectBun(
  bun: BunNet,
  hostname: string,
  port: number,
  tls: RawTls | undefined,
): Promise<RawClient> {
  const queue: Uint8Array[] = [];
  const drain = (s: BunSocket) => {
    while (queue.length > 0) {
      const bytes = queue[0];
      const n = s.write(bytes);
      if (n < 0) return;
      if (n < bytes.length) {
        queue[0] = bytes.subarray(n);
        return;
      }
      queue.shift();
    }
  };
  // The handlers use `framing`, created right after connect resolves and
  // before anything is sent, so no callback can run before it exists.
  const handlers = {
    // Bun hands each callback a fresh buffer, so replies may be views.
    data: (_s: BunSocket, data: Uint8Array) => framing.feed(data),
    drain,
    close: () => framing.close(),
    error: () => framing.close(),
    connectError() {},
  };
  // Before TLS the plaintext goes to the negotiation; Bun goes on calling
  // these with the ciphertext after the upgrade, which is dropped.
  let plain: ((data: Uint8Array) => void) | undefined;
  let connected = await bun.connect({
    hostname,
    port,
    socket: tls
      ? {
        ...handlers,
        data: (_s, data) => plain?.(data),
        close() {},
        error() {},
      }
      : handlers,
  });
  connected.setNoDelay?.(true);
  if (tls) {
    const raw = connected;
    const chunks: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    plain = (data) => {
      chunks.push(data);
      wake?.();
    };
    await negotiateTls(
      (bytes) => {
        raw.write(bytes);
        return Promise.resolve();
      },
      async () => {
        while (chunks.length === 0) {
          await new Promise<void>((resolve) => wake = resolve);
        }
        return chunks.shift()!;
      },
    );
    plain = undefined;
    connected = await new Promise<BunSocket>((resolve, reject) => {
      raw.upgradeTLS({
        tls: { ca: [tls.ca], serverName: tls.serverName },
        socket: {
          ...handlers,
          handshake: (socket: BunSocket, ok: boolean, error: Error | null) =>
            ok ? resolve(socket) : reject(error ?? new Error("TLS failed")),
        },
      });
    });
  }
  const socket = connected;
  const framing = new Framing((bytes) => {
    if (queue.length > 0) {
      queue.push(bytes);
      return;
    }
    const n = socket.write(bytes);
    if (n >= 0 && n < bytes.length) queue.push(bytes.subarray(n));
  });
  if (!tls) await handshake(framing);
  return {
    runtime: "bun",
    request: request(framing),
    async close() {
      framing.flush();
      if (!framing.closed) {
        connected.end();
        await framing.whenClosed(CLOSE_TIMEOUT_MS);
      }
      framing.close();
      connected.terminate();
    },
  };
}

// --- Node: node:net with Nagle off; 'data' delivers a fresh Buffer per read.
// (`onread` with a reused buffer plus one copy per read measured within 1%
// of this on Node 20, so the simpler form stays.)

async function connectNode(
  hostname: string,
  port: number,
  tls: RawTls | undefined,
): Promise<RawClient> {
  const net = await import("node:net");
  const tcp = net.connect({ host: hostname, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    tcp.once("connect", () => {
      tcp.off("error", reject);
      resolve();
    });
    tcp.once("error", reject);
  });
  tcp.setNoDelay(true);
  let socket: import("node:net").Socket = tcp;
  if (tls) {
    const chunks: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    const onData = (chunk: Uint8Array) => {
      chunks.push(chunk);
      wake?.();
    };
    tcp.on("data", onData);
    await negotiateTls(
      (bytes) => {
        tcp.write(bytes);
        return Promise.resolve();
      },
      async () => {
        while (chunks.length === 0) {
          await new Promise<void>((resolve) => wake = resolve);
        }
        return chunks.shift()!;
      },
    );
    tcp.off("data", onData);
    const { connect } = await import("node:tls");
    socket = await new Promise((resolve, reject) => {
      const secure = connect({
        socket: tcp,
        // SNI carries host names only: Node warns (DEP0123) for an address.
        servername: isIpLiteral(tls.serverName) ? undefined : tls.serverName,
        ca: [tls.ca],
      });
      secure.once("secureConnect", () => resolve(secure));
      secure.once("error", reject);
    });
  }
  const framing = new Framing((bytes) => {
    socket.write(bytes);
  });
  // A plain view per read: a Buffer's subarray() (one per reply) builds a
  // Buffer through its species constructor, much slower than a view's.
  const view = (chunk: Uint8Array) =>
    new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
  // node:tls calls back once per record and runs the microtasks in
  // between; handing the records of one read over together keeps one
  // write per read (as the Node adapter does).
  let gathered: Uint8Array[] | undefined;
  const deliver = () => {
    const chunks = gathered!;
    gathered = undefined;
    for (const chunk of chunks) framing.feed(chunk);
  };
  if (tls) {
    socket.on("data", (chunk: Uint8Array) => {
      if (gathered === undefined) {
        gathered = [view(chunk)];
        setImmediate(deliver);
      } else gathered.push(view(chunk));
    });
  } else socket.on("data", (chunk: Uint8Array) => framing.feed(view(chunk)));
  socket.on("error", () => {});
  socket.on("close", () => {
    if (gathered !== undefined) deliver();
    framing.close();
  });
  if (!tls) await handshake(framing);
  return {
    runtime: "node",
    request: request(framing),
    async close() {
      framing.flush();
      if (!framing.closed) {
        socket.end();
        await framing.whenClosed(CLOSE_TIMEOUT_MS);
      }
      framing.close();
      socket.destroy();
    },
  };
}

/** TLS for {@linkcode connectRaw}: negotiated after HELLO, then upgraded. */
export interface RawTls {
  /** The CA that signed the node's certificate (PEM). */
  ca: string;
  /** The name the certificate is checked against. */
  serverName: string;
}

/**
 * HELLO, then NEGOTIATE for TLS, in plaintext, one frame at a time; reads
 * nothing past NEGOTIATE_OK (the node sends nothing more until the
 * ClientHello), so the TLS upgrade can take the socket after it.
 */
async function negotiateTls(
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

/**
 * Connects to a node with the current runtime's native socket API and
 * completes the HELLO handshake; with `tls`, negotiates TLS and upgrades
 * with the runtime's own TLS (`Deno.startTls`, Bun's `upgradeTLS`,
 * `node:tls`), the least TLS can cost on that runtime.
 */
export function connectRaw(
  hostname: string,
  port: number,
  tls?: RawTls,
): Promise<RawClient> {
  const g = globalThis as unknown as { Deno?: DenoNet; Bun?: BunNet };
  if (g.Deno) return connectDeno(g.Deno, hostname, port, tls);
  if (g.Bun) return connectBun(g.Bun, hostname, port, tls);
  return connectNode(hostname, port, tls);
}
