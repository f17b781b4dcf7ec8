/**
 * The native sockets under the raw batching baseline (`batching_client.ts`:
 * no promise per request): opening, reading and writing a TCP connection
 * straight on each runtime's own API. (`raw_client.ts` keeps its own,
 * since it also upgrades to each runtime's TLS for the TLS ceiling.)
 *
 * These files (this one, `batching_client.ts`, and `raw_client.ts` with
 * its per-runtime `raw_client_deno.ts`, `raw_client_bun.ts` and
 * `raw_client_node.ts`) are the one place outside `src/runtime/` allowed to
 * touch runtime sockets (`Deno.connect`, `Bun.connect`, `node:net`): a
 * baseline that went through the SDK's adapters would measure them against
 * themselves. It is deliberately bare: no validation, no timers, no error
 * classes, and nothing allocated per read or write beyond what the runtime
 * itself asks for. Deno and Bun are reached through `globalThis` with small
 * local interfaces so `deno check` passes without Bun's typings;
 * `node:net` is imported only when running on Node.
 *
 * Runtime facts it follows: Nagle off everywhere;
 * Deno's `write()` may be partial and reads are pulled into a buffer; Bun's
 * `write()` returns the bytes accepted (-1: closed) and the rest waits for
 * `drain`; Node's write callback says when its buffer is free.
 *
 * @example
 * ```ts ignore
 * import { openRawSocket } from "./raw_socket.ts";
 * const receiver = {
 *   feed: (chunk: Uint8Array) => console.log(chunk.length, "bytes"),
 *   close: () => console.log("closed"),
 * };
 * const socket = await openRawSocket("127.0.0.1", 7000, receiver, "borrowed");
 * socket.write(new Uint8Array(16));
 * await socket.end();
 * socket.release();
 * ```
 *
 * @module
 */

import { concatBytes } from "../testing/bytes.ts";

/** Reads at least this large keep their buffer; smaller ones are copied. */
const KEEP_BUFFER_AT = 16 * 1024;
/** Deno's read buffer when chunks are kept (a fresh one after a large read). */
const KEPT_READ_BUFFER = 64 * 1024;
/** Deno's one reused read buffer when chunks are only borrowed. */
const BORROWED_READ_BUFFER = 256 * 1024;

/** What the socket drives: its reads, and its end. */
export interface RawReceiver {
  /** Bytes read; see {@link RawReads} for how long `chunk` is valid. */
  feed(chunk: Uint8Array): void;
  /** The socket is gone (reset, closed by the node, or a failed write). */
  close(): void;
}

/**
 * Who owns a chunk handed to {@link RawReceiver.feed}.
 *
 * - `"kept"`: the receiver may keep views of it (replies handed out as
 *   views). Deno copies a small read and gives a large one its buffer;
 *   Node's Buffer is handed on as a plain `Uint8Array` view, whose
 *   `subarray()` skips Buffer's species lookup.
 * - `"borrowed"`: valid only during the call (replies only counted). Deno
 *   reads into one reused buffer; Node's Buffer is handed on as it is.
 *
 * Bun hands each callback a fresh buffer, so both are the same there.
 */
export type RawReads = "kept" | "borrowed";

/** An open native socket. */
export interface RawSocket {
  /** Which socket API it runs on. */
  readonly runtime: "deno" | "bun" | "node";
  /**
   * Hands `bytes` to the runtime, behind any still queued; they must not
   * change until `done` runs, once every byte written so far has been
   * taken. At most one write with a `done` may be outstanding.
   */
  write(bytes: Uint8Array, done?: () => void): void;
  /** Half-closes; an error (the socket already gone) is ignored. */
  end(): Promise<void>;
  /** Releases the socket now; safe to call again. */
  release(): void;
}

/**
 * Opens a TCP connection with the current runtime's native socket API,
 * Nagle off, feeding what it reads to `receiver`.
 *
 * @example
 * ```ts ignore
 * const socket = await openRawSocket("127.0.0.1", 7000, framing, "kept");
 * ```
 */
export function openRawSocket(
  hostname: string,
  port: number,
  receiver: RawReceiver,
  reads: RawReads,
): Promise<RawSocket> {
  const g = globalThis as unknown as { Deno?: DenoNet; Bun?: BunNet };
  if (g.Deno) return openDeno(g.Deno, hostname, port, receiver, reads);
  if (g.Bun) return openBun(g.Bun, hostname, port, receiver);
  return openNode(hostname, port, receiver, reads);
}

// --- Deno: pull reads into a buffer, a write pump for partial writes.

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
}

