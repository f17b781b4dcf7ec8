/**
 * The Deno adapter: the Node adapter's `node:net` and `node:tls` under
 * Deno's Node compatibility, named "deno"; datagrams stay native
 * (datagram.ts).
 *
 * It was built on `Deno.connect`. On deno 2.9.6 (bench/limit.bench.ts,
 * the native node out of process, 2026-12-05) `node:net` measured level
 * with it on 16-byte requests and 1.5-1.8x as fast on 1 KiB ones, and
 * TLS over the socket itself ran at 79% of TCP, against 67% through the
 * bridge of tls_stream.ts that a `Deno.Conn` needs (`Deno.startTls`
 * cannot abandon a handshake: see there).
 *
 * @module
 */

import { checkListen } from "../arguments.ts";
import type { ChannelBase } from "../channel_base.ts";
import { nodeAdapter } from "../node/adapter.ts";
import { acceptTlsOver } from "../node/tls_stream.ts";
import { acceptTlsOn } from "../tls.ts";
import type { RuntimeAdapter } from "../types.ts";

/** The adapter for Deno: see the module's comment. */
export const denoAdapter: RuntimeAdapter = {
  ...nodeAdapter,
  name: "deno",

  // async so that a bad argument rejects rather than throws.
  // deno-lint-ignore require-await
  async listen(options, onConnection) {
    checkListen(options, onConnection);
    if (!options.tls) return nodeAdapter.listen(options, onConnection);
    // The server side through the bridge: Deno's TLSSocket over a socket
    // takes in all its peer sends, even while paused.
    return nodeAdapter.listen(
      { ...options, tls: undefined },
      acceptTlsOn(
        options.tls,
        onConnection,
        (channel, tls) =>
          acceptTlsOver(channel, (channel as ChannelBase).endpoint, tls),
      ),
    );
  },
};
