/**
 * The switch to TLS on a session's stream, right after NEGOTIATE_OK chose
 * it: the node runs the server side of the handshake (the client sends its
 * ClientHello next), and the session goes on over the secure channel, or
 * ends when the handshake fails, times out or was preceded by plaintext.
 *
 * @module
 */

import type { Clock } from "../src/clock.ts";
import type { FrameWriter } from "../src/connection/frame_writer.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import type { TestNodeStats } from "./node_stats.ts";

/** What the switch uses of its node. */
export interface TlsHost {
  /** For the handshake's time limit. */
  readonly clock: Clock;
  /** Where handshakes are counted. */
  readonly stats: Pick<TestNodeStats, "tlsHandshakes" | "tlsFailures">;
  /**
   * Aborts when the node stops: a handshake under way is given up. The
   * TLS side owns the socket by then, so dropping the plaintext channel
   * does not close it.
   */
  stopped(): AbortSignal;
}

/** What the switch uses of its session. */
export interface TlsSession {
  /** The plaintext stream, whose channel can accept TLS. */
  readonly channel: ByteChannel;
  readonly writer: FrameWriter;
  /** Bytes read that are not yet a whole message. */
  readonly codec: { readonly bufferedBytes: number };
  /** Whether the node still holds the session. */
  readonly live: boolean;
  /** Goes on over `secure`, reading it as it read the plaintext one. */
  secured(secure: ByteChannel): void;
  /** Ends the session: its connection is gone. */
  drop(): void;
}

/** Starts the server side of TLS on `session`'s stream, with `tls`. */
export function startTls(
  session: TlsSession,
  tls: { cert: string; key: string },
  host: TlsHost,
): void {
  const plain = session.channel;
  plain.pause?.();
  session.writer.flush();
  const controller = new AbortController();
  // A client that never finishes the handshake must not hold the socket,
  // nor a node that stopped: its stop left the socket, and the process,
  // open until this limit.
  const timer = host.clock.setTimeout(
    () => controller.abort(new Error("TLS handshake timed out")),
    10_000,
  );
  const stopped = host.stopped();
  const onStop = () => controller.abort(new Error("the node stopped"));
  if (stopped.aborted) onStop();
  else stopped.addEventListener("abort", onStop, { once: true });
  const done = () => {
    host.clock.clearTimeout(timer);
    stopped.removeEventListener("abort", onStop);
  };
  plain.acceptTls!({
    cert: tls.cert,
    key: tls.key,
    signal: controller.signal,
  })
    .then((secure) => {
      done();
      if (!session.live || session.codec.bufferedBytes > 0) {
        // Stopped meanwhile, or plaintext smuggled in before the switch.
        secure.destroy();
        session.drop();
        return;
      }
      host.stats.tlsHandshakes++;
      session.secured(secure);
    }, () => {
      done();
      // The adapter closed the socket; its close no longer reaches us.
      host.stats.tlsFailures++;
      session.drop();
    });
}
