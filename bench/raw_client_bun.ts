/**
 * The minimal raw client on Bun (`raw_client.ts` picks it): `Bun.connect`
 * with push handlers, `upgradeTLS` for TLS, a short write keeping the rest
 * until `drain`, around the shared framing of `raw_client_framing.ts`. Bun
 * is reached (by `raw_client.ts`) through `globalThis`, with small local
 * interfaces so `deno check` passes without Bun's typings.
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

import {
  CLOSE_TIMEOUT_MS,
  Framing,
  handshake,
  negotiateTls,
  type RawClient,
  type RawTls,
  request,
} from "./raw_client_framing.ts";

// --- Bun: push handlers; a short write keeps the rest until `drain`.

/** The part of a Bun socket the raw client uses. */
export interface BunSocket {
  write(bytes: Uint8Array): number;
  upgradeTLS(options: {
    tls: { ca: string[]; serverName: string };
    socket: Record<string, unknown>;
  }): [BunSocket, BunSocket];
  end(): void;
  terminate(): void;
  setNoDelay?(noDelay?: boolean): boolean;
}

/** The part of the `Bun` namespace the raw client uses. */
export interface BunNet {
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

/** Connects the raw client with Bun's own sockets (and TLS, with `tls`). */
export async function connectBun(
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
