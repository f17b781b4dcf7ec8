/**
 * TLS over any {@linkcode ByteChannel}, through `node:tls` on a Duplex
 * that carries the channel's bytes: the channel moves ciphertext, the
 * returned channel plaintext. All three runtimes run it.
 *
 * It covers what the native APIs cannot do:
 * - the server side of an upgrade on Deno (its TLSSocket over a socket
 *   takes in all its peer sends, even while paused, where the channel
 *   here stops reading) and on Bun (`upgradeTLS` on an accepted socket
 *   starts a client handshake);
 * - the client side on Bun while bytes are still queued (see there), and
 *   on Deno's `Deno.Conn` channel where `Deno.startTls` must not do it
 *   (see deno/conn_channel.ts).
 *
 * `node:tls` and `node:stream` are loaded on first use only.
 *
 * @module
 */

import type * as Stream from "node:stream";
import type * as Tls from "node:tls";
import type { Endpoint } from "../../errors.ts";
import { settleOnHandshake, verificationFailure } from "./channel.ts";
import { handshakeUnder, isIpLiteral } from "../tls.ts";
import { readTls } from "../arguments.ts";
import type { ByteChannel, TlsOptions, TlsServerOptions } from "../types.ts";

let modules: Promise<[typeof Tls, typeof Stream]> | undefined;

function load(): Promise<[typeof Tls, typeof Stream]> {
  modules ??= Promise.all([import("node:tls"), import("node:stream")]);
  return modules;
}

/**
 * A Duplex whose writes go to `channel` and whose reads are what `channel`
 * receives. Takes over the channel's callbacks; `onEnd` hears the channel
 * close too. `above()` is the TLS socket over it, once made: while its
 * reader is paused and its buffer full, the channel stops reading.
 */
function duplexOver(
  stream: typeof Stream,
  channel: ByteChannel,
  onEnd: () => void,
  above: () => Tls.TLSSocket | undefined,
): Stream.Duplex {
  const held = () => {
    const tls = above();
    return tls !== undefined && tls.isPaused() &&
      tls.readableLength >= tls.readableHighWaterMark;
  };
  const duplex = new stream.Duplex({
    // The channel closes whole, never half, and the TLS socket over this
    // stream takes its allowHalfOpen from it: left at the Duplex default
    // (true), a peer's clean close (close_notify, FIN) ended only the TLS
    // socket's reading side, and it kept its own, and the channel over it,
    // open for good (Deno's rustls client closes that way).
    allowHalfOpen: false,
    read() {
      // The TLS socket wants more: read again, unless it is the one whose
      // reader is paused (Deno's asks for more regardless).
      if (!held()) channel.resume?.();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      if (channel.write(chunk)) callback();
      else channel.drained().then(() => callback(), callback);
    },
    final(callback) {
      channel.close();
      callback();
    },
    destroy(error, callback) {
      channel.destroy(error ?? undefined);
      callback(error);
    },
  });
  // The TLS socket above stopped reading (its own reader paused): the
  // channel stops too, and the peer's sends queue behind it instead of in
  // memory here. Node's TLS socket stops taking from this stream, whose
  // buffer fills; Deno's takes every byte and fills its own.
  channel.onData((chunk) => {
    if (!duplex.push(chunk) || held()) channel.pause?.();
  });
  channel.onClose((error) => {
    // Destroyed from above: the TLS socket gave up and says why itself.
    // Deno's destroys this stream before it reports a record that is not
    // TLS, which a close here would have turned into a lost connection.
    if (duplex.destroyed) return;
    if (error) duplex.destroy(error);
    else duplex.push(null);
    onEnd();
  });
  // Paused at the switch point; the handshake needs the bytes now.
  channel.resume?.();
  return duplex;
}

/**
 * Client side: starts TLS on `channel` and resolves with the plaintext
 * channel once the node's certificate is verified (unless
 * `dangerouslySkipVerify`).
 *
 * @throws {TlsError} for a certificate, name or handshake failure.
 */
export async function startTlsOver(
  channel: ByteChannel,
  endpoint: Endpoint,
  options: TlsOptions,
): Promise<ByteChannel> {
  options = readTls("startTls()", options, false);
  const [tls, stream] = await load();
  const { serverName } = options;
  const skip = options.dangerouslySkipVerify === true;
  let socket: Tls.TLSSocket | undefined;
  return await handshakeUnder(
    options.signal,
    () => {
      // Destroying the TLS socket need not reach the stream under it.
      socket?.destroy();
      channel.destroy();
    },
    endpoint,
    serverName,
    () =>
      new Promise<ByteChannel>((resolve, reject) => {
        const secure = tls.connect({
          socket: duplexOver(
            stream,
            channel,
            () => reject(closedEarly()),
            () => socket,
          ),
          host: serverName,
          servername: isIpLiteral(serverName) ? undefined : serverName,
          ca: options.ca ? [...options.ca] : undefined,
          // Verified below, where the certificate can still be read: Deno's
          // node:tls reports an expired one as UNABLE_TO_VERIFY_LEAF_SIGNATURE
          // and hands out no certificate once it has refused it.
          rejectUnauthorized: false,
          // Node asserts it is a function when the key is present.
          ...(skip ? { checkServerIdentity: () => undefined } : {}),
        });
        socket = secure;
        secure.on("resume", () => channel.resume?.());
        settleOnHandshake(
          secure,
          "secureConnect",
          endpoint,
          resolve,
          reject,
          skip ? undefined : verificationFailure,
        );
      }),
  );
}

/**
 * Server side: serves TLS on `channel` with the given certificate and
 * resolves with the plaintext channel once the client finished the
 * handshake.
 */
export async function acceptTlsOver(
  channel: ByteChannel,
  endpoint: Endpoint,
  options: TlsServerOptions,
): Promise<ByteChannel> {
  options = readTls("acceptTls()", options, true);
  const [tls, stream] = await load();
  let socket: Tls.TLSSocket | undefined;
  return await handshakeUnder(
    options.signal,
    () => {
      // Destroying the TLS socket need not reach the stream under it.
      socket?.destroy();
      channel.destroy();
    },
    endpoint,
    endpoint.hostname,
    () =>
      new Promise<ByteChannel>((resolve, reject) => {
        // Deno's TLSSocket over a stream misses the stream's end while
        // it handshakes: a client that hangs up then would hold the
        // handshake for ever, so the channel's close settles it.
        const duplex = duplexOver(
          stream,
          channel,
          () => reject(closedEarly()),
          () => socket,
        );
        const secure = new tls.TLSSocket(duplex, {
          isServer: true,
          cert: options.cert,
          key: options.key,
        });
        socket = secure;
        secure.on("resume", () => channel.resume?.());
        settleOnHandshake(secure, "secure", endpoint, resolve, reject);
      }),
  );
}

function closedEarly(): Error {
  return Object.assign(
    new Error("the connection closed during the TLS handshake"),
    { code: "ECONNRESET" },
  );
}
