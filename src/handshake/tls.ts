/**
 * The TLS upgrade that switches a connection to TLS right after
 * NEGOTIATE_OK chose it (docs/PROTOCOL.md, "TLS"). The handshake is
 * bounded by `tls.handshakeTimeoutMs` on the client's clock, and a
 * failure is final: the connection is closed with a {@linkcode TlsError}
 * and nothing falls back to TCP or UDP.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { is, methods, readOptions } from "../config/options.ts";
import type { ResolvedTlsConfig } from "../config/tls.ts";
import { isDuration, MAX_TIMER_DELAY_MS } from "../config/validate.ts";
import { onceTimer } from "../config/clock_failure.ts";
import type { Connection } from "../connection/connection.ts";
import { TlsError } from "../errors.ts";
import type { TransportUpgrade } from "./shapes.ts";

/**
 * Switches `connection` to TLS within `tls.handshakeTimeoutMs` (on
 * `clock`) or before `signal` fires, verifying the node's certificate
 * against `tls.ca` (or the system roots) and `tls.serverName` (or the
 * node's host name).
 *
 * @throws {TlsError} for a certificate, name, validity or handshake
 *   failure, or `"handshake-timeout"`; the connection is then destroyed.
 */
export async function upgradeToTls(
  connection: Connection,
  tls: ResolvedTlsConfig,
  clock: Clock,
  signal: AbortSignal,
): Promise<void> {
  const serverName = tls.serverName ?? connection.hostname;
  const ms = tls.handshakeTimeoutMs;
  const controller = new AbortController();
  // A custom clock whose setTimeout() throws fails the upgrade, before
  // it starts, with the ConfigError naming it, not with its raw Error; one
  // whose clearTimeout() throws leaves a timer that, firing, finds the
  // upgrade over and aborts no switch that is done.
  const limit = onceTimer(clock, ms, () =>
    controller.abort(
      new TlsError(
        `TLS with ${connection.address} failed: the handshake did not ` +
          `finish within ${ms} ms`,
        {
          reason: "handshake-timeout",
          address: connection.address,
          serverName,
        },
      ),
    ));
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    await connection.startTls({
      serverName,
      ca: tls.ca,
      dangerouslySkipVerify: tls.dangerouslySkipVerify,
      signal: controller.signal,
    });
  } catch (error) {
    connection.destroy(error instanceof Error ? error : undefined);
    throw error;
  } finally {
    // A custom clock whose clearTimeout() throws: the upgrade ends as it
    // would have. Let out, the throw replaced its outcome: a switch that
    // worked failed with the clock's raw Error (the connection left to
    // whoever destroys a failed handshake's), a TlsError became that
    // Error, and the caller's signal kept its listener.
    limit.cancel();
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * The TLS transport for {@linkcode createHandshake}'s `transports.tls`:
 * upgrades the connection when negotiation chose TLS. A connection that
 * was opened with TLS already (`tls.direct`) is left as it is.
 *
 * @throws {InvalidArgumentError} for options that are not `{ tls, clock }`,
 *   a `tls` whose `handshakeTimeoutMs` is no duration among them.
 * @example
 * ```ts
 * import { createHandshake, resolveTlsConfig, systemClock, tlsTransport } from "@nodewire/client/core";
 * const handshake = createHandshake({
 *   tlsPolicy: "require",
 *   transports: { tls: tlsTransport({ tls: resolveTlsConfig({}, "require"), clock: systemClock }) },
 * });
 * ```
 */
export function tlsTransport(
  options: { tls: ResolvedTlsConfig; clock: Clock },
): TransportUpgrade {
  // Read once and checked here: the upgrade read them on every connect,
  // and a bad one failed there with a raw TypeError.
  const { tls, clock } = readOptions<typeof options>("tlsTransport", options, {
    // A duration by the config's rule: NaN, 0 or Infinity fired the
    // timer at once, failing every upgrade as a handshake timeout.
    tls: is(
      (v) => isDuration((v as ResolvedTlsConfig)?.handshakeTimeoutMs),
      "expected a ResolvedTlsConfig (its handshakeTimeoutMs a finite " +
        `number of milliseconds > 0, at most ${MAX_TIMER_DELAY_MS})`,
    ),
    clock: methods("setTimeout", "clearTimeout"),
  }, true);
  return async (connection, _negotiated, signal) => {
    if (connection.encrypted) return;
    await upgradeToTls(connection, tls, clock, signal);
  };
}
