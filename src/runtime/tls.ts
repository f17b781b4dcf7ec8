/**
 * What the adapters need to speak TLS: the options of each side, and the
 * one place that turns each runtime's TLS failures into a
 * {@linkcode TlsError} with a reason.
 *
 * What was seen on deno 2.9.6, bun 1.4.5 and node 20 for the fixtures of
 * `scripts/gen-test-certs.sh`:
 *
 * | failure    | node:tls (`code`)              | Bun upgradeTLS (`code`)           | Deno node:tls (`authorizationError`)  | Deno.startTls (rustls message)            |
 * | ---------- | ------------------------------ | --------------------------------- | ------------------------------------- | ----------------------------------------- |
 * | unknown CA | `DEPTH_ZERO_SELF_SIGNED_CERT`  | `UNABLE_TO_VERIFY_LEAF_SIGNATURE` | `DEPTH_ZERO_SELF_SIGNED_CERT`         | "invalid peer certificate: UnknownIssuer" |
 * | wrong name | `ERR_TLS_CERT_ALTNAME_INVALID` | `ERR_TLS_CERT_ALTNAME_INVALID`    | `ERR_TLS_CERT_ALTNAME_INVALID`        | "certificate not valid for name ..."      |
 * | expired    | `CERT_HAS_EXPIRED`             | `CERT_HAS_EXPIRED`                | `UNABLE_TO_VERIFY_LEAF_SIGNATURE` (!) | "certificate expired: ..."                |
 *
 * Deno's node:tls calls an expired certificate unverifiable; the Node
 * adapter, which Deno's builds on, reads the certificate's dates itself and
 * says "expired". Rustls messages are Deno's verified upgrades
 * (deno/conn_channel.ts).
 *
 * @module
 */

import {
  ConnectionLostError,
  type Endpoint,
  formatAddress,
  InvalidArgumentError,
  NodewireError,
  TlsError,
  type TlsFailureReason,
} from "../errors.ts";
import { printable, textOf } from "../errors/base.ts";
import { handOver } from "./accept.ts";
import { describe, errorText } from "./errors.ts";
import { unrefTimer } from "./timers.ts";
import type {
  ByteChannel,
  ConnectOptions,
  RuntimeAdapter,
  TlsServerOptions,
} from "./types.ts";

const HOSTNAME_CODES = new Set([
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_TLS_CERT_ALTNAME_FORMAT",
]);
const EXPIRED_CODES = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);
const CERTIFICATE_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_REVOKED",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "CERT_CHAIN_TOO_LONG",
  "ERR_TLS_CERT_SIGNATURE_ALGORITHM_UNSUPPORTED",
]);
/**
 * The connection went away mid-handshake: that is a lost connection (the
 * node restarting, a reset), not a verdict on its certificate.
 */
const LOST_CODES = new Set([
  "ECONNRESET",
  "ConnectionReset",
  "EPIPE",
  "BrokenPipe",
  "UnexpectedEof",
]);

const WHY: Record<Exclude<TlsFailureReason, "handshake-timeout">, string> = {
  certificate: "the node's certificate is not trusted",
  hostname: "the node's certificate is not valid for",
  expired: "the node's certificate is expired or not yet valid",
  handshake: "the TLS handshake failed",
};

/**
 * Maps what a runtime threw or reported during a TLS handshake to the
 * SDK's error: a {@linkcode TlsError} with its reason, or a
 * `ConnectionLostError` when the connection simply went away. SDK errors
 * (an abort's reason, for one) pass through unchanged.
 */
export function toTlsError(
  error: unknown,
  endpoint: Endpoint,
  serverName: string,
): NodewireError {
  if (error instanceof NodewireError) return error;
  const reason = tlsFailureReason(error);
  if (reason === undefined) {
    return new ConnectionLostError(
      endpoint,
      `closed during the TLS handshake (${describe(error)})`,
      { cause: causeOf(error), sent: false },
    );
  }
  const address = formatAddress(endpoint);
  const why = reason === "hostname"
    ? `${WHY.hostname} ${JSON.stringify(serverName)}`
    : WHY[reason];
  return new TlsError(
    `TLS with ${address} failed: ${why} (${describe(error)})`,
    {
      reason,
      address,
      serverName,
      cause: causeOf(error),
    },
  );
}

/**
 * `error` as the cause of an SDK error: itself, or, when its message holds
 * what a terminal would act on, a copy with that escaped (its name and
 * code kept). Deno's rustls quotes the certificate's names as the node
 * wrote them ("only valid for DnsName(...)"), and a cause reaches
 * console.error, inspect and log records as it is.
 */
function causeOf(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const message = textOf(error.message);
  const escaped = printable(message);
  if (escaped === message) return error;
  const copy = new Error(escaped);
  copy.name = error.name;
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) Object.assign(copy, { code });
  return copy;
}

/**
 * The reason for a TLS failure, or `undefined` when the error says the
 * connection was lost rather than refused.
 */
function tlsFailureReason(
  error: unknown,
): Exclude<TlsFailureReason, "handshake-timeout"> | undefined {
  const code = typeof error === "object" && error !== null
    ? String((error as { code?: unknown }).code ?? "")
    : "";
  const name = error instanceof Error ? error.name : "";
  const message = errorText(error);
  if (
    HOSTNAME_CODES.has(code) || /not valid for name|altnames/i.test(message)
  ) {
    return "hostname";
  }
  if (
    EXPIRED_CODES.has(code) ||
    /certificate expired|not yet valid/i.test(message)
  ) {
    return "expired";
  }
  if (
    CERTIFICATE_CODES.has(code) ||
    /invalid peer certificate|unknown ?issuer|self[- ]signed|unable to verify|certificate verify failed/i
      .test(message)
  ) {
    return "certificate";
  }
  if (
    LOST_CODES.has(code) || LOST_CODES.has(name) ||
    /socket disconnected before secure|handshake eof|connection reset|closed before/i
      .test(message)
  ) {
    return undefined;
  }
  return "handshake";
}

