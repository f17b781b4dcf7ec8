/**
 * The Deno adapter: the Node adapter's `node:net` and `node:tls` under
 * Deno's Node compatibility, named "deno"; datagrams stay native
 * (datagram.ts), and so does the TLS of a connection the client will
 * upgrade with verification (`ConnectOptions.startsTls`, or direct TLS):
 * it is opened on a `Deno.Conn` for `Deno.startTls` (conn_channel.ts).
 *
 * It was built on `Deno.connect`. On deno 2.9.6 (bench/limit.bench.ts,
 * the native node out of process, 2026-12-05) `node:net` measured level
 * with it on 16-byte requests and 1.5-1.8x as fast on 1 KiB ones.
 *
 * @module
 */

import { readConnect, readListen } from "../arguments.ts";
import type { ChannelBase } from "../channel_base.ts";
import { nodeAdapter } from "../node/adapter.ts";
import { acceptTlsOver } from "../node/tls_stream.ts";
import { acceptTlsOn, checkServerTls, connectTls } from "../tls.ts";
import type { RuntimeAdapter } from "../types.ts";
import { connectConn, isStalled } from "./conn_channel.ts";

/** Opens the `Deno.Conn` channels whose TLS is Deno's own. */
const connAdapter: RuntimeAdapter = { ...nodeAdapter, connect: connectConn };

/** The adapter for Deno: see the module's comment. */
export const denoAdapter: RuntimeAdapter = {
  ...nodeAdapter,
  // Not the node adapter's: getAdapter gives this one Deno's own. Once
  // getAdapter("node") had run, the spread copied node:dgram's opener,
  // which getAdapter("deno") then kept.
  datagram: undefined,
  name: "deno",

  // async so that a bad argument rejects rather than throws.
  // deno-lint-ignore require-await
  async connect(options) {
    options = readConnect(options);
    const { tls, startsTls } = options;
    // A verified TLS session goes through Deno.startTls, on a Deno.Conn;
    // rustls cannot skip verification, and a node that left a native
    // handshake hanging gets node:tls (see conn_channel.ts).
    if (
      (tls ? tls.dangerouslySkipVerify !== true : startsTls === true) &&
      !isStalled(options)
    ) {
      return connectTls(connAdapter, options);
    }
    return nodeAdapter.connect(options);
  },

  // async so that a bad argument rejects rather than throws.
  async listen(options, onConnection) {
    options = readListen(options, onConnection);
    if (!options.tls) return nodeAdapter.listen(options, onConnection);
    // Checked before binding: a pair that does not go together would
    // bind fine and then reset every client.
    await checkServerTls(options.tls);
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