async function openDeno(
  deno: DenoNet,
  hostname: string,
  port: number,
  receiver: RawReceiver,
  reads: RawReads,
): Promise<RawSocket> {
  const conn = await deno.connect({ hostname, port, transport: "tcp" });
  conn.setNoDelay(true);
  const out: Uint8Array[] = [];
  let pumping = false;
  let waiting: (() => void) | undefined;
  const release = () => {
    try {
      conn.close();
    } catch {
      // Already closed: Deno throws BadResource on a second close.
    }
  };
  // Bytes that pile up while a write is in flight leave together in the
  // next one.
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
      pumping = false;
      receiver.close();
      release();
      return;
    }
    // Cleared first: `done` may write again, which must start a new pump.
    pumping = false;
    const done = waiting;
    if (done !== undefined) {
      waiting = undefined;
      done();
    }
  };
  void (async () => {
    const kept = reads === "kept";
    let buffer = new Uint8Array(kept ? KEPT_READ_BUFFER : BORROWED_READ_BUFFER);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        if (!kept) {
          receiver.feed(buffer.subarray(0, n));
        } else if (n >= KEEP_BUFFER_AT) {
          receiver.feed(buffer.subarray(0, n));
          buffer = new Uint8Array(KEPT_READ_BUFFER);
        } else {
          // Kept chunks cannot share the read buffer; one copy per read is
          // cheaper than one per reply.
          receiver.feed(buffer.slice(0, n));
        }
      }
    } catch {
      // Reset, or our own close() ended the pending read.
    }
    receiver.close();
    release();
  })();
  return {
    runtime: "deno",
    write(bytes, done) {
      out.push(bytes);
      if (done !== undefined) waiting = done;
      if (!pumping) {
        pumping = true;
        void pump();
      }
    },
    async end() {
      try {
        await conn.closeWrite();
      } catch {
        // Already gone.
      }
    },
    release,
  };
}

// --- Bun: push handlers; a short write keeps the rest until `drain`.

interface BunSocket {
  write(bytes: Uint8Array): number;
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
    };
  }): Promise<BunSocket>;
}

async function openBun(
  bun: BunNet,
  hostname: string,
  port: number,
  receiver: RawReceiver,
): Promise<RawSocket> {
  const queue: Uint8Array[] = [];
  let waiting: (() => void) | undefined;
  const taken = () => {
    const done = waiting;
    if (done !== undefined) {
      waiting = undefined;
      done();
    }
  };
  const socket = await bun.connect({
    hostname,
    port,
    socket: {
      // Bun hands each callback a fresh buffer: always the receiver's.
      data: (_s, data) => receiver.feed(data),
      drain(s) {
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
        taken();
      },
      close: () => receiver.close(),
      error: () => receiver.close(),
      connectError() {},
    },
  });
  socket.setNoDelay?.(true);
  return {
    runtime: "bun",
    write(bytes, done) {
      if (done !== undefined) waiting = done;
      if (queue.length > 0) {
        queue.push(bytes);
        return;
      }
      const n = socket.write(bytes);
      if (n < 0) return;
      if (n < bytes.length) {
        queue.push(bytes.subarray(n));
        return;
      }
      taken();
    },
    end() {
      try {
        socket.end();
      } catch {
        // Already gone.
      }
      return Promise.resolve();
    },
    release: () => socket.terminate(),
  };
}

// --- Node: node:net; a write's buffer is free once its callback ran.
// (`onread` with a reused buffer plus one copy per read measured within 1%
// of 'data' on Node 20, so the simpler form stays.)

async function openNode(
  hostname: string,
  port: number,
  receiver: RawReceiver,
  reads: RawReads,
): Promise<RawSocket> {
  const net = await import("node:net");
  const socket = net.connect({ host: hostname, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve();
    });
    socket.once("error", reject);
  });
  socket.setNoDelay(true);
  if (reads === "kept") {
    socket.on(
      "data",
      (chunk: Uint8Array) =>
        receiver.feed(
          new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length),
        ),
    );
  } else {
    socket.on("data", (chunk: Uint8Array) => receiver.feed(chunk));
  }
  socket.on("error", () => {});
  socket.on("close", () => receiver.close());
  return {
    runtime: "node",
    write(bytes, done) {
      if (done === undefined) socket.write(bytes);
      else socket.write(bytes, done);
    },
    end() {
      try {
        socket.end();
      } catch {
        // Already gone.
      }
      return Promise.resolve();
    },
    release() {
      socket.destroy();
    },
  };
}