/**
 * Whether `hostname` is an IP literal: such a name is checked against the
 * certificate's IP addresses and never sent as SNI (RFC 6066).
 */
export function isIpLiteral(hostname: string): boolean {
  return hostname.includes(":") || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Runs `start` (which begins a handshake) under `signal`: an abort, or a
 * signal aborted already, calls `cancel` to destroy the socket and rejects
 * with the signal's reason; a failure is mapped with
 * {@linkcode toTlsError}.
 */
export async function handshakeUnder<T>(
  signal: AbortSignal | undefined,
  cancel: () => void,
  endpoint: Endpoint,
  serverName: string,
  start: () => Promise<T>,
): Promise<T> {
  // The socket is the TLS layer's by now: the caller's channel no longer
  // closes it, so giving up must.
  if (signal?.aborted) {
    cancel();
    throw signal.reason;
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      cancel();
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const work = start();
    // The loser of the race must not surface as an unhandled rejection.
    work.catch(() => {});
    aborted.catch(() => {});
    return await (signal ? Promise.race([work, aborted]) : work);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    cancel();
    throw toTlsError(error, endpoint, serverName);
  } finally {
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * `connect({ tls })` for adapters whose plain connect plus `startTls`
 * does it: no plaintext is exchanged in between, so no read is pending
 * when the handshake starts. The connect signal bounds the handshake too,
 * also when the TLS options bring a signal of their own: either gives
 * it up.
 */
export async function connectTls(
  adapter: RuntimeAdapter,
  options: ConnectOptions,
): Promise<ByteChannel> {
  const { tls, ...plain } = options;
  const channel = await adapter.connect(plain);
  if (tls === undefined) return channel;
  const signal = tls.signal === undefined || options.signal === undefined
    ? tls.signal ?? options.signal
    : AbortSignal.any([options.signal, tls.signal]);
  return await channel.startTls!({ ...tls, signal });
}

/**
 * How long a server waits for a client to finish its handshake on a
 * direct-TLS listener, in ms: a client that connects and stays silent
 * must not hold a socket for ever.
 */
export const SERVER_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * What is wrong with a server's certificate and key, or `undefined` when
 * they go together: a key that is not the certificate's (compared by
 * public key, which Deno's `node:tls` does not check), or a pair that
 * `node:tls` or `node:crypto` cannot read. `undefined` too where the
 * runtime has neither module, and nothing can be told.
 */
export async function serverTlsProblem(
  tls: Pick<TlsServerOptions, "cert" | "key">,
): Promise<string | undefined> {
  let modules: [typeof import("node:tls"), typeof import("node:crypto")];
  try {
    modules = await Promise.all([import("node:tls"), import("node:crypto")]);
  } catch {
    return undefined;
  }
  const [tlsModule, crypto] = modules;
  // Codes only: a message about a key is not worth the risk of quoting.
  try {
    tlsModule.createSecureContext({ cert: tls.cert, key: tls.key });
  } catch (error) {
    return `a pair node:tls refuses (${codeOf(error)})`;
  }
  try {
    const spki = { type: "spki", format: "der" } as const;
    const ofCert = new crypto.X509Certificate(tls.cert).publicKey.export(spki);
    const ofKey = crypto.createPublicKey(crypto.createPrivateKey(tls.key))
      .export(spki);
    if (!ofCert.equals(ofKey)) {
      return "a key that does not go with the certificate";
    }
  } catch (error) {
    return `a certificate or key that cannot be read (${codeOf(error)})`;
  }
  return undefined;
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "no error code";
}

/**
 * Refuses `listen()`'s TLS options (or those of `method`, another server
 * that will serve them) when {@linkcode serverTlsProblem} finds a
 * problem: bound anyway, the listener would reset every client.
 *
 * @throws {InvalidArgumentError} naming `options.tls` and the problem.
 */
export async function checkServerTls(
  tls: Pick<TlsServerOptions, "cert" | "key">,
  method = "listen()",
): Promise<void> {
  const problem = await serverTlsProblem(tls);
  if (problem === undefined) return;
  throw new InvalidArgumentError(
    "options.tls",
    problem,
    "expected a PEM certificate chain and the private key that goes with it",
    { method },
  );
}

/**
 * Wraps a listener's `onConnection` so each accepted channel first serves
 * the TLS handshake; channels that fail it are dropped.
 */
export function acceptTlsOn(
  tls: TlsServerOptions,
  onConnection: (channel: ByteChannel) => void,
  accept = (channel: ByteChannel, options: TlsServerOptions) =>
    channel.acceptTls!(options),
): (channel: ByteChannel) => void {
  return (channel) => {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error("the TLS handshake timed out")),
      SERVER_HANDSHAKE_TIMEOUT_MS,
    );
    unrefTimer(timer);
    const onAbort = () => controller.abort(tls.signal?.reason);
    // A signal that had aborted fires no more: without this, a listener
    // told to give up its handshakes before a client came served them.
    if (tls.signal?.aborted) onAbort();
    else tls.signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      tls.signal?.removeEventListener("abort", onAbort);
    };
    accept(channel, { ...tls, signal: controller.signal }).then(
      (secure) => {
        done();
        handOver(onConnection, secure);
      },
      () => {
        // The handshake failed and took the channel with it; the client
        // reports why on its side.
        done();
      },
    );
  };
}
