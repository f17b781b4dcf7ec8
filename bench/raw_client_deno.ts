/**
 * The minimal raw client on Deno (`raw_client.ts` picks it): `Deno.connect`
 * with Nagle off, `Deno.startTls` for TLS, reads pulled into a reused
 * buffer and a write pump for partial writes, around the shared framing
 * of `raw_client_framing.ts`. Deno is reached (by `raw_client.ts`) through
 * `globalThis`, with small local interfaces so `deno check` passes on every
 * runtime.
 *
 * One of the baseline files, the one place outside `src/runtime/` allowed
 * to touch runtime sockets (`Deno.connect`, `Bun.connect`, `node:net`):
 * `raw_client.ts` and its per-runtime files `raw_client_deno.ts`,
 * `raw_client_bun.ts` and `raw_client_node.ts`, `batching_client.ts` and
 * `raw_socket.ts`. A baseline that went through the SDK's adapters or
 * `Connection` would measure them against themselves.
 *
 * @module
 */

import { concatBytes } from "../testing/bytes.ts";
import {
  CLOSE_TIMEOUT_MS,
  Framing,
  handshake,
  negotiateTls,
  type RawClient,
  type RawTls,
  request,
} from "./raw_client_framing.ts";

/** Reads at least this large keep their buffer; smaller ones are copied. */
const KEEP_BUFFER_AT = 16 * 1024;

// --- Deno: pull reads into a reused buffer, a write pump for partial writes.

/** The part of a Deno TCP or TLS connection the raw client uses. */
export interface DenoConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  setNoDelay(noDelay?: boolean): void;
  closeWrite(): Promise<void>;
  close(): void;
}

/** The part of the `Deno` namespace the raw client uses. */
export interface DenoNet {
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

/** Connects the raw client with Deno's own sockets (and TLS, with `tls`). */
export async function connectDeno(
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
